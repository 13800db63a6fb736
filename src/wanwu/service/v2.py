"""The Open Inference Protocol (KServe v2) beside /v1, with Triton's binary tensor data extension.

A model is addressed by its slot name (``shop`` for ``shop@2``) and version (``2``; ``1`` for a registry
model). It takes one BYTES input ``image`` of shape [N]: N encoded image files, as base64 strings in JSON
(or, for what is not base64, the string's own bytes) or as binary data after the JSON header
(``Inference-Header-Content-Length``; each element a 4-byte little-endian length, then its bytes). It answers
``labels`` and ``labels_zh`` (BYTES [N, k]), ``scores`` (FP32 [N, k]) and ``indices`` (INT64 [N, k]),
in JSON or as binary data (``parameters.binary_data`` on an output, or ``binary_data_output`` on the request).

Every image goes through the same ``Pipeline`` as ``/v1/classify``: limits, cache, decode pool,
micro-batcher and metrics are shared. Errors are the protocol's ``{"error": "message"}``: 400 for a request
that breaks the protocol, 404 for a model or version that is not loaded, 413 for too many bytes, 422 for an
image that cannot be classified (the message names the element), 401/503 as on /v1.
"""

from __future__ import annotations

import asyncio
import json
import struct
from dataclasses import dataclass, field

import numpy as np
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from wanwu import __version__
from wanwu.errors import CorruptImageError, ImageError, TooManyPixelsError, UnknownModelError, UnsupportedImageError, WanwuError
from wanwu.service.auth import require_api_key
from wanwu.service.errors import InvalidRequestError, ServiceError, UnsupportedRequestError, status_of
from wanwu.service.json_body import INVALID, Oversize, is_marker, parse_classify_json, string_bytes
from wanwu.service.pipeline import Pipeline
from wanwu.service.state import ServiceState
from wanwu.service.uploads import ClassifyOptions, Upload, _options, read_body

PREFIX = "/v2"
INPUT = "image"
OUTPUTS = {"labels": "BYTES", "labels_zh": "BYTES", "scores": "FP32", "indices": "INT64"}
HEADER_LENGTH = "Inference-Header-Content-Length"
EXTENSIONS = ["binary_tensor_data"]
PLATFORMS = {"onnxruntime": "onnxruntime_onnx", "openvino": "openvino", "torch": "pytorch"}
HOW_TO_SEND = f"the model takes one BYTES input {INPUT!r} of shape [N]: N encoded image files"

_IMAGE_STATUS = (UnsupportedImageError, CorruptImageError, TooManyPixelsError)


def v2_status(err: WanwuError) -> int:
    """The protocol's status for an error: 400 for a bad request, 404 for an unknown model, 422 for an image
    that cannot be classified; 413, 401 and 503 as on /v1."""
    if isinstance(err, InvalidRequestError | UnsupportedRequestError):
        return 400
    if isinstance(err, UnknownModelError):
        return 404
    if isinstance(err, _IMAGE_STATUS):
        return 422
    return status_of(err)


def v2_error(err: WanwuError) -> JSONResponse:
    headers = err.headers if isinstance(err, ServiceError) else None
    return JSONResponse({"error": str(err)}, status_code=v2_status(err), headers=headers)


def is_v2(request: Request) -> bool:
    path = request.url.path
    return path == PREFIX or path.startswith(PREFIX + "/")


# ---------------------------------------------------------------------------------------------------- models


def version_of(model_name: str) -> str:
    """``shop@2`` -> ``2``; a registry model (no version of its own) -> ``1``."""
    return model_name.partition("@")[2] or "1"


