"""The Open Inference Protocol (KServe v2) driven by NVIDIA's own client, ``tritonclient[http]``, against a real
Uvicorn, and by hand (httpx) for what a client library would never send."""

from __future__ import annotations

import asyncio
import base64
import json
import struct
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.helpers import FakeEngine, encode, fake_classifier, gradient_image, require_module
from tests.service.conftest import live_server
from wanwu.service.app import create_app
from wanwu.service.settings import ServiceSettings

httpclient = require_module("tritonclient.http")
utils = require_module("tritonclient.utils")

MODEL = "efficientnet_lite0"
EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.jpg"))
PNG = encode(gradient_image(320, 240), "PNG")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("v2")
    settings = ServiceSettings(home=home, decode_threads=2, inference_threads=1, max_images_per_request=8,
                               max_upload_bytes=2 * 1024 * 1024, api_key="s3cret")
    with live_server(create_app(settings, classifier=fake_classifier(home, FakeEngine()))) as base:
        yield base


KEY = {"X-API-Key": "s3cret"}  # never handed to tritonclient itself: its infer() adds headers to the dict it is given


@pytest.fixture()
def client(server: str):  # type: ignore[no-untyped-def]
    c = httpclient.InferenceServerClient(url=server.removeprefix("http://"))
    yield c
    c.close()


def _jpegs() -> list[bytes]:
    assert len(EXAMPLES) >= 3, "the repository's examples/ photos are missing"
    return [p.read_bytes() for p in EXAMPLES]


def _v1_top1(server: str, images: list[bytes]) -> list[tuple[int, str, str]]:
    files = [("image", (f"{i}.jpg", data)) for i, data in enumerate(images)]
    results = httpx.post(f"{server}/v1/classify?top_k=3", files=files, headers=dict(KEY), timeout=30).json()["results"]
    return [(r["predictions"][0]["index"], r["predictions"][0]["label"], r["predictions"][0]["label_zh"]) for r in results]


def _status(err) -> int:  # type: ignore[no-untyped-def]
    return int(err.status())


# ---------------------------------------------------------------------------------------------- tritonclient


def test_health_and_metadata_through_tritonclient(client) -> None:  # type: ignore[no-untyped-def]
    assert client.is_server_live() and client.is_server_ready()
    meta = client.get_server_metadata()
    assert meta["name"] == "wanwu" and "binary_tensor_data" in meta["extensions"] and meta["version"]
    assert client.is_model_ready(MODEL, headers=dict(KEY)) and client.is_model_ready(MODEL, "1", headers=dict(KEY))
    model = client.get_model_metadata(MODEL, headers=dict(KEY))
    assert model["name"] == MODEL and model["versions"] == ["1"] and model["platform"] == "fake"
    assert model["inputs"] == [{"name": "image", "datatype": "BYTES", "shape": [-1]}]
    assert {(o["name"], o["datatype"]) for o in model["outputs"]} == {
        ("labels", "BYTES"), ("labels_zh", "BYTES"), ("scores", "FP32"), ("indices", "INT64"), ("categories", "BYTES")}
    assert client.get_model_metadata(MODEL, "1", headers=dict(KEY))["name"] == MODEL
    assert not client.is_model_ready("nope", headers=dict(KEY)) and not client.is_model_ready(MODEL, "2", headers=dict(KEY))


def test_binary_infer_of_n_jpegs_matches_v1(server: str, client) -> None:  # type: ignore[no-untyped-def]
    images = _jpegs()
    image = httpclient.InferInput("image", [len(images)], "BYTES")
    image.set_data_from_numpy(np.array(images, dtype=np.object_))  # binary: 4-byte length + bytes per element
    result = client.infer(MODEL, [image], headers=dict(KEY), parameters={"top_k": 3})  # outputs=None: all binary
    labels, labels_zh = result.as_numpy("labels"), result.as_numpy("labels_zh")
    scores, indices = result.as_numpy("scores"), result.as_numpy("indices")
    assert labels.shape == labels_zh.shape == scores.shape == indices.shape == (len(images), 3)
    assert scores.dtype == np.float32 and indices.dtype == np.int64
    assert np.all(np.diff(scores, axis=1) <= 0) and np.all((scores > 0) & (scores < 1))
    top1 = [(int(indices[i, 0]), labels[i, 0].decode(), labels_zh[i, 0].decode()) for i in range(len(images))]
    assert top1 == _v1_top1(server, images)
    categories = [json.loads(c) for c in result.as_numpy("categories")]  # one JSON string per image, as /v1 answers
    v1 = httpx.post(f"{server}/v1/classify", files=[("image", ("a.jpg", images[0], "image/jpeg"))], headers=dict(KEY)).json()
    assert result.as_numpy("categories").shape == (len(images),)
    assert categories[0] == {k: v1["results"][0][k] for k in ("categories", "unknown", "summary")}
    response = result.get_response()
    assert response["model_name"] == MODEL and response["model_version"] == "1"
    assert response["parameters"]["weights_sha256"] == "f" * 64


