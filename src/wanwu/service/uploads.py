"""Reading a classify request: multipart files or base64 JSON, bounded in size, never touching disk.

Both bodies are read through ``_limited``: the first chunk past ``max_request_bytes`` ends the
read with a 413, whether or not a Content-Length was sent (chunked bodies included), so a request
never holds more than its limit (plus one chunk of at most 64 KB). JSON is parsed with limits on
its shape and at about one copy of its size (``json_body``), in a worker thread so a large body
does not hold up the event loop.
"""

from __future__ import annotations

import asyncio
import io
import sys
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, Field, ValidationError
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import ClientDisconnect, Request

from wanwu.service.errors import InvalidRequestError, RequestTooLargeError, UnsupportedRequestError
from wanwu.service.json_body import image_bytes, is_marker, parse_classify_json
from wanwu.service.settings import ServiceSettings

IMAGE_FIELD = "image"
HOW_TO_SEND = (
    "send multipart/form-data with one or more files in the field 'image', "
    'or JSON {"images": ["<base64>", ...]}'
)


class ClassifyOptions(BaseModel):
    top_k: int | None = Field(None, ge=1)
    min_score: float = Field(0.0, ge=0.0, le=1.0)
    lang: Literal["zh", "en", "both"] = "both"
    model: str | None = Field(None, min_length=1, max_length=80)  # one of the loaded models (default: the first)
    view: Literal["categories", "classes", "both"] = "both"  # everyday categories, the fine classes, or both


OPTION_FIELDS = ("top_k", "min_score", "lang", "model", "view")


@dataclass(frozen=True)
class Upload:
    filename: str | None
    data: bytes
    size: int = -1  # bytes of the image; set (with empty ``data``) where it was over the limit and never decoded

    @property
    def nbytes(self) -> int:
        return len(self.data) if self.size < 0 else self.size


class _InMemoryParser(MultiPartParser):
    # Starlette spools file parts over 1 MB to a temporary file; uploads must never reach disk.
    # The whole body is already bounded by ``max_request_bytes``, so memory is bounded too.
    spool_max_size = sys.maxsize


async def _limited(request: Request, limit: int, settings_hint: str) -> AsyncGenerator[bytes, None]:
    """The body, chunk by chunk; the chunk that crosses ``limit`` raises instead of being yielded.

    Nothing after it is read by the app: Uvicorn discards what the client still sends (the 413
    carries ``Connection: close``, so it stops reading when the answer is out).
    """
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise RequestTooLargeError(f"request body is over the limit of {limit:,} bytes ({settings_hint})")
        yield chunk


def _options(fields: dict[str, object], settings: ServiceSettings) -> ClassifyOptions:
    try:
        options = ClassifyOptions.model_validate({k: v for k, v in fields.items() if v not in (None, "")})
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "request"
        raise InvalidRequestError(f"invalid {where}: {first['msg']}") from None
    if options.top_k is not None and options.top_k > settings.max_top_k:
        raise InvalidRequestError(
            f"invalid top_k: {options.top_k} is over the limit of {settings.max_top_k} (WANWU_MAX_TOP_K)"
        )
    return options


def _check_count(count: int, settings: ServiceSettings) -> None:
    if count == 0:
        raise InvalidRequestError(f"no image in the request; {HOW_TO_SEND}")
    if count > settings.max_images_per_request:
        raise InvalidRequestError(
            f"{count} images in one request; the limit is {settings.max_images_per_request} "
            "(WANWU_MAX_IMAGES_PER_REQUEST)"
        )


async def read_body(request: Request, settings: ServiceSettings) -> bytearray:
    """The whole body, refused with a 413 past ``max_request_bytes`` (declared or streamed), as classify bodies are."""
    limit = settings.max_request_bytes
    hint = "raise WANWU_MAX_UPLOAD_BYTES or send fewer images per request"
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise RequestTooLargeError(f"request body is {int(declared):,} bytes; the limit is {limit:,} ({hint})")
    body = bytearray()
    try:
        async for chunk in _limited(request, limit, hint):
            body += chunk
    except ClientDisconnect:
        raise InvalidRequestError("the client disconnected before the upload finished") from None
    return body


