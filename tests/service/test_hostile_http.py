"""Every response is the JSON error shape: Uvicorn's own 400s, a bug's 500, CORS refusals, the end of the shutdown drain."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn
from fastapi.testclient import TestClient

from tests.helpers import fake_classifier
from tests.service.conftest import free_port, running_client, wait_until_ready
from wanwu.service.app import create_app
from wanwu.service.http11 import JsonErrorsH11Protocol
from wanwu.service.settings import ServiceSettings


@contextmanager
def json_server(tmp_path: Path, graceful_s: float = 5) -> Iterator[tuple[int, uvicorn.Server]]:
    """The app under Uvicorn as ``wanwu serve`` runs it (the JSON-errors protocol, a drain timeout)."""
    app = create_app(ServiceSettings(home=tmp_path, decode_threads=1, inference_threads=1), classifier=fake_classifier(tmp_path))
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="critical", http=JsonErrorsH11Protocol, timeout_graceful_shutdown=graceful_s
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until_ready(f"http://127.0.0.1:{port}", thread.is_alive)
        yield port, server
    finally:
        server.should_exit = True
        thread.join(15)


def _exchange(port: int, raw: bytes, then_wait: float = 5) -> tuple[int, dict[str, str], dict]:
    with socket.create_connection(("127.0.0.1", port), timeout=then_wait) as sock:
        # In two parts: h11's 16 KB header limit applies to a request still incomplete after a read.
        sock.sendall(raw[:20_000])
        time.sleep(0.05)
        try:
            sock.sendall(raw[20_000:])
        except OSError:
            pass  # already answered and closed
        return _read_response(sock)


def _read_response(sock: socket.socket) -> tuple[int, dict[str, str], dict]:
    data = b""
    while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < _length(data):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    return int(lines[0].split()[1]), headers, json.loads(body)


def _length(data: bytes) -> int:
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 1 << 30


@pytest.mark.parametrize(
    "raw",
    [
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n",
        b"POST /v1/classify HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
    ],
)
def test_uvicorns_own_400s_are_json(tmp_path: Path, raw: bytes) -> None:
    with json_server(tmp_path) as (port, _):
        status, headers, body = _exchange(port, raw)
    assert (status, headers["content-type"], headers["connection"]) == (400, "application/json", "close")
    assert body["error"]["code"] == "bad_request" and "malformed" in body["error"]["message"]


def test_a_request_cut_off_by_the_shutdown_drain_gets_a_json_503(tmp_path: Path) -> None:
    with json_server(tmp_path, graceful_s=0.5) as (port, server):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
            time.sleep(0.2)  # the request is in the app, waiting for the rest of its body
            server.should_exit = True
            status, headers, body = _read_response(sock)
    assert (status, body["error"]["code"]) == (503, "shutting_down")
    assert headers["content-type"] == "application/json" and headers["retry-after"]


def test_a_bug_is_a_json_500_without_a_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def bug(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("secret internals at /home/someone/file.py")

    monkeypatch.setattr("wanwu.service.app._classify_all", bug)
    app = create_app(ServiceSettings(home=tmp_path, decode_threads=1, inference_threads=1), classifier=fake_classifier(tmp_path))
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.post("/v1/classify", files={"image": ("a.png", b"x")})
    assert (response.status_code, response.headers["content-type"]) == (500, "application/json")
    assert response.json()["error"]["code"] == "internal_error"
    assert "secret" not in response.text and "Traceback" not in response.text


def test_a_refused_cors_preflight_is_json(tmp_path: Path) -> None:
    with running_client(tmp_path, cors_origins=["https://good.example"]) as client:
        preflight = {"Access-Control-Request-Method": "POST"}
        refused = client.options("/v1/classify", headers={"Origin": "https://evil.example", **preflight})
        allowed = client.options("/v1/classify", headers={"Origin": "https://good.example", **preflight})
    assert (refused.status_code, refused.headers["content-type"]) == (400, "application/json")
    assert refused.json()["error"]["code"] == "cors_rejected" and "origin" in refused.json()["error"]["message"]
    assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == "https://good.example"


def test_docs_and_redoc_load_nothing_from_the_internet(client) -> None:  # type: ignore[no-untyped-def]
    import re

    for page in ("/docs", "/redoc"):
        html = client.get(page)
        assert html.status_code == 200
        urls = re.findall(r"""(?:src|href)=["']([^"']+)["']|url:\s*["']([^"']+)["']""", html.text)
        assets = [u for pair in urls for u in pair if u]
        assert assets and not [u for u in assets if "://" in u or u.startswith("//")], assets
        for asset in assets:
            assert client.get(asset).status_code == 200, asset
    assert "SwaggerUIBundle" in client.get("/docs-assets/swagger-ui-bundle.js").text
    assert "Redoc" in client.get("/docs-assets/redoc.standalone.js").text[:2000]