def resolve(state: ServiceState, name: str, version: str | None) -> tuple[str, Pipeline]:
    """(slot, pipeline) of a loaded model; 503 while loading, 404 for a model or version that is not loaded."""
    state.require_ready()
    if version is None and "@" in name:  # NAME@V in the name itself, as wanwu writes it
        name, _, version = name.partition("@")
    pipeline = state.pipelines.get(name)
    if pipeline is None:
        loaded = ", ".join(f"{slot} (version {version_of(p.classifier.model_name)})" for slot, p in state.pipelines.items())
        raise UnknownModelError(f"model {name!r} is not loaded; loaded: {loaded}")
    serving = version_of(pipeline.classifier.model_name)
    if version is not None and version != serving:
        hint = f"; POST /v1/models/{name}/activate?version={version} loads it" if version.isdigit() and serving != "1" else ""
        raise UnknownModelError(f"version {version!r} of model {name!r} is not loaded (it serves version {serving}){hint}")
    return name, pipeline


def model_metadata(slot: str, pipeline: Pipeline) -> dict:
    engine = pipeline.classifier.engine
    return {
        "name": slot,
        "versions": [version_of(pipeline.classifier.model_name)],
        "platform": PLATFORMS.get(engine.name, engine.name),
        "inputs": [{"name": INPUT, "datatype": "BYTES", "shape": [-1]}],
        "outputs": [{"name": name, "datatype": datatype, "shape": [-1, -1]} for name, datatype in OUTPUTS.items()],
    }


# ---------------------------------------------------------------------------------------------------- requests


@dataclass
class InferRequest:
    uploads: list[Upload]
    raw: list[bool]  # element i was a JSON string that is not base64, read as its own bytes
    options: ClassifyOptions
    outputs: list[tuple[str, bool]]  # (name, as binary data)
    id: str | None = None
    parameters: dict = field(default_factory=dict)


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


# ---------------------------------------------------------------------------------------------------- answers


async def classify_all(state: ServiceState, pipeline: Pipeline, request: InferRequest) -> list[dict]:
    """Every element through the pipeline; the first that fails (by index) fails the request, naming it.

    The others still finish (nothing is left running), and a bad image never reaches the engine:
    it fails in decode, before the micro-batcher, so no other request's batch sees it.
    """
    options = ClassifyOptions(top_k=request.options.top_k, lang="both")
    pipeline.inflight += 1  # the caller picked it in the same step: a version being replaced waits for this request
    try:
        results = await asyncio.gather(*(pipeline.classify(u, options) for u in request.uploads), return_exceptions=True)
    finally:
        pipeline.inflight -= 1
    failed = [(i, r) for i, r in enumerate(results) if isinstance(r, BaseException)]
    for _, err in failed:
        if not isinstance(err, WanwuError):
            raise err
        state.metrics.images.labels("error").inc()
    if failed:
        i, err = failed[0]
        note = " (the string is not base64, so its own bytes were read)" if request.raw[i] and isinstance(err, ImageError) else ""
        others = f"; {len(failed) - 1} more failed" if len(failed) > 1 else ""
        wrapped = type(err)(f"element {i} of input {INPUT!r}: {err}{note}{others}")
        raise wrapped from None
    return results  # type: ignore[return-value]


def _tensors(results: list[dict]) -> tuple[dict[str, np.ndarray | list[list[str]]], list[int]]:
    rows = [r["predictions"] for r in results]
    k = min(len(p) for p in rows)
    tensors = {
        "labels": [[p["label"] for p in row[:k]] for row in rows],
        "labels_zh": [[p["label_zh"] for p in row[:k]] for row in rows],
        "scores": np.array([[p["score"] for p in row[:k]] for row in rows], np.float32).reshape(len(rows), k),
        "indices": np.array([[p["index"] for p in row[:k]] for row in rows], np.int64).reshape(len(rows), k),
    }
    return tensors, [len(rows), k]


def _binary(value: np.ndarray | list[list[str]]) -> bytes:
    if isinstance(value, np.ndarray):
        return value.astype(value.dtype.newbyteorder("<"), copy=False).tobytes()
    encoded = [s.encode() for row in value for s in row]
    return b"".join(struct.pack("<I", len(s)) + s for s in encoded)


def _json_data(value: np.ndarray | list[list[str]]) -> list:
    if isinstance(value, np.ndarray):
        return value.reshape(-1).tolist()
    return [s for row in value for s in row]