def test_json_infer_with_base64_matches_v1_and_binary(server: str, client) -> None:  # type: ignore[no-untyped-def]
    images = _jpegs()[:3]
    image = httpclient.InferInput("image", [len(images)], "BYTES")
    image.set_data_from_numpy(np.array([base64.b64encode(d) for d in images], dtype=np.object_), binary_data=False)
    outputs = [httpclient.InferRequestedOutput(n, binary_data=False) for n in ("indices", "labels")]
    result = client.infer(MODEL, [image], model_version="1", outputs=outputs, headers=dict(KEY), request_id="r-7")
    response = result.get_response()
    assert [o["name"] for o in response["outputs"]] == ["indices", "labels"] and response["id"] == "r-7"
    assert all("data" in o for o in response["outputs"])  # JSON mode: no binary part
    assert result.as_numpy("scores") is None  # not requested, not sent
    indices, labels = result.as_numpy("indices"), result.as_numpy("labels")
    assert indices.shape == (3, 5)  # the server's default top_k
    assert [(int(indices[i, 0]), labels[i, 0]) for i in range(3)] == [(i, en) for i, en, _ in _v1_top1(server, images)]


def test_mixed_outputs_binary_and_json(client) -> None:  # type: ignore[no-untyped-def]
    image = httpclient.InferInput("image", [1], "BYTES")
    image.set_data_from_numpy(np.array([PNG], dtype=np.object_))
    outputs = [httpclient.InferRequestedOutput("scores", binary_data=True), httpclient.InferRequestedOutput("labels_zh", binary_data=False)]
    result = client.infer(MODEL, [image], outputs=outputs, headers=dict(KEY), parameters={"top_k": 2})
    scores_out, zh_out = result.get_output("scores"), result.get_output("labels_zh")
    assert scores_out["parameters"]["binary_data_size"] == 8 and "data" in zh_out
    assert result.as_numpy("scores").shape == (1, 2) and len(result.as_numpy("labels_zh")[0, 0]) > 0


def test_protocol_errors_through_tritonclient(server: str, client) -> None:  # type: ignore[no-untyped-def]
    floats = httpclient.InferInput("image", [1, 4], "FP32")
    floats.set_data_from_numpy(np.zeros((1, 4), np.float32))
    with pytest.raises(utils.InferenceServerException) as err:
        client.infer(MODEL, [floats], headers=dict(KEY))
    assert _status(err.value) == 400 and "BYTES" in err.value.message()

    wrong_name = httpclient.InferInput("pixels", [1], "BYTES")
    wrong_name.set_data_from_numpy(np.array([PNG], dtype=np.object_))
    with pytest.raises(utils.InferenceServerException) as err:
        client.infer(MODEL, [wrong_name], headers=dict(KEY))
    assert _status(err.value) == 400 and "missing input 'image'" in err.value.message()

    image = httpclient.InferInput("image", [1], "BYTES")
    image.set_data_from_numpy(np.array([PNG], dtype=np.object_))
    with pytest.raises(utils.InferenceServerException) as err:
        client.infer("nope", [image], headers=dict(KEY))
    assert _status(err.value) == 404 and "not loaded" in err.value.message()
    with pytest.raises(utils.InferenceServerException) as err:
        client.infer(MODEL, [image], model_version="3", headers=dict(KEY))
    assert _status(err.value) == 404 and "version '3'" in err.value.message()
    with pytest.raises(utils.InferenceServerException) as err:
        client.infer(MODEL, [image], outputs=[httpclient.InferRequestedOutput("logits")], headers=dict(KEY))
    assert _status(err.value) == 400 and "unknown output 'logits'" in err.value.message()
    with pytest.raises(utils.InferenceServerException) as err:
        client.infer(MODEL, [image], parameters={"top_k": 0}, headers=dict(KEY))
    assert _status(err.value) == 400 and "top_k" in err.value.message()
    with pytest.raises(utils.InferenceServerException) as err:
        client.infer(MODEL, [image])  # no API key
    assert _status(err.value) == 401 and "X-API-Key" in err.value.message()


