"""Service fixtures: the app with a deterministic fake engine, in-process or on a live port."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient

from tests.helpers import FakeEngine, fake_classifier
from wanwu.service.app import create_app
from wanwu.service.settings import ServiceSettings


def wait_ready(get, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if get("/readyz").status_code == 200:
            return
        time.sleep(0.02)
    raise AssertionError("service never became ready")


@contextmanager
def running_client(tmp_path: Path, engine: FakeEngine | None = None, **overrides) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    settings = ServiceSettings(home=tmp_path, decode_threads=1, inference_threads=1, **overrides)
    app = create_app(settings, classifier=fake_classifier(tmp_path, engine))
    with TestClient(app) as client:
        wait_ready(client.get)
        yield client


@pytest.fixture()
def engine() -> FakeEngine:
    return FakeEngine()


@pytest.fixture()
def client(tmp_path: Path, engine: FakeEngine) -> Iterator[TestClient]:
    with running_client(tmp_path, engine) as c:
        yield c


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_ready(base: str, alive=lambda: True, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    """Polls ``base``/readyz until 200; fails if ``alive()`` turns false (the server died) or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or not alive():
            raise AssertionError(f"server at {base} never became ready")
        time.sleep(0.05)


@contextmanager
def live_server(app) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """The app under a real Uvicorn on 127.0.0.1 (for concurrency, which TestClient serialises)."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(base, thread.is_alive)
        yield base
    finally:
        server.should_exit = True
        thread.join(15)
