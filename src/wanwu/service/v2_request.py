"""Reading an Open Inference Protocol (KServe v2) inference request: JSON, or a JSON header + binary tensor data.

The one input is ``image``, BYTES of shape [N]: base64 strings in JSON (a string that is not base64 is read as
its own bytes, as the protocol sends BYTES in JSON), or binary data after a JSON header of
``Inference-Header-Content-Length`` bytes, each element a 4-byte little-endian length and then its bytes.
Anything else is an ``InvalidRequestError`` that the v2 routes answer with a 400 naming the fault.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from wanwu.service.errors import InvalidRequestError
from wanwu.service.json_body import INVALID, Oversize, is_marker, parse_classify_json, string_bytes
from wanwu.service.uploads import ClassifyOptions, Upload, _options

INPUT = "image"
# categories: per image, a JSON string {"categories", "unknown", "summary"}, with "out_of_set" for a trained version
# that has the evidence (shape [N])
OUTPUTS = {"labels": "BYTES", "labels_zh": "BYTES", "scores": "FP32", "indices": "INT64", "categories": "BYTES"}
HEADER_LENGTH = "Inference-Header-Content-Length"
HOW_TO_SEND = f"the model takes one BYTES input {INPUT!r} of shape [N]: N encoded image files"


@dataclass
class InferRequest:
    uploads: list[Upload]
    raw: list[bool]  # element i was a JSON string that is not base64, read as its own bytes
    options: ClassifyOptions
    outputs: list[tuple[str, bool]]  # (name, as binary data)
    id: str | None = None


def _bad(message: str) -> InvalidRequestError:
    return InvalidRequestError(message)


def header_length(value: str | None, body_size: int) -> int | None:
    if value is None:
        return None
    value = value.strip()
    if not value.isdigit() or not 0 < int(value) <= body_size:
        raise _bad(f"invalid {HEADER_LENGTH} {value[:40]!r}: it must be the JSON header's length in bytes, "
                   f"between 1 and the body's {body_size:,}")
    return int(value)


def parse_infer_request(body: bytearray, header: str | None, settings) -> InferRequest:  # type: ignore[no-untyped-def]
    """An inference request body (JSON, or a JSON header + binary tensor data) -> what to classify and answer.

    Empties ``body``. Raises ``InvalidRequestError`` (400) for anything the protocol or this model does not allow.
    """
    size = header_length(header, len(body))
    if size is None:
        json_part, binary = body, memoryview(b"")
    else:
        json_part, binary = bytearray(body[:size]), memoryview(bytes(body[size:]))
        body.clear()
    try:
        payload, blobs = parse_classify_json(json_part, settings.max_images_per_request, settings.max_upload_bytes)
    except InvalidRequestError as err:
        raise _bad(str(err).replace("a classify request", "an inference request")) from None
    if not isinstance(payload, dict):
        raise _bad("the inference request must be a JSON object with 'inputs'")
    image = _the_input(payload.get("inputs"))
    count = _count(image.get("shape"), settings)
    params = image.get("parameters") or {}
    if not isinstance(params, dict):
        raise _bad(f"input {INPUT!r}: 'parameters' must be an object")
    if "binary_data_size" in params:
        if "data" in image:
            raise _bad(f"input {INPUT!r} has both 'data' and parameters.binary_data_size; send one")
        declared = params["binary_data_size"]
        if not isinstance(declared, int) or isinstance(declared, bool) or declared < 0:
            raise _bad(f"input {INPUT!r}: binary_data_size must be a byte count, not {declared!r}")
        if declared != len(binary):
            raise _bad(f"input {INPUT!r} declares binary_data_size {declared:,} but {len(binary):,} bytes follow the "
                       f"JSON header ({HEADER_LENGTH})")
        uploads, raw = _binary_elements(binary, count, settings.max_upload_bytes), [False] * count
    else:
        if len(binary):
            raise _bad(f"{len(binary):,} bytes follow the JSON header but no input declares parameters.binary_data_size")
        if "data" not in image:
            raise _bad(f"input {INPUT!r} has no 'data' and no parameters.binary_data_size")
        uploads, raw = _json_elements(image["data"], count, blobs)
    return InferRequest(uploads, raw, _request_options(payload, settings), _outputs(payload), id=_request_id(payload))


def _the_input(inputs: object) -> dict:
    if not isinstance(inputs, list) or not inputs:
        raise _bad(f"'inputs' must be a non-empty list; {HOW_TO_SEND}")
    for entry in inputs:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise _bad("each entry of 'inputs' must be an object with a 'name'")
    names = [entry["name"] for entry in inputs]
    if INPUT not in names:
        raise _bad(f"missing input {INPUT!r}; {HOW_TO_SEND}")
    extra = [n for n in names if n != INPUT]
    if extra or len(names) > 1:
        raise _bad(f"unexpected input {(extra or [INPUT])[0][:40]!r}; {HOW_TO_SEND}, once")
    image = inputs[0]
    if image.get("datatype") != "BYTES":
        raise _bad(f"input {INPUT!r} has datatype {str(image.get('datatype'))[:20]!r}; it must be BYTES (encoded image files)")
    return image


def _count(shape: object, settings) -> int:  # type: ignore[no-untyped-def]
    valid = isinstance(shape, list) and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
    if not valid or len(shape) != 1:  # type: ignore[arg-type]
        raise _bad(f"input {INPUT!r} has shape {str(shape)[:40]}; it must be [N], one encoded image file per element")
    count = shape[0]  # type: ignore[index]
    if count == 0:
        raise _bad(f"input {INPUT!r} has shape [0]: no image to classify")
    if count > settings.max_images_per_request:
        raise _bad(f"input {INPUT!r} has {count} images; the limit is {settings.max_images_per_request} "
                   "(WANWU_MAX_IMAGES_PER_REQUEST)")
    return count


def _binary_elements(data: memoryview, count: int, max_bytes: int) -> list[Upload]:
    """BYTES binary data: each element a 4-byte little-endian length, then that many bytes; nothing more."""
    uploads, offset, end = [], 0, len(data)
    for i in range(count):
        if offset + 4 > end:
            raise _bad(f"the binary data of input {INPUT!r} ends before element {i} of {count} (its 4-byte length is missing)")
        (length,) = struct.unpack_from("<I", data, offset)
        offset += 4
        if offset + length > end:
            raise _bad(f"element {i} of input {INPUT!r} declares {length:,} bytes but only {end - offset:,} remain")
        # An element over the image limit is not copied: the pipeline refuses it by its size (413).
        uploads.append(Upload(None, bytes(data[offset:offset + length])) if length <= max_bytes else Upload(None, b"", length))
        offset += length
    if offset != end:
        raise _bad(f"the binary data of input {INPUT!r} has {end - offset:,} bytes after the {count} elements its shape declares")
    return uploads


def _json_elements(data: object, count: int, blobs: dict[str, object]) -> tuple[list[Upload], list[bool]]:
    flat = list(_flatten(data))
    if len(flat) != count:
        raise _bad(f"input {INPUT!r} has shape [{count}] but {len(flat)} elements in 'data'")
    uploads, raw = [], []
    for i, entry in enumerate(flat):
        if not isinstance(entry, str):
            raise _bad(f"element {i} of input {INPUT!r} is {type(entry).__name__}; BYTES elements are strings "
                       "(base64-encoded image files)")
        value = string_bytes(entry, blobs)
        if value is INVALID and is_marker(entry):
            raise _bad(f"element {i} of input {INPUT!r} is not valid base64")
        if isinstance(value, Oversize):
            uploads.append(Upload(None, b"", value.size))
        elif isinstance(value, bytes):
            uploads.append(Upload(None, value))
        else:  # not base64: the string's own bytes, as the protocol sends BYTES in JSON
            uploads.append(Upload(None, entry.encode("utf-8", "surrogatepass")))
        raw.append(not isinstance(value, bytes | Oversize))
    return uploads, raw


def _flatten(data: object):  # type: ignore[no-untyped-def]
    if isinstance(data, list):
        for item in data:
            yield from _flatten(item)
    else:
        yield data


def _request_options(payload: dict, settings) -> ClassifyOptions:  # type: ignore[no-untyped-def]
    params = payload.get("parameters") or {}
    if not isinstance(params, dict):
        raise _bad("the request's 'parameters' must be an object")
    fields = {k: params.get(k) for k in ("top_k", "lang")}
    if any(is_marker(v) or isinstance(v, bool | dict | list) for v in fields.values()):
        raise _bad("parameters top_k and lang take a number and 'zh', 'en' or 'both'")
    return _options(fields, settings)  # messages that name the field


def _outputs(payload: dict) -> list[tuple[str, bool]]:
    params = payload.get("parameters") or {}
    binary_default = params.get("binary_data_output", False)
    if not isinstance(binary_default, bool):
        raise _bad("parameter binary_data_output must be true or false")
    requested = payload.get("outputs")
    if requested is None:
        lang = params.get("lang") or "both"
        names = [n for n in OUTPUTS if not (lang == "en" and n == "labels_zh" or lang == "zh" and n == "labels")]
        return [(n, binary_default) for n in names]
    if not isinstance(requested, list) or not requested:
        raise _bad("'outputs' must be a non-empty list of {\"name\": ...}")
    outputs: list[tuple[str, bool]] = []
    for entry in requested:
        name = entry.get("name") if isinstance(entry, dict) else None
        if name not in OUTPUTS:
            raise _bad(f"unknown output {str(name)[:40]!r}; the outputs are {', '.join(OUTPUTS)}")
        if any(name == n for n, _ in outputs):
            raise _bad(f"output {name!r} is requested twice")
        out_params = entry.get("parameters") or {}
        binary = out_params.get("binary_data", binary_default) if isinstance(out_params, dict) else None
        if not isinstance(binary, bool):
            raise _bad(f"output {name!r}: parameters.binary_data must be true or false")
        outputs.append((name, binary))
    return outputs


def _request_id(payload: dict) -> str | None:
    value = payload.get("id")
    if value is not None and (not isinstance(value, str) or is_marker(value) or len(value) > 256):
        raise _bad("'id' must be a string of at most 256 characters")
    return value