def infer_response(slot: str, pipeline: Pipeline, request: InferRequest, results: list[dict]) -> Response:
    tensors, shape = _tensors(results)
    classifier = pipeline.classifier
    outputs, parts = [], []
    for name, binary in request.outputs:
        out = {"name": name, "datatype": OUTPUTS[name], "shape": shape}
        if binary:
            raw = _binary(tensors[name])
            out["parameters"] = {"binary_data_size": len(raw)}
            parts.append(raw)
        else:
            out["data"] = _json_data(tensors[name])
        outputs.append(out)
    body = {
        "model_name": slot,
        "model_version": version_of(classifier.model_name),
        **({"id": request.id} if request.id is not None else {}),
        "parameters": {"model": classifier.model_name, "weights_sha256": classifier.weights_sha256,
                       "engine": classifier.engine.name, "precision": classifier.engine.precision},
        "outputs": outputs,
    }
    if not parts:
        return JSONResponse(body)
    header = json.dumps(body, ensure_ascii=False).encode()
    return Response(header + b"".join(parts), media_type="application/octet-stream",
                    headers={HEADER_LENGTH: str(len(header))})


# ---------------------------------------------------------------------------------------------------- routes


def _state(request: Request) -> ServiceState:
    return request.app.state.wanwu


_INFER_BODY = {
    "type": "object",
    "required": ["inputs"],
    "properties": {
        "id": {"type": "string"},
        "parameters": {
            "type": "object",
            "properties": {
                "top_k": {"type": "integer", "minimum": 1, "description": "classes per image (default: the server's --top-k)"},
                "lang": {"type": "string", "enum": ["zh", "en", "both"], "description": "label outputs returned by default"},
                "binary_data_output": {"type": "boolean", "description": "every output as binary tensor data"},
            },
        },
        "inputs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "datatype", "shape"],
                "properties": {
                    "name": {"type": "string", "enum": [INPUT]},
                    "datatype": {"type": "string", "enum": ["BYTES"]},
                    "shape": {"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 1},
                    "data": {"type": "array", "items": {"type": "string", "format": "byte"},
                             "description": "base64-encoded image files, one per element"},
                    "parameters": {"type": "object", "properties": {"binary_data_size": {"type": "integer"}}},
                },
            },
        },
        "outputs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": {"type": "string", "enum": list(OUTPUTS)},
                    "parameters": {"type": "object", "properties": {"binary_data": {"type": "boolean"}}},
                },
            },
        },
    },
}
_INFER_EXAMPLE = {
    "parameters": {"top_k": 3, "lang": "both"},
    "inputs": [{"name": INPUT, "datatype": "BYTES", "shape": [1], "data": ["<base64 of a JPEG>"]}],
    "outputs": [{"name": "labels"}, {"name": "scores"}],
}
INFER_OPENAPI = {
    "requestBody": {
        "required": True,
        "description": "A KServe v2 inference request. With Triton's binary tensor data extension the JSON is followed by "
        "the image files (each a 4-byte little-endian length, then its bytes) and the header "
        f"{HEADER_LENGTH} gives the JSON's length.",
        "content": {
            "application/json": {"schema": _INFER_BODY, "example": _INFER_EXAMPLE},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    },
    "parameters": [
        {"name": HEADER_LENGTH, "in": "header", "required": False, "schema": {"type": "integer", "minimum": 1},
         "description": "binary tensor data extension: the length of the JSON header at the start of the body"},
    ],
}
_TENSOR = {"type": "object", "properties": {"name": {"type": "string"}, "datatype": {"type": "string"},
                                            "shape": {"type": "array", "items": {"type": "integer"}}}}
_ERROR = {"content": {"application/json": {"schema": {"type": "object", "properties": {"error": {"type": "string"}}}}}}
METADATA_RESPONSES = {
    200: {"content": {"application/json": {"schema": {"type": "object", "properties": {
        "name": {"type": "string"}, "versions": {"type": "array", "items": {"type": "string"}}, "platform": {"type": "string"},
        "inputs": {"type": "array", "items": _TENSOR}, "outputs": {"type": "array", "items": _TENSOR}}}}}},
    404: {"description": "the model or version is not loaded", **_ERROR},
}
INFER_RESPONSES = {
    200: {"description": "JSON, or (binary outputs) a JSON header of Inference-Header-Content-Length bytes then the tensors",
          "content": {"application/json": {"schema": {"type": "object", "properties": {
              "model_name": {"type": "string"}, "model_version": {"type": "string"}, "id": {"type": "string"},
              "outputs": {"type": "array", "items": _TENSOR}}}}, "application/octet-stream": {}}},
    400: {"description": "the request breaks the protocol (datatype, shape, missing input, JSON, header length)", **_ERROR},
    404: {"description": "the model or version is not loaded", **_ERROR},
    413: {"description": "too many bytes (WANWU_MAX_UPLOAD_BYTES)", **_ERROR},
    422: {"description": "an image that cannot be classified; the message names the element", **_ERROR},
}


def add_v2_routes(app: FastAPI) -> None:
    router = APIRouter(prefix=PREFIX, tags=["v2 (Open Inference Protocol)"])

    @router.get("", summary="Server metadata")
    async def server_metadata() -> dict:
        return {"name": "wanwu", "version": __version__, "extensions": EXTENSIONS}

    @router.get("/health/live", summary="Server live")
    async def live() -> dict:
        return {"live": True}

    @router.get("/health/ready", summary="Server ready", responses={503: {"description": "still loading", **_ERROR}})
    async def ready(request: Request) -> dict:
        _state(request).require_ready()
        return {"ready": True}

    key = [Depends(require_api_key)]
    for suffix in ("", "/versions/{version}"):
        versioned = bool(suffix)
        base = "/models/{name}" + suffix
        router.add_api_route(base, _metadata_route(versioned), methods=["GET"], dependencies=key, responses=METADATA_RESPONSES,
                             summary="Model metadata" + (" (a version)" if versioned else ""))
        router.add_api_route(base + "/ready", _ready_route(versioned), methods=["GET"], dependencies=key,
                             summary="Model ready" + (" (a version)" if versioned else ""))
        router.add_api_route(base + "/infer", _infer_route(versioned), methods=["POST"], dependencies=key,
                             openapi_extra=INFER_OPENAPI, responses=INFER_RESPONSES,
                             summary="Inference" + (" (a version)" if versioned else ""),
                             description="Classify N encoded images: one BYTES input 'image' of shape [N].")
    app.include_router(router)


def _metadata_route(versioned: bool):  # type: ignore[no-untyped-def]
    async def metadata(request: Request, name: str) -> dict:
        slot, pipeline = resolve(_state(request), name, request.path_params.get("version"))
        return model_metadata(slot, pipeline)

    return _with_version(metadata) if versioned else metadata


def _ready_route(versioned: bool):  # type: ignore[no-untyped-def]
    async def model_ready(request: Request, name: str) -> dict:
        slot, _ = resolve(_state(request), name, request.path_params.get("version"))
        return {"name": slot, "ready": True}

    return _with_version(model_ready) if versioned else model_ready


def _infer_route(versioned: bool):  # type: ignore[no-untyped-def]
    async def infer(request: Request, name: str) -> Response:
        state = _state(request)
        version = request.path_params.get("version")
        resolve(state, name, version)  # a model that is not loaded is refused before the body is read
        body = await read_body(request, state.settings)
        parsed = await asyncio.to_thread(parse_infer_request, body, request.headers.get(HEADER_LENGTH), state.settings)
        slot, pipeline = resolve(state, name, version)  # again: a version may have been swapped in meanwhile
        results = await classify_all(state, pipeline, parsed)
        return infer_response(slot, pipeline, parsed, results)

    return _with_version(infer) if versioned else infer


def _with_version(route):  # type: ignore[no-untyped-def]
    """The same route with ``version`` declared as a path parameter (for the OpenAPI schema; it is read from the path)."""

    async def versioned(request: Request, name: str, version: str):  # type: ignore[no-untyped-def]
        return await route(request, name)

    versioned.__name__ = route.__name__ + "_version"
    return versioned
