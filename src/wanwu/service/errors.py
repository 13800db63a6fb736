"""The one mapping from errors to HTTP: ``{"error": {"code", "message"}}`` with the right status."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

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


class InvalidRequestError(ServiceError):
    code = "invalid_request"
    status = 422


class RequestTooLargeError(ServiceError):
    code = "payload_too_large"
    status = 413


class UnsupportedRequestError(ServiceError):
    code = "unsupported_media_type"
    status = 415


class UnauthorizedError(ServiceError):
    code = "unauthorized"
    status = 401


class OverloadedError(ServiceError):
    code = "overloaded"
    status = 503
    headers = {"Retry-After": "1"}


class NotReadyError(ServiceError):
    code = "not_ready"
    status = 503
    headers = {"Retry-After": "2"}


class InferenceFailedError(ServiceError):
    code = "inference_failed"
    status = 500


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
