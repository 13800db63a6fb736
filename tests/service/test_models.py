"""Several models in one service: ``model=`` per request, ``/v1/models``, and switching versions live with no failed request."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import threading
import time
import weakref
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.helpers import FakeEngine, encode, gradient_image
from tests.service.conftest import live_server
from wanwu.classifier import Classifier
from wanwu.models import get_model_spec
from wanwu.service import state as state_module
from wanwu.service.app import create_app
from wanwu.service.settings import ServiceSettings
from wanwu.sources import ModelSource

PNG = encode(gradient_image(64, 48), "PNG")


class ConstantEngine(FakeEngine):
    """Every image's top class is ``top``: which version answered shows in the answer itself."""

    def __init__(self, top: int) -> None:
        super().__init__()
        self.top = top

    def run(self, batch: np.ndarray) -> np.ndarray:
        logits = np.zeros((len(batch), 1000), np.float32)
        logits[:, self.top] = 9.0
        time.sleep(0.002)  # a batch takes a moment, so requests overlap the switch
        return logits


def fake(tmp: Path, name: str, top: int) -> Classifier:
    spec = dataclasses.replace(get_model_spec("efficientnet_lite0"), name=name)
    return Classifier(ModelSource(spec, f"{top:064d}", tmp), ConstantEngine(top))


@pytest.fixture()
def versions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Classifier]:
    """``load_classifier`` by name: shop@1 answers class 1, shop@2 class 2, other@1 class 7."""
    made = {"shop@1": fake(tmp_path, "shop@1", 1), "shop@2": fake(tmp_path, "shop@2", 2), "other@1": fake(tmp_path, "other@1", 7)}
    made["shop"], made["other"] = made["shop@2"], made["other@1"]  # a plain name: the newest version

    def load(settings: ServiceSettings, model: str | None = None) -> Classifier:
        model = model or settings.model
        if model not in made:
            from wanwu.errors import UnknownModelError

            raise UnknownModelError(f"no trained model {model!r}")
        return made[model]

    monkeypatch.setattr(state_module, "load_classifier", load)
    return made


def _settings(tmp_path: Path, **overrides) -> ServiceSettings:  # type: ignore[no-untyped-def]
    return ServiceSettings(home=tmp_path, cache_size=0, decode_threads=2, inference_threads=1, **overrides)


def test_each_request_picks_a_loaded_model(tmp_path: Path, versions) -> None:  # type: ignore[no-untyped-def]
    settings = _settings(tmp_path, model="shop@1", extra_models=["other@1"])
    app = create_app(settings)
    from fastapi.testclient import TestClient

    with TestClient(app) as client:
        from tests.service.conftest import wait_ready

        wait_ready(client.get)
        default = client.post("/v1/classify", files={"image": ("a.png", PNG)}).json()
        other = client.post("/v1/classify?model=other", files={"image": ("a.png", PNG)}).json()
        pinned = client.post("/v1/classify", data={"model": "other@1"}, files={"image": ("a.png", PNG)}).json()
        assert (default["model"], default["results"][0]["predictions"][0]["index"]) == ("shop@1", 1)
        assert (other["model"], other["results"][0]["predictions"][0]["index"]) == ("other@1", 7)
        assert pinned["model"] == "other@1"
        missing = client.post("/v1/classify?model=nope", files={"image": ("a.png", PNG)})
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "unknown_model"
        assert "shop@1, other@1" in missing.json()["error"]["message"]
        wrong_version = client.post("/v1/classify?model=shop@9", files={"image": ("a.png", PNG)})
        assert wrong_version.status_code == 404
        loaded = client.get("/v1/models").json()["loaded"]
        assert [(m["name"], m["model"], m["default"]) for m in loaded] == [("shop", "shop@1", True), ("other", "other@1", False)]
        page = client.get("/").text
        assert 'name=model' in page and '<option value="other">other@1</option>' in page
        posted = client.post("/", data={"model": "other"}, files={"image": ("a.png", PNG)})  # the form, without JavaScript
        assert posted.status_code == 200 and '<option value="other" selected>other@1</option>' in posted.text


