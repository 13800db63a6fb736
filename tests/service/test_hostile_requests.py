"""Hostile request bodies: streamed limits, JSON with limits, one broken image among several, no paths in errors."""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from tests.helpers import encode, fake_classifier, gradient_image
from tests.service.conftest import running_client
from wanwu.service.app import create_app
from wanwu.service.settings import ServiceSettings

PNG = encode(gradient_image(64, 48), "PNG")
BROKEN_SIZE = (13, 13)  # images of this size make Pillow "crash" (see broken_pillow)


def _assert_error(response, status: int, code: str, *fragments: str) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code
    for fragment in fragments:
        assert fragment in error["message"]
    return error


def asgi_post(app, path: str, headers: dict[str, str], chunks: Iterator[bytes]) -> tuple[int, dict, int]:  # type: ignore[no-untyped-def]
    """POSTs ``chunks`` straight into the ASGI app (TestClient would read the whole body first).

    Returns the status, the JSON body and how many body bytes the app asked for.
    """
    consumed = 0
    sent: list[dict] = []

    async def receive() -> dict:
        nonlocal consumed
        chunk = next(chunks, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        consumed += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
    }
    asyncio.run(app(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, json.loads(body), consumed


def _endless(first: bytes, chunk: int = 65536) -> Iterator[bytes]:
    yield first
    while True:
        yield b"A" * chunk


@pytest.mark.parametrize("declared", [False, True])
@pytest.mark.parametrize("kind", ["multipart", "json"])
def test_an_oversized_body_is_cut_off_at_the_limit(tmp_path: Path, kind: str, declared: bool) -> None:
    settings = ServiceSettings(home=tmp_path, max_upload_bytes=64 * 1024, max_images_per_request=2)
    app = create_app(settings, classifier=fake_classifier(tmp_path))
    if kind == "multipart":
        headers = {"content-type": "multipart/form-data; boundary=XX"}
        first = b'--XX\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n'
    else:
        headers, first = {"content-type": "application/json"}, b'{"images": ["'
    if declared:  # a lying Content-Length under the limit must not switch the streamed check off
        headers["content-length"] = "1000"
    status, body, consumed = asgi_post(app, "/v1/classify", headers, _endless(first))
    assert (status, body["error"]["code"]) == (413, "payload_too_large")
    assert "limit of" in body["error"]["message"] and "WANWU_MAX_UPLOAD_BYTES" in body["error"]["message"]
    assert settings.max_request_bytes < consumed <= settings.max_request_bytes + 65536 + len(first)


def test_a_declared_oversized_body_is_refused_unread(tmp_path: Path) -> None:
    settings = ServiceSettings(home=tmp_path, max_upload_bytes=64 * 1024)
    app = create_app(settings, classifier=fake_classifier(tmp_path))
    headers = {"content-type": "application/json", "content-length": str(10**9)}
    status, body, consumed = asgi_post(app, "/v1/classify", headers, _endless(b"{"))
    assert (status, consumed) == (413, 0)
    assert "1,000,000,000 bytes" in body["error"]["message"]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "100,000 brackets, commas and colons"),
        (b'{"images": ["x"], "deep": ' + b"[" * 3000 + b"]" * 3000 + b"}", "nested too deeply"),
        (b'{"images": ["x"], "top_k": ' + b"9" * 5000 + b"}", "a number of 5,000 characters"),
        (b'{"images": ["x"], "min_score": 0.' + b"1" * 100 + b"}", "a number of 102 characters"),
        (b'{"images": ["x"], "min_score": NaN}', "NaN is not a JSON number"),
        (b'{"images": ["x"], "top_k": -Infinity}', "-Infinity is not a JSON number"),
        (b"[" + b"{}," * 5000 + b"{}]", "brackets, commas and colons"),
        (b'{"images": ["\xff\xfe"]}', "not UTF-8"),
        (b"\x00" * 10, "not valid JSON"),
    ],
)
def test_hostile_json_is_a_422(client, body: bytes, fragment: str) -> None:  # type: ignore[no-untyped-def]
    response = client.post("/v1/classify", content=body, headers={"content-type": "application/json"})
    _assert_error(response, 422, "invalid_request", fragment)


def test_a_normal_json_request_still_parses(client) -> None:  # type: ignore[no-untyped-def]
    data = base64.b64encode(PNG).decode()
    payload = {"images": [data, {"data": f"data:image/png;base64,{data}", "filename": "a, b: {c}.png"}], "top_k": 3, "min_score": 0.0}
    results = client.post("/v1/classify", json=payload).json()["results"]
    assert [len(r["predictions"]) for r in results] == [3, 3]
    assert results[1]["filename"] == "a, b: {c}.png"


