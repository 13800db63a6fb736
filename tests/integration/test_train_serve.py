"""Trained versions in the real service: switch shapes@1 -> shapes@2 under 8 concurrent clients with no failed
request; each answer matches the version that gave it (its head's SHA-256 and its own scores)."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.service.conftest import live_server
from tests.shapes import SHAPES, write_shapes
from wanwu.classifier import Classifier
from wanwu.cli import main
from wanwu.service.app import create_app
from wanwu.service.settings import ServiceSettings
from wanwu.trained.store import versions

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    home, data = tmp_path_factory.mktemp("serve-home"), tmp_path_factory.mktemp("shapes")
    write_shapes(data, per_class=6)
    assert main(["--home", str(home), "train", str(data), "--name", "shapes", "--threads", "2"]) == 0
    # version 2: one class more, so its answers cannot be mistaken for version 1's
    write_shapes(data, per_class=6, classes={"yellow square|黄色方块": ((230, 210, 30), "square")})
    assert main(["--home", str(home), "train", str(data), "--name", "shapes", "--threads", "2"]) == 0
    return home, write_shapes(tmp_path_factory.mktemp("probe"), per_class=1, seed=3)


def test_switching_versions_under_load(trained: tuple[Path, Path]) -> None:
    home, probe = trained
    v1, v2 = (v.manifest for v in versions(home, "shapes"))
    image = next(probe.glob("红色圆形/*.png")).read_bytes()
    expected = {  # each version's own answer for the probe image, from the Python API
        m["model"]: [p.as_dict() for p in Classifier.load(m["model"], engine="onnxruntime", home=home, threads=1).predict(image, 3)]
        for m in (v1, v2)
    }
    settings = ServiceSettings(home=home, model="shapes@1", engine="onnxruntime", precision="fp32", cache_size=0,
                               inference_threads=1, decode_threads=2, max_batch=4)
    app = create_app(settings)
    answers: list[tuple[float, int, dict]] = []
    stop = threading.Event()

    async def client() -> None:
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:
            while not stop.is_set():
                sent = time.monotonic()
                r = await http.post("/v1/classify?top_k=3", files={"image": ("probe.png", image)})
                answers.append((sent, r.status_code, r.json()))

    async def scenario() -> tuple[float, float]:
        clients = [asyncio.ensure_future(client()) for _ in range(8)]
        await asyncio.sleep(1.0)
        async with httpx.AsyncClient(base_url=base, timeout=120) as http:
            asked = time.monotonic()
            switched = await http.post("/v1/models/shapes/activate?version=2")
            done = time.monotonic()
        assert switched.status_code == 200, switched.text
        assert switched.json()["activated"] == "shapes@2" and switched.json()["previous"] == "shapes@1"
        await asyncio.sleep(1.0)
        stop.set()
        await asyncio.gather(*clients)
        return asked, done

    with live_server(app) as base:
        asked, done = asyncio.run(scenario())
        models = httpx.get(f"{base}/v1/models").json()
    assert [m["model"] for m in models["loaded"]] == ["shapes@2"]
    assert [t["model"] for t in models["trained"]] == ["shapes@1", "shapes@2"]
    assert len(answers) > 20 and all(status == 200 for _, status, _ in answers)
    heads = {"shapes@1": v1["files"]["head.npz"], "shapes@2": v2["files"]["head.npz"]}
    for _, _, body in answers:
        assert body["weights_sha256"] == heads[body["model"]]
        got = body["results"][0]["predictions"]
        assert [p["index"] for p in got] == [p["index"] for p in expected[body["model"]]]
        assert got[0]["score"] == pytest.approx(expected[body["model"]][0]["score"], abs=1e-4)
    assert {b["model"] for sent, _, b in answers if sent < asked} == {"shapes@1"}
    assert {b["model"] for sent, _, b in answers if sent > done} == {"shapes@2"}
    assert len(SHAPES) + 1 == len(v2["classes"])