def test_a_corrupt_image_fails_its_request_by_element_and_nothing_else(server: str, client) -> None:  # type: ignore[no-untyped-def]
    images = _jpegs()[:2]
    batch = [images[0], images[1][: len(images[1]) // 3], b"not an image"]
    image = httpclient.InferInput("image", [3], "BYTES")
    image.set_data_from_numpy(np.array(batch, dtype=np.object_))
    with pytest.raises(utils.InferenceServerException) as err:
        client.infer(MODEL, [image], headers=dict(KEY))
    assert _status(err.value) == 422
    assert err.value.message().startswith("element 1 of input 'image': ") and "1 more failed" in err.value.message()

    async def together() -> list[httpx.Response]:  # good requests beside bad ones, batched together by the server
        async with httpx.AsyncClient(base_url=server, headers=dict(KEY), timeout=30) as ac:
            calls = [ac.post(f"/v2/models/{MODEL}/infer", json=_json_request(data)) for data in [*images, b"junk", *images]]
            return await asyncio.gather(*calls)

    responses = asyncio.run(together())
    assert [r.status_code for r in responses] == [200, 200, 422, 200, 200]
    assert responses[2].json()["error"].startswith("element 0 of input 'image': not an image")


# ---------------------------------------------------------------------------------------------- by hand


def _json_request(*images: bytes, **params: object) -> dict:
    data = [base64.b64encode(d).decode() for d in images]
    return {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [len(data)], "data": data}], "parameters": params}


def _binary_request(elements: bytes, shape: list[int], size: int | None = None) -> tuple[bytes, dict]:
    header = json.dumps({"inputs": [{"name": "image", "datatype": "BYTES", "shape": shape,
                                     "parameters": {"binary_data_size": len(elements) if size is None else size}}]}).encode()
    return header + elements, {"Inference-Header-Content-Length": str(len(header)), **KEY}


def _pack(*items: bytes) -> bytes:
    return b"".join(struct.pack("<I", len(b)) + b for b in items)


def _post(server: str, content: bytes, headers: dict | None = None, path: str = f"/v2/models/{MODEL}/infer") -> httpx.Response:
    return httpx.post(f"{server}{path}", content=content, headers={**KEY, **(headers or {})}, timeout=30)


def _error(response: httpx.Response, status: int, *fragments: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and isinstance(body["error"], str)
    for fragment in fragments:
        assert fragment in body["error"], body["error"]


def test_curl_style_json_and_name_at_version(server: str) -> None:
    response = httpx.post(f"{server}/v2/models/{MODEL}@1/infer", json=_json_request(PNG, top_k=1, lang="zh"), headers=dict(KEY))
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    outputs = {o["name"]: o for o in response.json()["outputs"]}
    assert set(outputs) == {"labels_zh", "scores", "indices", "categories"}  # lang=zh: no English labels by default
    assert outputs["indices"]["shape"] == [1, 1] and outputs["labels_zh"]["datatype"] == "BYTES"
    data_url = {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1],
                            "data": ["data:image/png;base64," + base64.b64encode(PNG).decode()]}]}
    again = httpx.post(f"{server}/v2/models/{MODEL}/versions/1/infer", json=data_url, headers=dict(KEY)).json()
    assert {o["name"]: o for o in again["outputs"]}["indices"]["data"][0] == outputs["indices"]["data"][0]


