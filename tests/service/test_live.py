"""The service under a real Uvicorn: concurrency, backpressure, a real Redis, the real model, SIGTERM."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.helpers import FakeEngine, encode, fake_classifier, gradient_image, missing
from tests.service.conftest import free_port, live_server, wait_until_ready
from wanwu.service.app import create_app
from wanwu.service.settings import ServiceSettings

JPEG = encode(gradient_image(500, 375), "JPEG")


def _distinct_images(n: int) -> list[bytes]:
    return [encode(gradient_image(200 + i, 150), "PNG") for i in range(n)]


async def _post_all(base: str, images: list[bytes], timeout: float = 30) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=base, timeout=timeout) as client:
        return await asyncio.gather(*(client.post("/v1/classify", files={"image": (f"{i}.png", data)}) for i, data in enumerate(images)))


def test_concurrent_requests_share_engine_calls(tmp_path: Path) -> None:
    engine = FakeEngine()
    settings = ServiceSettings(home=tmp_path, max_batch=4, max_wait_ms=50, decode_threads=2, cache_size=0)
    with live_server(create_app(settings, classifier=fake_classifier(tmp_path, engine))) as base:
        warmup = engine.calls_after_warmup(max_batch=4)
        engine.gate.clear()
        images = _distinct_images(12)

        async def scenario() -> list[httpx.Response]:
            task = asyncio.ensure_future(_post_all(base, images))
            await asyncio.sleep(0.3)
            engine.gate.set()
            return await task

        responses = asyncio.run(scenario())
    assert all(r.status_code == 200 for r in responses)
    sizes = engine.batches[warmup:]
    assert sum(sizes) == 12 and max(sizes) <= 4 and len(sizes) < 12  # batched, never over the maximum
    assert max(r.json()["results"][0]["timings_ms"]["queue"] for r in responses) > 0


def test_full_queue_answers_503_with_retry_after(tmp_path: Path) -> None:
    engine = FakeEngine()
    settings = ServiceSettings(home=tmp_path, max_batch=1, max_queue=2, max_wait_ms=0, cache_size=0)
    with live_server(create_app(settings, classifier=fake_classifier(tmp_path, engine))) as base:
        engine.gate.clear()

        async def scenario() -> list[httpx.Response]:
            task = asyncio.ensure_future(_post_all(base, _distinct_images(8)))
            await asyncio.sleep(0.5)
            engine.gate.set()
            return await task

        responses = asyncio.run(scenario())
    statuses = sorted(r.status_code for r in responses)
    assert 200 in statuses and 503 in statuses and set(statuses) <= {200, 503}
    busy = next(r for r in responses if r.status_code == 503)
    assert busy.headers["retry-after"] == "1"
    assert busy.json()["error"]["code"] == "overloaded" and "retry" in busy.json()["error"]["message"]


def test_request_timeout_is_a_503_naming_the_setting(tmp_path: Path) -> None:
    engine = FakeEngine()
    settings = ServiceSettings(home=tmp_path, request_timeout_s=0.2, cache_size=0)
    with live_server(create_app(settings, classifier=fake_classifier(tmp_path, engine))) as base:
        engine.gate.clear()
        try:
            response = httpx.post(f"{base}/v1/classify", files={"image": ("a.jpg", JPEG)}, timeout=10)
        finally:
            engine.gate.set()
        assert response.status_code == 503 and "WANWU_REQUEST_TIMEOUT_S" in response.json()["error"]["message"]
        assert httpx.post(f"{base}/v1/classify", files={"image": ("a.jpg", JPEG)}, timeout=10).status_code == 200


def test_a_failing_engine_fails_the_request_not_the_server(tmp_path: Path) -> None:
    engine = FakeEngine()
    settings = ServiceSettings(home=tmp_path, cache_size=0)
    with live_server(create_app(settings, classifier=fake_classifier(tmp_path, engine))) as base:
        engine.fail = RuntimeError("simulated engine fault")
        broken = httpx.post(f"{base}/v1/classify", files={"image": ("a.jpg", JPEG)}, timeout=10)
        assert broken.status_code == 500
        assert broken.json()["error"] == {"code": "inference_failed", "message": "inference failed: simulated engine fault"}
        engine.fail = None
        assert httpx.post(f"{base}/v1/classify", files={"image": ("a.jpg", JPEG)}, timeout=10).status_code == 200


@pytest.fixture()
def redis_url(tmp_path: Path):  # type: ignore[no-untyped-def]
    server = shutil.which("redis-server")
    if server is None:
        missing("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    proc = subprocess.Popen(
        [server, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )
    try:
        import redis

        client = redis.Redis(port=port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


def test_redis_cache_is_shared_between_replicas(tmp_path: Path, redis_url: str) -> None:
    first_engine, second_engine = FakeEngine(), FakeEngine()
    settings = ServiceSettings(home=tmp_path, redis_url=redis_url)
    with live_server(create_app(settings, classifier=fake_classifier(tmp_path, first_engine))) as one:
        with live_server(create_app(settings, classifier=fake_classifier(tmp_path, second_engine))) as two:
            warm = second_engine.calls_after_warmup()
            a = httpx.post(f"{one}/v1/classify", files={"image": ("a.jpg", JPEG)}, timeout=10).json()["results"][0]
            b = httpx.post(f"{two}/v1/classify?top_k=2", files={"image": ("b.jpg", JPEG)}, timeout=10).json()["results"][0]
            assert (a["cached"], b["cached"]) == (False, True)
            assert [p["index"] for p in b["predictions"]] == [p["index"] for p in a["predictions"][:2]]
            assert len(second_engine.batches) == warm  # the second replica never ran the engine
            metrics = httpx.get(f"{two}/metrics").text
            assert "wanwu_cache_hits_total 1.0" in metrics


def test_redis_outage_degrades_to_misses(tmp_path: Path) -> None:
    settings = ServiceSettings(home=tmp_path, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    with live_server(create_app(settings, classifier=fake_classifier(tmp_path))) as base:
        response = httpx.post(f"{base}/v1/classify", files={"image": ("a.jpg", JPEG)}, timeout=10)
        assert response.status_code == 200 and response.json()["results"][0]["cached"] is False


@pytest.mark.slow
def test_real_model_over_http_matches_the_cli(examples_dir: Path, shared_home: Path) -> None:
    from wanwu.classifier import Classifier

    settings = ServiceSettings(home=shared_home, model="efficientnet_lite0", engine="onnxruntime", inference_threads=2)
    with live_server(create_app(settings)) as base:
        data = (examples_dir / "chelsea.jpg").read_bytes()
        body = httpx.post(f"{base}/v1/classify", files={"image": ("chelsea.jpg", data)}, timeout=30).json()
    expected = Classifier.load("efficientnet_lite0", "onnxruntime", home=shared_home).predict(data)
    got = body["results"][0]["predictions"]
    assert [p["index"] for p in got] == [p.index for p in expected]
    assert all(abs(g["score"] - e.score) < 1e-4 for g, e in zip(got, expected, strict=True))
    assert body["model"] == "efficientnet_lite0" and body["engine"] == "onnxruntime"


@pytest.mark.slow
def test_sigterm_drains_in_flight_requests(shared_home: Path) -> None:
    """`wanwu serve` as users run it: a request in flight when SIGTERM arrives still gets its answer."""
    port = free_port()
    env = {**os.environ, "WANWU_HOME": str(shared_home), "WANWU_PORT": str(port), "WANWU_MODEL": "efficientnet_lite0",
           "WANWU_ENGINE": "onnxruntime", "WANWU_MAX_BATCH": "1", "WANWU_CACHE_SIZE": "0"}
    proc = subprocess.Popen([sys.executable, "-m", "wanwu.cli", "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(base, lambda: proc.poll() is None)
        images = [encode(gradient_image(1600 + i, 1200), "JPEG") for i in range(6)]

        async def scenario() -> list[httpx.Response]:
            task = asyncio.ensure_future(_post_all(base, images))
            await asyncio.sleep(0.15)
            proc.send_signal(signal.SIGTERM)
            return await task

        responses = asyncio.run(scenario())
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert [r.status_code for r in responses] == [200] * len(images)