async def read_classify_request(request: Request, settings: ServiceSettings) -> tuple[list[Upload], ClassifyOptions]:
    limit = settings.max_request_bytes
    hint = "raise WANWU_MAX_UPLOAD_BYTES or send fewer images per request"
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise RequestTooLargeError(f"request body is {int(declared):,} bytes; the limit is {limit:,} ({hint})")
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        if content_type == "multipart/form-data":
            return await _read_multipart(request, settings, limit, hint)
        if content_type == "application/json":
            return await _read_json(request, settings, limit, hint)
    except ClientDisconnect:
        raise InvalidRequestError("the client disconnected before the upload finished") from None
    raise UnsupportedRequestError(f"unsupported content type {content_type or '(none)'!r}; {HOW_TO_SEND}")


async def _read_multipart(request: Request, settings: ServiceSettings, limit: int, hint: str):  # type: ignore[no-untyped-def]
    parser = _InMemoryParser(
        request.headers,
        _limited(request, limit, hint),
        max_files=settings.max_images_per_request,
        max_fields=16,
    )
    try:
        form = await parser.parse()
    except MultiPartException as err:
        raise InvalidRequestError(f"malformed multipart body: {err.message}") from None
    try:
        files = [v for v in form.getlist(IMAGE_FIELD) if isinstance(v, UploadFile)]
        strays = [k for k, v in form.multi_items() if isinstance(v, UploadFile) and k != IMAGE_FIELD]
        if strays and not files:
            raise InvalidRequestError(f"files were sent in field {strays[0]!r}; the field must be named 'image'")
        _check_count(len(files), settings)
        uploads = []
        uploads = [Upload(f.filename, await _take_bytes(f)) for f in files]
        fields = {k: form.get(k) for k in OPTION_FIELDS}
        fields.update({k: v for k, v in request.query_params.items() if k in OPTION_FIELDS})
        return uploads, _options(fields, settings)
    finally:
        await form.close()


async def _take_bytes(part: UploadFile) -> bytes:
    """A file part's bytes, handed over rather than copied: ~1× the body at the peak instead of ~2×.

    The part lives in a ``SpooledTemporaryFile`` that never rolls over (``_InMemoryParser``), i.e. a
    ``BytesIO``, whose ``getvalue()`` returns its buffer itself in CPython when nothing else holds it;
    closing the part then drops the parser's reference. Any other file object is read (a copy).
    """
    buffer = getattr(part.file, "_file", None)  # SpooledTemporaryFile keeps its in-memory file here (stdlib since 2.x)
    data = buffer.getvalue() if isinstance(buffer, io.BytesIO) else await part.read()
    await part.close()
    return data


async def _read_json(request: Request, settings: ServiceSettings, limit: int, hint: str):  # type: ignore[no-untyped-def]
    body = bytearray()
    async for chunk in _limited(request, limit, hint):
        body += chunk
    try:
        payload, blobs = await asyncio.to_thread(
            parse_classify_json, body, settings.max_images_per_request, settings.max_upload_bytes
        )
    except InvalidRequestError as err:
        raise InvalidRequestError(f"{err}; {HOW_TO_SEND}") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("images"), list):
        raise InvalidRequestError(f"JSON body needs a list field 'images'; {HOW_TO_SEND}")
    images = payload["images"]
    _check_count(len(images), settings)
    uploads = [Upload(*image_bytes(entry, i, blobs)) for i, entry in enumerate(images)]
    fields = {k: payload.get(k) for k in OPTION_FIELDS}
    if any(is_marker(v) for v in fields.values()):
        raise InvalidRequestError("an option field holds a long base64 string; only 'images' may")
    fields.update({k: v for k, v in request.query_params.items() if k in OPTION_FIELDS})
    return uploads, _options(fields, settings)
