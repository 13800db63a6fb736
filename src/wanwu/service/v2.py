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

import numpy as np
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from wanwu import __version__
from wanwu.errors import CorruptImageError, ImageError, TooManyPixelsError, UnknownModelError, UnsupportedImageError, WanwuError
from wanwu.service.auth import require_api_key
from wanwu.service.errors import InvalidRequestError, ServiceError, UnsupportedRequestError, status_of
from wanwu.service.pipeline import Pipeline
from wanwu.service.state import ServiceState
from wanwu.service.uploads import ClassifyOptions, read_body
from wanwu.service.v2_openapi import ERROR, INFER_OPENAPI, INFER_RESPONSES, METADATA_RESPONSES
from wanwu.service.v2_request import HEADER_LENGTH, INPUT, OUTPUTS, InferRequest, parse_infer_request

PREFIX = "/v2"
EXTENSIONS = ["binary_tensor_data"]
PLATFORMS = {"onnxruntime": "onnxruntime_onnx", "openvino": "openvino", "torch": "pytorch"}

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
        "outputs": [{"name": name, "datatype": datatype, "shape": [-1] if name == "categories" else [-1, -1]}
                    for name, datatype in OUTPUTS.items()],
    }


# ---------------------------------------------------------------------------------------------------- requests


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


def _tensors(results: list[dict]) -> dict[str, tuple[np.ndarray | list[list[str]], list[int]]]:
    """Each output's value and shape: the top k classes ``[N, k]``, and per image its everyday categories, ``unknown``
    (a trained version with the evidence: ``out_of_set`` too) and summary as one JSON string ``[N]`` (categories ``[]``
    for a trained model, which keeps its own classes)."""
    rows = [r["predictions"] for r in results]
    n, k = len(rows), min(len(p) for p in rows)
    extra = [[json.dumps({"categories": r.get("categories", []), "unknown": r["unknown"],
                          **{key: r[key] for key in ("out_of_set",) if key in r}, "summary": r["summary"]},
                         ensure_ascii=False)] for r in results]
    return {
        "labels": ([[p["label"] for p in row[:k]] for row in rows], [n, k]),
        "labels_zh": ([[p["label_zh"] for p in row[:k]] for row in rows], [n, k]),
        "scores": (np.array([[p["score"] for p in row[:k]] for row in rows], np.float32).reshape(n, k), [n, k]),
        "indices": (np.array([[p["index"] for p in row[:k]] for row in rows], np.int64).reshape(n, k), [n, k]),
        "categories": (extra, [n]),
    }


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
    tensors = _tensors(results)
    classifier = pipeline.classifier
    outputs, parts = [], []
    for name, binary in request.outputs:
        value, shape = tensors[name]
        out = {"name": name, "datatype": OUTPUTS[name], "shape": shape}
        if binary:
            raw = _binary(value)
            out["parameters"] = {"binary_data_size": len(raw)}
            parts.append(raw)
        else:
            out["data"] = _json_data(value)
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


def add_v2_routes(app: FastAPI) -> None:
    router = APIRouter(prefix=PREFIX, tags=["v2 (Open Inference Protocol)"])

    @router.get("", summary="Server metadata")
    async def server_metadata() -> dict:
        return {"name": "wanwu", "version": __version__, "extensions": EXTENSIONS}

    @router.get("/health/live", summary="Server live")
    async def live() -> dict:
        return {"live": True}

    @router.get("/health/ready", summary="Server ready", responses={503: {"description": "still loading", **ERROR}})
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
