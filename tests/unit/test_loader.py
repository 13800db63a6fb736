"""The loader: one request in, what runs and why out; ``auto`` resolved where the model runs (each Ray worker)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers import FakeEngine
from wanwu import loader
from wanwu.cpu import CpuInfo
from wanwu.loader import ModelRequest, load, open_source
from wanwu.precision import auto


class PrecisionEngine(FakeEngine):
    def __init__(self, precision: str, streams: int) -> None:
        super().__init__()
        self.precision, self.streams = precision, streams


@pytest.fixture
def engines(monkeypatch: pytest.MonkeyPatch) -> list[PrecisionEngine]:
    """Every engine the loader opens (fakes: no model file is read), in order."""
    opened: list[PrecisionEngine] = []

    def create(name, source, threads=1, precision="fp32", streams=1, model_file=None):  # type: ignore[no-untyped-def]
        opened.append(PrecisionEngine(precision, streams))
        return opened[-1]

    monkeypatch.setattr(loader, "create_engine", create)
    return opened


@pytest.fixture
def two_cpu_kinds(monkeypatch: pytest.MonkeyPatch, engines: list[PrecisionEngine]) -> dict:
    """Two CPU kinds: int8 is 3x faster than fp32 on "zen4", 10 % slower on "old"; INT8 is ready (98.5 % agreement)."""
    state = {"cpu": "zen4", "timed": []}
    kinds = {"zen4": {"fp32": 30.0, "int8": 10.0}, "old": {"fp32": 30.0, "int8": 33.0}}
    monkeypatch.setattr(auto, "cpu_info", lambda: CpuInfo(state["cpu"], 2, ()))
    monkeypatch.setattr(auto, "ready_precisions", lambda engine, source: ({"fp32": 1.0, "int8": 0.985}, {}))
    monkeypatch.setattr("wanwu.precision.int8.int8_model_file", lambda source, engine: Path("int8.xml"))

    def timer(open_unguarded, source, batch):  # type: ignore[no-untyped-def]
        def measure(precision: str) -> float:
            open_unguarded(precision)
            state["timed"].append((state["cpu"], precision))
            return kinds[state["cpu"]][precision]
        return measure

    monkeypatch.setattr(loader, "engine_timer", timer)
    return state


def test_auto_serves_the_engine_it_timed_where_it_is_built_the_same_way(tmp_path: Path, two_cpu_kinds: dict,
                                                                       engines: list[PrecisionEngine]) -> None:
    request = ModelRequest("efficientnet_lite0", "openvino", home=tmp_path, threads=2)
    loaded = load(request)
    assert loaded.precision == "int8" and loaded.engine is engines[1] and len(engines) == 2  # no second compile
    assert "int8 runs 3.00× fp32's speed" in loaded.why() and "efficientnet_lite0" in loaded.why()
    assert loaded.describe()["precision_auto"]["ms_per_image"] == {"fp32": 30.0, "int8": 10.0}

    two = load(ModelRequest("efficientnet_lite0", "openvino", home=tmp_path, threads=2, streams=2))  # remembered: not timed
    assert two.precision == "int8" and two.choice.cached and engines[-1].streams == 2 and len(engines) == 3
    explicit = load(ModelRequest("efficientnet_lite0", "openvino", home=tmp_path, precision="fp32"))
    assert explicit.choice is None and engines[-1].precision == "fp32" and "asked for" in explicit.why()


def test_default_threads_are_the_usable_cores_split_between_streams(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loader, "usable_cores", lambda: 8)
    assert ModelRequest().resolved().threads == 8
    assert ModelRequest(streams=4).resolved().threads == 2
    assert ModelRequest(streams=16).resolved().threads == 1
    assert ModelRequest(threads=3, streams=4).resolved().threads == 3


def test_an_unknown_model_lists_the_trained_ones_too(tmp_path: Path) -> None:
    from wanwu.errors import UnknownModelError

    version = tmp_path / "trained" / "shop@2"
    version.mkdir(parents=True)
    (version / "version.json").write_text(json.dumps({"name": "shop", "version": 2}))
    with pytest.raises(UnknownModelError, match=r"ImageNet models: .*efficientnet_lite0.*resnet18; trained here .*: shop@2$"):
        open_source(ModelRequest("nope", home=tmp_path))


def _jpeg(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (64, 80, 3), np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def test_a_ray_worker_resolves_auto_on_its_own_cpu_kind(tmp_path: Path, two_cpu_kinds: dict) -> None:
    """The driver keeps "auto"; each actor times on its CPU kind (once per kind: remembered in the bundle, as locally),
    and each record names the precision it ran with; the driver takes records of either precision as current."""
    from wanwu.tagging.on_ray import Tagger
    from wanwu.tagging.records import Existing, ModelInfo

    batch = {"bytes": np.array([_jpeg(1), _jpeg(2)], dtype=object), "path": np.array(["a.jpg", "b.jpg"], dtype=object)}
    records = {}
    for kind in ("zen4", "old", "zen4"):
        two_cpu_kinds["cpu"] = kind
        tagger = Tagger("efficientnet_lite0", "openvino", home=str(tmp_path), precision="auto", threads=1)
        records[kind] = [json.loads(r) for r in tagger(batch)["record"]]
    assert {r["precision"] for r in records["zen4"]} == {"int8"}
    assert {r["precision"] for r in records["old"]} == {"fp32"}
    assert two_cpu_kinds["timed"] == [("zen4", "fp32"), ("zen4", "int8"), ("old", "fp32"), ("old", "int8")]  # not again

    table = records["old"][0]["categories_version"]
    assert table and all(r["categories_version"] == table for r in records["zen4"])  # the actor names the category table
    run = ModelInfo("efficientnet_lite0", records["old"][0]["weights_sha256"], "auto", "openvino", "0", table)
    assert all(run.matches(r) for r in records["zen4"] + records["old"])
    existing = Existing(run.key)
    for record in records["zen4"]:
        existing.add(record)
    assert existing.is_done("a.jpg", records["zen4"][0]["sha256"])
    assert not ModelInfo("efficientnet_lite0", "0" * 64, "auto", "openvino", "0", table).matches(records["old"][0])
