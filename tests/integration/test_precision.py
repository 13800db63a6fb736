"""Reduced precision on OpenVINO: bf16 and INT8 (NNCF) against fp32; INT8 artifacts keyed by calibration set."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import require_module
from wanwu.cli import main
from wanwu.datasets import labelled_images
from wanwu.engines import create_engine
from wanwu.errors import EngineUnavailableError
from wanwu.labels import get_labels
from wanwu.loader import open_runner
from wanwu.models import get_model_spec
from wanwu.precision.compare import compare, run_batched
from wanwu.preprocess import preprocess
from wanwu.sources import open_source

require_module("openvino")
MODEL = "efficientnet_lite0"


@pytest.fixture(scope="module")
def home(shared_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store of our own (INT8 artifacts must not leak into other tests), seeded with the exported bundle."""
    source = open_source(get_model_spec(MODEL), shared_home)
    source.onnx_path()
    home = tmp_path_factory.mktemp("precision-home")
    shutil.copytree(source.bundle, home / "compiled" / source.bundle.name, ignore=shutil.ignore_patterns("int8-*", "bf16-guard-*"))
    return home


@pytest.fixture(scope="module")
def source(home: Path):  # type: ignore[no-untyped-def]
    return open_source(get_model_spec(MODEL), home)


@pytest.fixture(scope="module")
def labelled(samples_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    spec = get_model_spec(MODEL)
    items = labelled_images(samples_dir, get_labels(spec.labels))
    images = np.stack([preprocess(p.read_bytes(), spec.preprocessing) for p, _ in items])
    return images, np.array([t for _, t in items])


@pytest.fixture(scope="module")
def fp32_logits(source, labelled) -> np.ndarray:  # type: ignore[no-untyped-def]
    return run_batched(create_engine("openvino", source, threads=2).run, labelled[0])


def _margins(logits: np.ndarray) -> np.ndarray:
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    top2 = np.sort(probs, axis=1)[:, -2:]
    return top2[:, 1] - top2[:, 0]


def _needs_bf16() -> None:
    from wanwu.engines.openvino_engine import cpu_has_bf16

    if not cpu_has_bf16():
        pytest.skip("this CPU has no bf16")


def test_unguarded_bf16_flips_only_near_ties(source, labelled, fp32_logits) -> None:  # type: ignore[no-untyped-def]
    _needs_bf16()
    bf16 = open_runner(source, "openvino", threads=2, precision="bf16", guard=False)
    report = compare(fp32_logits, run_batched(bf16.run, labelled[0]), labelled[1])
    # Measured 97% on this model: the 3 flips are near-ties in fp32 itself (top-1 vs top-2 probability
    # margin < 5 points), which is what bf16's 8-bit mantissa can flip. The guard (below) re-runs those.
    assert report["top1_agreement"] >= 0.97, report
    assert all(_margins(fp32_logits)[i] < 0.05 for i in report["disagreements"]), report
    assert abs(report["top1"] - report["top1_reference"]) <= 0.02, report


def test_int8_artifact_is_keyed_by_calibration_set(source, home: Path, samples_dir: Path, photos_dir: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from wanwu.datasets import image_files
    from wanwu.precision.int8 import int8_artifacts, quantize

    first, second = tmp_path / "a", tmp_path / "b"
    for folder, files in ((first, sorted(samples_dir.glob("*.JPEG"))[:8]), (second, sorted(photos_dir.glob("*.jpg")))):
        folder.mkdir()
        for f in files:
            shutil.copy2(f, folder / f.name)
    made = quantize(source, [first], augment=False)
    assert made.path.parent == source.bundle and made.path.name.startswith("int8-") and not made.reused
    assert {"model.xml", "model.bin", "report.json", "calibration.json"} <= {p.name for p in made.path.iterdir()}
    assert made.calibration["weights_sha256"] == source.weights_sha256 and made.calibration["images"] == 8
    assert made.path.name == f"int8-{made.calibration['calib_hash'][:12]}"
    again = quantize(source, [first], augment=False)
    assert again.reused and again.path == made.path
    other = quantize(source, [second], augment=False)
    assert not other.reused and other.path != made.path
    assert [a.path for a in int8_artifacts(source.bundle)] == [made.path, other.path]
    # a renamed copy of the same images is a different calibration set (names are part of the hash) ...
    (first / image_files([first])[0].name).rename(first / "renamed.JPEG")
    assert quantize(source, [first], augment=False).path not in (made.path, other.path)
    # ... and the engine loads the most recent artifact
    engine = open_runner(source, "openvino", threads=2, precision="int8")
    assert engine.artifact == int8_artifacts(source.bundle)[-1].path
    assert engine.run(np.zeros((2, 3, 224, 224), np.float32)).shape == (2, 1000)


def test_precision_unavailable_is_a_clear_error(source, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(EngineUnavailableError, match=r"onnxruntime does not offer precision int8.*int8 runs on: openvino"):
        open_runner(source, "onnxruntime", precision="int8")
    bare = tmp_path / "home"
    (bare / "compiled").mkdir(parents=True)
    shutil.copytree(source.bundle, bare / "compiled" / source.bundle.name, ignore=shutil.ignore_patterns("int8-*"))
    with pytest.raises(EngineUnavailableError, match=r"no INT8 model of efficientnet_lite0 .*wanwu quantize efficientnet_lite0 --calib DIR"):
        open_runner(open_source(get_model_spec(MODEL), bare), "openvino", precision="int8")
    import wanwu.engines.openvino_engine as ove

    monkeypatch.setattr(ove, "cpu_has_bf16", lambda core=None: False)
    with pytest.raises(EngineUnavailableError, match="this CPU has no bf16 support"):
        create_engine("openvino", source, precision="bf16")


@pytest.fixture(scope="module")
def guard_made(home: Path, photos_dir: Path) -> tuple[dict, list[str]]:
    """``wanwu quantize --precision bf16`` on the everyday photos only (the samples are the evaluation set)."""
    import contextlib
    import io

    _needs_bf16()
    args = ["--home", str(home), "quantize", MODEL, "--precision", "bf16", "--calib", str(photos_dir), "--threads", "2"]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main([*args, "--json"]) == 0
    return json.loads(out.getvalue().strip().splitlines()[-1]), args


@pytest.mark.slow
def test_guarded_bf16_agrees_with_fp32(guard_made, home: Path, source, labelled, fp32_logits, capsys) -> None:  # type: ignore[no-untyped-def]
    from wanwu.precision.guard import GuardedEngine, top_margin

    made, args = guard_made
    assert made["reused"] is False and made["margin"] > 0 and made["top1_agreement"] >= 0.995  # the target, on the views
    engine = open_runner(source, "openvino", threads=2, precision="bf16")
    assert isinstance(engine, GuardedEngine) and engine.margin == made["margin"]
    logits = run_batched(engine.run, labelled[0])
    # The bf16 target: ≥ 99 % top-1 agreement (measured: 100 %, 6 % of the samples re-run in fp32).
    report = compare(fp32_logits, logits, labelled[1])
    assert report["top1_agreement"] >= 0.99, report
    rechecked = top_margin(run_batched(engine.fast.run, labelled[0])) < engine.margin
    assert 0 < rechecked.mean() <= 0.2  # a few near-ties, not everything: else it would be fp32 at a higher price
    assert np.array_equal(logits[rechecked], fp32_logits[rechecked])
    assert engine.counts() == (len(logits), int(rechecked.sum()))  # only the guarded pass counts
    assert main([*args, "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["reused"] is True
    assert main(["--home", str(home), "models", "--json"]) == 0
    rows = {r["model"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert any(r["precision"] == "bf16" and r["margin"] == made["margin"] for r in rows[MODEL]["reports"])


@pytest.mark.slow
def test_service_serves_guarded_bf16_on_shared_models(guard_made, home: Path, samples_dir: Path) -> None:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from tests.service.conftest import wait_ready
    from wanwu.service.app import create_app
    from wanwu.service.settings import ServiceSettings

    settings = ServiceSettings(home=home, model=MODEL, engine="openvino", precision="bf16", inference_workers=2,
                               inference_threads=2, decode_threads=1, cache_size=0)
    images = sorted(samples_dir.glob("*.JPEG"))[:6]
    with TestClient(create_app(settings)) as client:
        wait_ready(client.get, timeout=120)
        for path in images:
            answer = client.post("/v1/classify", files={"image": (path.name, path.read_bytes(), "image/jpeg")})
            assert answer.status_code == 200 and answer.json()["precision"] == "bf16"
        guard = client.get("/v1/models").json()["active"]["bf16_guard"]
    assert guard["margin"] == guard_made[0]["margin"]
    # both workers' engines tally into one count (siblings on the same compiled models), warm-up included
    assert guard["images"] >= len(images) and 0 <= guard["rechecked_in_fp32"] <= guard["images"]


@pytest.mark.slow
def test_int8_agrees_with_fp32_and_is_reported(home: Path, source, samples_dir: Path, photos_dir: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    """The default recipe, calibrated on the everyday photos only: none of the evaluation images."""
    args = ["--home", str(home), "quantize", MODEL, "--calib", str(photos_dir)]
    assert main([*args, "--eval", str(samples_dir), "--threads", "2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["images"] == 100 and report["images_in_calibration_set"] == 0
    # The targets: agreement ≥ 98 %, top-1 within 1 point. Measured with this recipe: 98 %, 89 % vs 89 %
    # (97–98 % over four crop seeds); the flips are fp32 near-ties, so one image of slack is allowed here.
    assert report["top1_agreement"] >= 0.97, report
    assert report["top5_overlap"] >= 0.9, report
    assert report["top1_fp32"] - report["top1_int8"] <= 0.01, report
    assert main(["--home", str(home), "models", "--json"]) == 0
    rows = {r["model"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert any(r["top1_agreement"] == report["top1_agreement"] for r in rows[MODEL]["reports"])
