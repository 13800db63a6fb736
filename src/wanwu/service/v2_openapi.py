"""The OpenAPI schema of the v2 routes: they read their bodies themselves, so ``/docs`` learns their shape here."""

from __future__ import annotations

from wanwu.service.v2_request import HEADER_LENGTH, INPUT, OUTPUTS

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
ERROR = {"content": {"application/json": {"schema": {"type": "object", "properties": {"error": {"type": "string"}}}}}}
METADATA_RESPONSES = {
    200: {"content": {"application/json": {"schema": {"type": "object", "properties": {
        "name": {"type": "string"}, "versions": {"type": "array", "items": {"type": "string"}}, "platform": {"type": "string"},
        "inputs": {"type": "array", "items": _TENSOR}, "outputs": {"type": "array", "items": _TENSOR}}}}}},
    404: {"description": "the model or version is not loaded", **ERROR},
}
INFER_RESPONSES = {
    200: {"description": "JSON, or (binary outputs) a JSON header of Inference-Header-Content-Length bytes then the tensors",
          "content": {"application/json": {"schema": {"type": "object", "properties": {
              "model_name": {"type": "string"}, "model_version": {"type": "string"}, "id": {"type": "string"},
              "outputs": {"type": "array", "items": _TENSOR}}}}, "application/octet-stream": {}}},
    400: {"description": "the request breaks the protocol (datatype, shape, missing input, JSON, header length)", **ERROR},
    404: {"description": "the model or version is not loaded", **ERROR},
    413: {"description": "too many bytes (WANWU_MAX_UPLOAD_BYTES)", **ERROR},
    422: {"description": "an image that cannot be classified; the message names the element", **ERROR},
}