def test_activate_needs_the_api_key_and_names_a_model(tmp_path: Path, versions) -> None:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from tests.service.conftest import wait_ready

    with TestClient(create_app(_settings(tmp_path, api_key="k", model="shop@1"))) as client:
        wait_ready(client.get)
        assert client.post("/v1/models/shop/activate?version=2").status_code == 401
        headers = {"X-API-Key": "k"}
        missing = client.post("/v1/models/nope/activate", headers=headers)
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "unknown_model"
        bad = client.post("/v1/models/shop/activate?version=x", headers=headers)
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_request"
        done = client.post("/v1/models/shop/activate?version=2", headers=headers)
        assert done.status_code == 200, done.text
        assert done.json()["activated"] == "shop@2" and done.json()["previous"] == "shop@1"
        added = client.post("/v1/models/other/activate", headers=headers).json()  # a new name is loaded beside
        assert [(m["model"], m["default"]) for m in added["loaded"]] == [("shop@2", True), ("other@1", False)]
        made_default = client.post("/v1/models/other/activate?default=true", headers=headers).json()
        assert [(m["model"], m["default"]) for m in made_default["loaded"]] == [("shop@2", False), ("other@1", True)]


def test_switching_versions_under_load_fails_no_request(tmp_path: Path, versions) -> None:  # type: ignore[no-untyped-def]
    """8 clients post without pause while shop@1 is replaced by shop@2: every answer is 200 and comes from the version
    that was active when it was asked (class 1 from shop@1, class 2 from shop@2), and shop@1 stops afterwards."""
    app = create_app(_settings(tmp_path, model="shop@1", max_batch=4))
    with live_server(app) as base:
        stop = threading.Event()
        old: list = []
        answers: list[tuple[float, int, str, int]] = []

        async def client() -> None:
            async with httpx.AsyncClient(base_url=base, timeout=30) as http:
                while not stop.is_set():
                    sent = time.monotonic()
                    r = await http.post("/v1/classify", files={"image": ("a.png", PNG)})
                    body = r.json()
                    top = body["results"][0]["predictions"][0]["index"] if r.status_code == 200 else -1
                    answers.append((sent, r.status_code, body.get("model", ""), top))

        async def scenario() -> tuple[float, float]:
            clients = [asyncio.ensure_future(client()) for _ in range(8)]
            await asyncio.sleep(0.5)
            old.append(app.state.wanwu.pipelines["shop"])
            async with httpx.AsyncClient(base_url=base, timeout=60) as http:
                asked = time.monotonic()
                switched = await http.post("/v1/models/shop/activate?version=2")
                done = time.monotonic()
            assert switched.status_code == 200, switched.text
            await asyncio.sleep(0.5)
            stop.set()
            await asyncio.gather(*clients)
            return asked, done

        asked, done = asyncio.run(scenario())
        assert list(app.state.wanwu.pipelines) == ["shop"]
        deadline = time.monotonic() + 10
        while app.state.wanwu._retiring and time.monotonic() < deadline:
            time.sleep(0.05)
    assert len(answers) > 50 and all(status == 200 for _, status, _, _ in answers)
    assert all((model, top) in {("shop@1", 1), ("shop@2", 2)} for _, _, model, top in answers)
    assert {model for sent, _, model, _ in answers if sent < asked} == {"shop@1"}
    assert {model for sent, _, model, _ in answers if sent > done} == {"shop@2"}
    assert old[0].classifier.model_name == "shop@1" and old[0].inflight == 0
    assert not any(t.is_alive() for t in old[0].batcher._threads)  # shop@1 stopped: one model's worth is left
    gone = weakref.ref(old.pop())
    gc.collect()
    assert gone() is None  # nothing in the service still holds the replaced version (its engine is freed)


def test_serve_takes_model_more_than_once() -> None:
    from wanwu.cli import build_parser
    from wanwu.cli.serve import settings_from_args

    settings = settings_from_args(build_parser().parse_args(["serve", "--model", "shop@1", "--model", "efficientnet_lite0"]))
    assert settings.model == "shop@1" and settings.extra_models == ["efficientnet_lite0"]
    single = settings_from_args(build_parser().parse_args(["serve", "--model", "resnet18"]))
    assert single.model == "resnet18" and single.extra_models == []
