"""A classify JSON body, parsed with limits and at about one copy of its size.

``json.loads`` alone keeps the body's text and every parsed string at once, and then the decoded
images beside the strings: a body of N bytes peaked at ~2.7 N. Images are by far the bulk of a
body, so their base64 strings are taken out before the parser runs: each is decoded straight from
the body, last first, and the body is cut back behind it, so the body shrinks as the images grow
(peak ~1.75 N for one image, ~1.55 N for four; bounded by the request limit). The parser then sees a skeleton of a few hundred
bytes where every image is a short marker. A string this pass does not recognise (JSON escapes such
as ``\\/``, UTF-16 bodies) is left in place and parsed as before, only without the saving.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass

from wanwu.service.errors import InvalidRequestError

# A classify body needs a handful of brackets, commas and colons per image; a body with more is
# an attack on the parser (300 MB of ``[{},{},...`` is 100 million dicts, ~6 GB), refused unparsed.
MAX_JSON_STRUCTURE = 4096
# The only numbers a classify body has are top_k and min_score; Python's int() is quadratic in
# the number of digits (it stops at 4,300 with a ValueError), float() reads any length.
MAX_JSON_NUMBER_CHARS = 32
# Shorter strings are not worth taking out; the possessive ``{n,}+`` keeps the scan linear.
_BLOB = re.compile(rb'"(?:data:[^",]{0,200},)?([A-Za-z0-9+/=]{1024,}+)"')
# A client may write "\u0000blob:0" itself: it then gets an image of its own body or "not valid base64".
_MARKER = "\x00blob:"
INVALID = object()  # a blob that is not valid base64: reported with its image's index later


@dataclass(frozen=True)
class Oversize:
    size: int  # the image's bytes, from its base64 length


def parse_classify_json(body: bytearray, max_blobs: int, max_image_bytes: int) -> tuple[object, dict[str, object]]:
    """(payload, blobs): the parsed body, whose image strings may be markers, and the marker → bytes map.

    ``body`` is emptied. Raises ``InvalidRequestError`` for a body that is not a JSON classify request.
    """
    structure = sum(body.count(c) for c in (b"{", b"[", b",", b":"))
    if structure > MAX_JSON_STRUCTURE:
        raise InvalidRequestError(
            f"the JSON body has {structure:,} brackets, commas and colons; a classify request needs a few per image "
            f"(limit {MAX_JSON_STRUCTURE:,})"
        )
    blobs = _take_blobs(body, max_blobs, max_image_bytes)
    try:
        text = body.decode(json.detect_encoding(body), "surrogatepass")  # as json.loads(bytes) does: BOM, UTF-16
    except UnicodeDecodeError as err:
        raise InvalidRequestError(f"the body is not valid JSON: it is not UTF-8 ({err.reason} at byte {err.start})") from None
    body.clear()  # the text is the only copy from here on
    try:
        payload = json.loads(
            text, parse_int=_bounded_number(int), parse_float=_bounded_number(float), parse_constant=_no_constant
        )
    except RecursionError:
        raise InvalidRequestError("the body is not valid JSON for a classify request: it is nested too deeply") from None
    except ValueError as err:  # json.JSONDecodeError included
        raise InvalidRequestError(f"the body is not valid JSON: {str(err)[:200]}") from None
    return payload, blobs


def _take_blobs(body: bytearray, max_blobs: int, max_image_bytes: int) -> dict[str, object]:
    spans = [m.span() + m.span(1) for m in _BLOB.finditer(body)][:max_blobs]
    blobs: dict[str, object] = {}
    pieces: list[bytes] = []
    for number in range(len(spans) - 1, -1, -1):
        start, end, data_start, data_end = spans[number]
        key = f"{_MARKER}{number}"
        size = (data_end - data_start) * 3 // 4 - body.count(b"=", max(data_start, data_end - 2), data_end)
        if size > max_image_bytes:  # refused by its size (413) without decoding it
            blobs[key] = Oversize(size)
        else:
            with memoryview(body) as view:  # no copy of the text: decoded straight from the body
                try:
                    blobs[key] = binascii.a2b_base64(view[data_start:data_end], strict_mode=True)
                except binascii.Error:
                    blobs[key] = INVALID
        pieces.append(json.dumps(key).encode() + bytes(body[end:]))  # the marker as a JSON string: "\u0000blob:N"
        del body[start:]  # below half its allocation, the bytearray is reallocated smaller: memory goes back
    body.extend(b"".join(reversed(pieces)))
    return blobs


def image_bytes(entry: object, index: int, blobs: dict[str, object]) -> tuple[str | None, bytes, int]:
    """(filename, data, size) of ``images[index]``: a base64 string, a data: URL or ``{"data": ..., "filename": ...}``.

    An image over the size limit comes back as (filename, b"", its size): it was never decoded.
    """
    filename = None
    if isinstance(entry, dict):
        filename = entry.get("filename") if isinstance(entry.get("filename"), str) else None
        entry = entry.get("data")
    if not isinstance(entry, str):
        raise InvalidRequestError(f"images[{index}] must be a base64 string or {{\"data\": \"<base64>\"}}")
    data = blobs.get(entry) if entry.startswith(_MARKER) else _decode(entry)
    if isinstance(data, Oversize):
        return filename, b"", data.size
    if not isinstance(data, bytes):
        raise InvalidRequestError(f"images[{index}] is not valid base64")
    return filename, data, -1


def string_bytes(entry: str, blobs: dict[str, object]) -> bytes | Oversize | object:
    """One base64 string (or data: URL, or a marker ``parse_classify_json`` left) as bytes; ``INVALID`` when it
    is not base64; an ``Oversize`` for a blob over the image limit, never decoded."""
    return blobs.get(entry, INVALID) if entry.startswith(_MARKER) else _decode(entry)


def is_marker(value: object) -> bool:
    return isinstance(value, str) and value.startswith(_MARKER)


def _decode(entry: str) -> bytes | object:
    if entry.startswith("data:") and "," in entry:
        entry = entry.split(",", 1)[1]  # a data: URL straight from a browser
    try:
        return base64.b64decode(entry, validate=True)
    except (binascii.Error, ValueError):
        return INVALID


def _bounded_number(kind: type):  # type: ignore[no-untyped-def]
    def parse(text: str):  # type: ignore[no-untyped-def]
        if len(text) > MAX_JSON_NUMBER_CHARS:
            raise ValueError(f"a number of {len(text):,} characters (limit {MAX_JSON_NUMBER_CHARS})")
        return kind(text)

    return parse


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")