@pytest.mark.parametrize(
    ("body", "headers", "fragments"),
    [
        (b"{nope", {}, ("not valid JSON",)),
        (b"[1, 2]", {}, ("JSON object",)),
        (json.dumps({"inputs": []}).encode(), {}, ("non-empty list",)),
        (json.dumps({"inputs": [{"name": "image", "datatype": "BYTES", "shape": [2, 1], "data": ["a", "b"]}]}).encode(), {},
         ("shape [2, 1]", "[N]")),
        (json.dumps({"inputs": [{"name": "image", "datatype": "BYTES", "shape": [2], "data": ["aGk="]}]}).encode(), {},
         ("shape [2] but 1 elements",)),
        (json.dumps({"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "data": [3]}]}).encode(), {},
         ("element 0", "int")),
        (json.dumps({"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1]}]}).encode(), {}, ("no 'data'",)),
        (json.dumps({"inputs": [{"name": "image", "datatype": "BYTES", "shape": [99], "data": []}]}).encode(), {},
         ("WANWU_MAX_IMAGES_PER_REQUEST",)),
        (json.dumps({"inputs": [{"name": "image", "datatype": "BYTES", "shape": [0], "data": []}]}).encode(), {}, ("no image",)),
        (json.dumps(_json_request(PNG, lang="fr")).encode(), {}, ("lang",)),
        (json.dumps(_json_request(PNG, binary_data_output="yes")).encode(), {}, ("binary_data_output",)),
        (b"{}", {"Inference-Header-Content-Length": "abc"}, ("Inference-Header-Content-Length",)),
        (b"{}", {"Inference-Header-Content-Length": "999"}, ("Inference-Header-Content-Length",)),
        (b"{}", {"Inference-Header-Content-Length": "0"}, ("Inference-Header-Content-Length",)),
    ],
)
def test_bad_requests_get_400_and_the_protocols_error(server: str, body: bytes, headers: dict, fragments: tuple[str, ...]) -> None:
    _error(_post(server, body, headers), 400, *fragments)


def test_bad_binary_framing_is_400_naming_the_fault(server: str) -> None:
    good = _pack(PNG, PNG)
    _error(_post(server, *_binary_request(good, [3])), 400, "ends before element 2")
    _error(_post(server, *_binary_request(good[:-10], [2])), 400, "element 1", "declares")
    _error(_post(server, *_binary_request(good + b"xx", [2])), 400, "2 bytes after the 2 elements")
    _error(_post(server, *_binary_request(good, [2], size=len(good) - 1)), 400, "binary_data_size")
    body, headers = _binary_request(good, [2])
    length = int(headers["Inference-Header-Content-Length"])
    _error(_post(server, body[:length], {"Inference-Header-Content-Length": str(length)}), 400, "binary_data_size")
    _error(_post(server, json.dumps(_json_request(PNG)).encode() + b"\x00" * 8,
                 {"Inference-Header-Content-Length": str(len(json.dumps(_json_request(PNG))))}), 400, "no input declares")
    ok = _post(server, *_binary_request(good, [2]))
    assert ok.status_code == 200 and len(ok.json()["outputs"]) == 5


def test_raw_strings_corrupt_images_and_limits(server: str) -> None:
    raw = {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "data": ["hello, not base64!"]}]}
    _error(_post(server, json.dumps(raw).encode()), 422, "element 0", "not base64, so its own bytes were read")
    _error(_post(server, json.dumps(_json_request(PNG, b"GIF89a broken")).encode()), 422, "element 1 of input 'image'")
    big = b"\xff\xd8" + b"0" * (2 * 1024 * 1024)  # over WANWU_MAX_UPLOAD_BYTES (2 MiB here)
    _error(_post(server, *_binary_request(_pack(PNG, big), [2])), 413, "element 1", "WANWU_MAX_UPLOAD_BYTES")
    _error(_post(server, json.dumps(_json_request(big)).encode()), 413, "element 0", "WANWU_MAX_UPLOAD_BYTES")
    huge = b"{" + b" " * (8 * 2 * 1024 * 1024 * 4 // 3 + 70 * 1024) + b"}"  # over the request limit
    _error(_post(server, huge), 413, "WANWU_MAX_UPLOAD_BYTES")
    _error(httpx.get(f"{server}/v2/models/{MODEL}/infer", headers=dict(KEY)), 405)
    _error(httpx.get(f"{server}/v2/nothing"), 404)


def _metric(text: str, name: str) -> float:
    return float(next(line for line in text.splitlines() if line.startswith(name + " ")).split()[1])


def test_v2_shares_cache_and_metrics_with_v1(server: str) -> None:
    data = encode(gradient_image(123, 77), "PNG")  # bytes no other test sends
    first = httpx.post(f"{server}/v1/classify", files={"image": ("a.png", data)}, headers=dict(KEY)).json()["results"][0]
    assert first["cached"] is False
    before = httpx.get(f"{server}/metrics").text
    hits = _metric(before, "wanwu_cache_hits_total")
    response = httpx.post(f"{server}/v2/models/{MODEL}/infer", json=_json_request(data, top_k=1), headers=dict(KEY)).json()
    assert {o["name"]: o for o in response["outputs"]}["indices"]["data"] == [first["predictions"][0]["index"]]
    text = httpx.get(f"{server}/metrics").text
    assert _metric(text, "wanwu_cache_hits_total") == hits + 1
    assert 'route="/v2/models/{name}/infer",status="200"' in text


# ---------------------------------------------------------------------------------------------- OpenAPI


def test_openapi_declares_the_upload_field_options_and_v2_bodies(server: str) -> None:
    schema = httpx.get(f"{server}/openapi.json").json()
    classify = schema["paths"]["/v1/classify"]["post"]
    multipart = classify["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert multipart["properties"]["image"]["items"]["format"] == "binary" and "image" in multipart["required"]
    assert "images" in classify["requestBody"]["content"]["application/json"]["schema"]["properties"]
    query = {p["name"]: p for p in classify["parameters"] if p["in"] == "query"}
    assert set(query) == {"top_k", "min_score", "lang", "model", "view"}
    assert query["lang"]["schema"]["enum"] == ["zh", "en", "both"]
    for path in ("/v2/models/{name}/infer", "/v2/models/{name}/versions/{version}/infer"):
        infer = schema["paths"][path]["post"]
        body = infer["requestBody"]["content"]["application/json"]["schema"]
        assert body["properties"]["inputs"]["items"]["properties"]["datatype"]["enum"] == ["BYTES"]
        assert "application/octet-stream" in infer["requestBody"]["content"]
        names = {p["name"] for p in infer["parameters"]}
        assert {"name", "Inference-Header-Content-Length"} <= names and ("version" in names) == ("versions" in path)
        assert {"400", "404", "413", "422"} <= set(infer["responses"])
    for path in ("/v2", "/v2/health/live", "/v2/health/ready", "/v2/models/{name}", "/v2/models/{name}/versions/{version}/ready"):
        assert "get" in schema["paths"][path]


# ---------------------------------------------------------------------------------------------- readiness, KServe


def test_v2_health_ready_is_503_until_warm_and_live_at_once(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from tests.service.conftest import wait_ready

    engine = FakeEngine()
    engine.gate.clear()  # warm-up blocks until released
    app = create_app(ServiceSettings(home=tmp_path), classifier=fake_classifier(tmp_path, engine))
    with TestClient(app) as c:
        assert c.get("/v2/health/live").json() == {"live": True}
        not_ready = c.get("/v2/health/ready")
        assert not_ready.status_code == 503 and "still loading" in not_ready.json()["error"] and not_ready.headers["retry-after"]
        assert c.post(f"/v2/models/{MODEL}/infer", json=_json_request(PNG)).status_code == 503
        engine.gate.set()
        wait_ready(c.get)
        assert c.get("/v2/health/ready").json() == {"ready": True}


def test_kserve_manifest_probes_routes_the_app_serves() -> None:
    yaml = require_module("yaml")
    repo = Path(__file__).resolve().parents[2]
    manifest = yaml.safe_load((repo / "deploy" / "kserve.yaml").read_text())
    assert (manifest["apiVersion"], manifest["kind"]) == ("serving.kserve.io/v1beta1", "InferenceService")
    (container,) = manifest["spec"]["predictor"]["containers"]
    assert container["ports"][0]["containerPort"] == 8000 and "EXPOSE 8000" in (repo / "deploy" / "Dockerfile").read_text()
    probes = {kind: container[kind]["httpGet"] for kind in ("livenessProbe", "readinessProbe")}
    assert probes == {"livenessProbe": {"path": "/v2/health/live", "port": 8000}, "readinessProbe": {"path": "/v2/health/ready", "port": 8000}}
    paths = set(create_app(ServiceSettings()).openapi()["paths"])
    assert {"/v2/health/live", "/v2/health/ready"} <= paths
