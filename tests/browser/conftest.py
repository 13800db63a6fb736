"""A real server (uvicorn in a thread, the bundled model) and headless Debian Chromium driven by Playwright."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import missing, require_module

CHROMIUM = Path(os.environ.get("WANWU_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


@dataclass(frozen=True)
class LiveServer:
    base_url: str
    model: str


@contextmanager
def _serve(home: Path, basetemp: Path, classifier: object = None, **overrides: object) -> Iterator[LiveServer]:
    """The real app with the bundled model (or ``classifier``), in uvicorn on a free port in a background thread."""
    require_module("fastapi")
    uvicorn = require_module("uvicorn")
    httpx = require_module("httpx")
    from wanwu.service.app import create_app
    from wanwu.service.settings import ServiceSettings

    with pytest.MonkeyPatch.context() as mp:
        # Module-scoped, so tests/conftest.py's per-test isolation does not cover it: do the same here.
        mp.setenv("TORCH_HOME", str(basetemp / "torch-home"))
        for name in ("WANWU_HOME", "WANWU_API_KEY", "WANWU_REDIS_URL"):
            mp.delenv(name, raising=False)
        settings = ServiceSettings(
            home=home, model="efficientnet_lite0", engine="onnxruntime", inference_threads=2, decode_threads=1, **overrides
        )
        config = uvicorn.Config(create_app(settings, classifier), host="127.0.0.1", port=0, log_level="warning", lifespan="on")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, name="wanwu-live-server", daemon=True)
        thread.start()
        try:
            deadline = time.monotonic() + 120
            while not server.started:
                if not thread.is_alive() or time.monotonic() > deadline:
                    pytest.fail("uvicorn did not start")
                time.sleep(0.02)
            port = server.servers[0].sockets[0].getsockname()[1]
            base_url = f"http://127.0.0.1:{port}"
            while True:
                response = httpx.get(f"{base_url}/readyz", timeout=5)
                if response.status_code == 200:
                    break
                if time.monotonic() > deadline:
                    pytest.fail(f"the service never became ready: {response.text}")
                time.sleep(0.1)
            yield LiveServer(base_url=base_url, model=getattr(classifier, "model_name", "efficientnet_lite0"))
        finally:
            server.should_exit = True
            thread.join(timeout=30)


@pytest.fixture(scope="module")
def live_server(shared_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with _serve(shared_home, tmp_path_factory.getbasetemp()) as server:
        yield server


API_KEY = "test-key-123"


@pytest.fixture(scope="module")
def keyed_server(shared_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The same app with an API key configured (``API_KEY``)."""
    with _serve(shared_home, tmp_path_factory.getbasetemp(), api_key=API_KEY, cache_size=0) as server:
        yield server


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    if not CHROMIUM.exists():
        missing(f"no Chromium at {CHROMIUM} (apt-get install chromium, or set WANWU_CHROMIUM)")
    sync_api = require_module("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def new_page(chromium, live_server: LiveServer) -> Iterator:  # type: ignore[no-untyped-def]
    """``new_page(server=live_server, **context_options)``: a fresh context each (own localStorage), closed after the test."""

    def make(server: LiveServer = live_server, **options):  # type: ignore[no-untyped-def]
        options.setdefault("viewport", {"width": 1280, "height": 900})
        options.setdefault("locale", "zh-CN")  # Accept-Language picks the page's language: the tests read Chinese
        context = chromium.new_context(base_url=server.base_url, **options)
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda err: errors.append(str(err)))
        return page

    contexts: list = []
    errors: list[str] = []
    yield make
    for context in contexts:
        context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


@pytest.fixture(scope="session")
def screenshot_dir() -> Path | None:
    """Set WANWU_SCREENSHOT_DIR to keep screenshots of the page (outside the repository)."""
    where = os.environ.get("WANWU_SCREENSHOT_DIR")
    if not where:
        return None
    path = Path(where)
    path.mkdir(parents=True, exist_ok=True)
    return path