@pytest.fixture()
def broken_pillow(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pillow raising a TypeError while decoding one particular image, as crafted TIFFs make it do."""
    import wanwu.preprocess

    original = wanwu.preprocess.to_rgb

    def to_rgb(img: Image.Image) -> Image.Image:
        if img.size == BROKEN_SIZE:
            raise TypeError("'NoneType' object is not subscriptable")
        return original(img)

    monkeypatch.setattr(wanwu.preprocess, "to_rgb", to_rgb)


def test_a_crash_inside_pillow_fails_only_that_image(client, broken_pillow) -> None:  # type: ignore[no-untyped-def]
    bad = encode(gradient_image(*BROKEN_SIZE), "TIFF")
    alone = client.post("/v1/classify", files={"image": ("bad.tif", bad)})
    _assert_error(alone, 422, "corrupt_image", "TypeError")
    files = [("image", ("a.png", PNG)), ("image", ("bad.tif", bad)), ("image", ("c.png", PNG))]
    multipart = client.post("/v1/classify", files=files).json()["results"]
    as_json = client.post("/v1/classify", json={"images": [base64.b64encode(d).decode() for d in (PNG, bad, PNG)]}).json()["results"]
    for results in (multipart, as_json):
        assert ["predictions" in r for r in results] == [True, False, True]
        assert (results[1]["status"], results[1]["error"]["code"]) == (422, "corrupt_image")
    page = client.post("/", files=files)
    assert page.status_code == 200 and "TypeError" in page.text


def test_a_real_crafted_tiff_fails_only_its_own_image(client) -> None:  # type: ignore[no-untyped-def]
    from tests.unit.test_hostile_images import crafted_tiff

    bad = crafted_tiff()
    _assert_error(client.post("/v1/classify", files={"image": ("bad.tif", bad)}), 422, "corrupt_image", "TypeError")
    ok, failed = client.post("/v1/classify", json={"images": [base64.b64encode(d).decode() for d in (PNG, bad)]}).json()["results"]
    assert "predictions" in ok and (failed["status"], failed["error"]["code"]) == (422, "corrupt_image")
    page = client.post("/", files=[("image", ("a.png", PNG)), ("image", ("bad.tif", bad))])
    assert page.status_code == 200 and "TypeError" in page.text


def test_not_ready_message_names_no_path(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    secret = tmp_path / "very-secret-store"
    settings = ServiceSettings(home=secret, model="resnet18", engine="onnxruntime", weights=secret / "mine.pth")
    with TestClient(create_app(settings)) as client:
        for _ in range(200):
            response = client.get("/readyz")
            if "failed to load" in response.text:
                break
            asyncio.run(asyncio.sleep(0.05))
        error = _assert_error(response, 503, "not_ready", "failed to load (WeightsMissingError)")
        assert str(tmp_path) not in error["message"] and "/" not in error["message"]


def test_limits_still_answer_per_image(tmp_path: Path) -> None:
    with running_client(tmp_path, max_upload_bytes=4096, max_images_per_request=2) as client:
        files = [("image", ("a.png", PNG)), ("image", ("big.bin", b"\0" * 5000))]
        ok, big = client.post("/v1/classify", files=files).json()["results"]
        assert "predictions" in ok and (big["status"], big["error"]["code"]) == (413, "payload_too_large")


def test_json_with_a_bom_or_in_utf16_still_parses_as_before(client) -> None:  # type: ignore[no-untyped-def]
    body = json.dumps({"images": [base64.b64encode(PNG).decode()], "top_k": 2})
    for encoded in (b"\xef\xbb\xbf" + body.encode(), body.encode("utf-16")):
        response = client.post("/v1/classify", content=encoded, headers={"content-type": "application/json"})
        assert response.status_code == 200 and len(response.json()["results"][0]["predictions"]) == 2


def test_a_json_image_over_the_limit_is_refused_by_its_size(tmp_path: Path) -> None:
    big = base64.b64encode(os.urandom(5000)).decode()  # long enough to be taken out of the body undecoded
    with running_client(tmp_path, max_upload_bytes=4096, max_images_per_request=2) as client:
        response = client.post("/v1/classify", json={"images": [base64.b64encode(PNG).decode(), big]})
        ok, refused = response.json()["results"]
        assert "predictions" in ok and (refused["status"], refused["error"]["code"]) == (413, "payload_too_large")
        assert "upload is 5,000 bytes; the limit is 4,096 bytes" in refused["error"]["message"]


@pytest.mark.parametrize("parts", [1, 3])
def test_a_multipart_body_is_held_about_once(parts: int) -> None:
    """The files are handed over from the parser's buffers, not copied out of them (which peaked at ~2.05×)."""
    import hashlib
    import tracemalloc

    from starlette.requests import Request

    from wanwu.service.uploads import read_classify_request

    boundary, size = "wanwu-boundary", (24 << 20) // parts
    files = [os.urandom(size) for _ in range(parts)]
    digests = [hashlib.sha256(f).hexdigest() for f in files]
    head = 'Content-Disposition: form-data; name="image"; filename="{}.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'
    body = b"".join(f"--{boundary}\r\n{head.format(i)}".encode() + f + b"\r\n" for i, f in enumerate(files))
    body += f"--{boundary}--\r\n".encode()
    del files
    view, offsets = memoryview(body), iter(range(0, len(body), 65536))

    async def receive() -> dict:  # like a socket: each 64 KiB chunk is made when it is read, then dropped
        start = next(offsets, None)
        if start is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        return {"type": "http.request", "body": bytes(view[start:start + 65536]), "more_body": True}

    scope = {"type": "http", "method": "POST", "path": "/v1/classify", "query_string": b"", "headers": [
        (b"content-type", f"multipart/form-data; boundary={boundary}".encode()),
        (b"content-length", str(len(body)).encode()),
    ]}
    settings = ServiceSettings(max_upload_bytes=32 << 20)

    async def read() -> tuple[list, int]:
        tracemalloc.start()
        try:
            uploads, _ = await read_classify_request(Request(scope, receive), settings)
            return uploads, tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    uploads, peak = asyncio.run(read())
    assert [hashlib.sha256(u.data).hexdigest() for u in uploads] == digests
    assert [u.filename for u in uploads] == [f"{i}.jpg" for i in range(parts)]
    assert peak < 1.3 * len(body), f"reading a {len(body):,}-byte body took {peak / len(body):.2f}x its size at the peak"
