"""The optional API key (``--api-key`` / ``WANWU_API_KEY``): one check for /v1, /v2 and the form post."""

from __future__ import annotations

import secrets

from starlette.requests import Request

from wanwu.service.errors import UnauthorizedError


async def require_api_key(request: Request) -> None:
    # async on purpose: FastAPI runs a sync dependency in its thread pool, a thread hop per request.
    expected = request.app.state.wanwu.settings.api_key
    if not expected:
        return
    supplied = request.headers.get("x-api-key") or ""
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        supplied = supplied or auth[7:]
    if not secrets.compare_digest(supplied.encode(), expected.encode()):
        raise UnauthorizedError("missing or wrong API key: send it in the X-API-Key header")
