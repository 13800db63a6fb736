"""The one mapping from errors to HTTP: ``{"error": {"code", "message"}}`` with the right status."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wanwu.errors import (
    CorruptImageError,
    ImageTooLargeError,
    TooManyPixelsError,
    UnsupportedImageError,
    WanwuError,
)


class ServiceError(WanwuError):
    status = 400
    headers: dict[str, str] = {}

    def __init_subclass__(cls, status: int | None = None, headers: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if status is not None:
            cls.status = status
        if headers is not None:
            cls.headers = headers


class InvalidRequestError(ServiceError, code="invalid_request", status=422): ...


class RequestTooLargeError(ServiceError, code="payload_too_large", status=413, headers={"Connection": "close"}):
    """The body is over the request limit: answered before it is read, and the connection is closed
    after the answer, so the rest of the body is neither buffered nor read."""


class UnsupportedRequestError(ServiceError, code="unsupported_media_type", status=415): ...


class UnauthorizedError(ServiceError, code="unauthorized", status=401): ...


class OverloadedError(ServiceError, code="overloaded", status=503, headers={"Retry-After": "1"}): ...


class NotReadyError(ServiceError, code="not_ready", status=503, headers={"Retry-After": "2"}): ...


class InferenceFailedError(ServiceError, code="inference_failed", status=500): ...


class ShuttingDownError(ServiceError, code="shutting_down", status=503, headers={"Retry-After": "1", "Connection": "close"}):
    """The server is draining after SIGTERM: retry, on another replica."""


class InternalError(ServiceError, code="internal_error", status=500): ...


log = logging.getLogger("wanwu.service")


_STATUS: dict[type[WanwuError], int] = {
    UnsupportedImageError: 415,
    ImageTooLargeError: 413,
    TooManyPixelsError: 422,
    CorruptImageError: 422,
}


def status_of(err: WanwuError) -> int:
    if isinstance(err, ServiceError):
        return err.status
    return next((status for cls, status in _STATUS.items() if isinstance(err, cls)), 422)


def error_body(err: WanwuError) -> dict:
    return {"error": {"code": err.code, "message": str(err)}}


def error_response(err: WanwuError) -> JSONResponse:
    headers = err.headers if isinstance(err, ServiceError) else None
    return JSONResponse(error_body(err), status_code=status_of(err), headers=headers)


async def handle_wanwu_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, WanwuError)
    return error_response(exc)


async def handle_unexpected(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's last resort (its ``ServerErrorMiddleware``): a bug is a JSON 500 too, never a traceback.

    Starlette logs the exception and re-raises it after this answer, so the traceback goes to the
    log, not to the client.
    """
    return error_response(InternalError("internal error; the server log has the details"))


class JsonCORSMiddleware(CORSMiddleware):
    """Starlette's CORS middleware, with its preflight refusal in the service's JSON error shape."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        message = f"{bytes(response.body).decode()} (allowed origins: WANWU_CORS_ORIGINS / --cors-origin)"
        headers = {k: v for k, v in response.headers.items() if k.lower().startswith("access-control-")}
        return JSONResponse({"error": {"code": "cors_rejected", "message": message}}, response.status_code, headers)


class ShutdownMiddleware:
    """A request cut off by the end of the shutdown drain gets a JSON 503, not Uvicorn's plain-text 500.

    When ``timeout_graceful_shutdown`` runs out, Uvicorn cancels the tasks still running (a slow
    upload, say); ``CancelledError`` is not an ``Exception``, so Starlette's handlers never see it.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except asyncio.CancelledError:
            if not started:
                await error_response(ShuttingDownError("the server is shutting down; retry on another instance"))(
                    scope, receive, send
                )
            raise
