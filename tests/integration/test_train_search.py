"""``wanwu train``'s default ``--base auto`` with the real EfficientNet-Lite0 and Lite2: the base and features are
chosen by cross-validation and recorded (version.json, --json, the report); an explicit --base skips the search;
a large set skips it and says why; the chosen model is the head on the cached features it was chosen with."""

from __future__ import annotations

import contextlib
import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import int8_agreement, open_model
from tests.shapes import write_shapes
from wanwu.classifier import Classifier
from wanwu.cli import main
from wanwu.store import Layout
from wanwu.trained.store import versions
from wanwu.training import search
from wanwu.training.embed import EmbeddingCache, cache_folder
from wanwu.training.head import Head
from wanwu.training.train import training_preprocessing

pytestmark = pytest.mark.slow

CACHED_ATOL = 1e-3  # stored graph vs the head on cached embeddings (measured ~1e-5, see test_train_features)
TORCH_ATOL = 1e-3  # the torch reference (the base from its checkpoint + the head) vs ONNX Runtime


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("search-home")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_shapes(tmp_path_factory.mktemp("shapes") / "train", per_class=6)


def _train(home: Path, data: Path, name: str, *extra: str) -> dict:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["--home", str(home), "train", str(data), "--name", name, "--augment", "none", "--json",
                     "--threads", "2", *extra]) == 0
    return json.loads(out.getvalue())


@pytest.fixture(scope="module")
def auto(home: Path, data: Path) -> dict:
    return _train(home, data, "auto")


def test_the_base_is_chosen_by_cross_validation_and_recorded(auto: dict, home: Path) -> None:
    choice = auto["base_choice"]
    assert choice["how"] == "cross-validation" and choice["folds"] == 5  # 6 images per class, 1 of them validates
    scored = choice["candidates"]
    first, second = search.JOINED
    assert [(c["base"], c["companion"], c["features"]) for c in scored] == [
        *((b, None, f) for b in search.CANDIDATE_BASES for f in search.CANDIDATE_FEATURES),
        *((first, second, f) for f in search.CANDIDATE_FEATURES)]  # the pair last: the richest
    assert all(c["images"] == choice["images"] == 15 and 0 <= c["correct"] <= 15 for c in scored)
    chosen = next(c for c in scored if all(c[k] == choice["chosen"][k] for k in ("base", "companion", "features")))
    richest = scored[-1]  # kept unless another leads by more than one standard error: more than one image
    assert chosen is richest or (chosen["correct"] - richest["correct"] >= 2 and "it beat the richest" in choice["summary"])
    assert auto["base"]["model"] == chosen["base"] and auto["head"]["features"]["kind"] == chosen["features"]
    assert (auto["head"]["features"].get("companion") or {}).get("model") == chosen["companion"]
    for c in scored:
        assert f"{_pair(c)} {c['features']} {c['cv_top1']:.3f}" in choice["summary"] or c is chosen
    manifest = next(v.manifest for v in versions(home, "auto"))
    assert manifest["base_choice"] == choice
    report = (Layout(home).trained / "auto@1" / "report.html").read_text(encoding="utf-8")
    assert "chosen by cross-validation" in report and f"CV {_pair(scored[-1])} {scored[-1]['features']}" in report


def _pair(candidate: dict) -> str:
    return candidate["base"] + (f"+{candidate['companion']}" if candidate["companion"] else "")


def test_an_explicit_base_skips_the_search(data: Path, tmp_path: Path) -> None:
    summary = _train(tmp_path, data, "lite2", "--base", "efficientnet_lite2")
    assert summary["base_choice"]["how"] == "--base" and summary["base_choice"]["candidates"] == []
    assert summary["base"]["model"] == "efficientnet_lite2" and "bases" not in summary["extraction"]
    assert [p.name.split("-")[0] for p in (tmp_path / "embeddings").iterdir()] == ["efficientnet_lite2"]


def test_a_large_set_skips_the_search_and_says_why(data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(search, "SEARCH_UP_TO", 5)
    summary = _train(tmp_path, data, "big")
    assert summary["base_choice"]["how"] == "default" and "above 5" in summary["base_choice"]["summary"]
    assert summary["base"]["model"] == "efficientnet_lite0"


@pytest.mark.parametrize("base", search.CANDIDATE_BASES)
def test_a_global_choice_is_the_head_on_the_first_columns_of_its_pyramid_features(home: Path, data: Path, base: str,
                                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The search reads global features as the first columns of the pyramid ones; the stored graph computes them with
    the base's own pooling, on ONNX Runtime and in torch."""
    monkeypatch.setattr(search, "CANDIDATE_BASES", (base,))
    monkeypatch.setattr(search, "JOINED_UP_TO", 0)
    summary = _train(home, data, f"global-{base[-5:]}", "--features", "global")
    assert summary["base_choice"]["chosen"] == {"base": base, "companion": None, "features": "global"}
    ref = summary["model"]
    with open(Layout(home).trained / ref / "images.tsv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    source = open_model(base, home)
    cache = EmbeddingCache(cache_folder(home, source, training_preprocessing(source.spec.preprocessing, "full"), "pyramid"))
    vectors = np.stack([cache.get(r["sha256"], "center")[:1280] for r in rows])
    expected = Head(*open_model(ref, home).head(), 0, 0.0).logits(vectors)  # type: ignore[attr-defined]
    onnx = Classifier.load(ref, engine="onnxruntime", home=home, threads=2)
    pixels = np.stack([onnx.pixels(Path(r["path"])) for r in rows])
    np.testing.assert_allclose(onnx.logits(pixels), expected, atol=CACHED_ATOL)
    torch = Classifier.load(ref, engine="torch", home=home, threads=2)
    np.testing.assert_allclose(torch.logits(pixels[:4]), expected[:4], atol=TORCH_ATOL)


def test_a_joined_pair_is_the_head_on_both_bases_cached_features_on_every_engine(home: Path, data: Path) -> None:
    """``--base efficientnet_lite2+efficientnet_lite0``: Lite0 reads Lite2's input resized in the graph; the stored
    graph is the head on [Lite2's features, Lite0's features of that input] as training cached them, on ONNX Runtime,
    OpenVINO and in torch; the version says it runs on both."""
    summary = _train(home, data, "pair", "--base", "efficientnet_lite2+efficientnet_lite0", "--features", "global")
    companion = summary["head"]["features"]["companion"]
    assert summary["base"]["model"] == "efficientnet_lite2" and summary["head"]["embedding_size"] == 2 * 1280
    assert companion["model"] == "efficientnet_lite0" and companion["size"] == 260 and companion["kind"] == "global"
    assert set(summary["extraction"]["bases"]) == {"efficientnet_lite2", "efficientnet_lite0@260"}
    with open(Layout(home).trained / "pair@1" / "images.tsv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    lite2, lite0 = open_model("efficientnet_lite2", home), open_model("efficientnet_lite0", home)
    pre = training_preprocessing(lite2.spec.preprocessing, "full")
    caches = [EmbeddingCache(cache_folder(home, base, pre, "global")) for base in (lite2, lite0)]
    vectors = np.stack([np.concatenate([c.get(r["sha256"], "center") for c in caches]) for r in rows])
    expected = Head(*open_model("pair@1", home).head(), 0, 0.0).logits(vectors)  # type: ignore[attr-defined]
    onnx = Classifier.load("pair@1", engine="onnxruntime", home=home, threads=2)
    pixels = np.stack([onnx.pixels(Path(r["path"])) for r in rows])
    np.testing.assert_allclose(onnx.logits(pixels), expected, atol=CACHED_ATOL)
    openvino = Classifier.load("pair@1", engine="openvino", home=home, threads=2)
    np.testing.assert_allclose(openvino.logits(pixels), expected, atol=CACHED_ATOL)
    torch = Classifier.load("pair@1", engine="torch", home=home, threads=2)
    np.testing.assert_allclose(torch.logits(pixels[:4]), expected[:4], atol=TORCH_ATOL)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["--home", str(home), "models", "--json"]) == 0
    listed = {m["model"]: m for m in map(json.loads, out.getvalue().splitlines())}
    assert listed["pair@1"]["base"] == "efficientnet_lite2+efficientnet_lite0"


def test_fine_tuning_refuses_a_joined_pair(data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--home", str(tmp_path), "train", str(data), "--name", "ft", "--mode", "finetune",
                 "--base", "efficientnet_lite2+efficientnet_lite0"])
    assert code == 1 and "two bases joined) is for --mode head" in capsys.readouterr().err
    assert not (tmp_path / "trained").exists() or not any((tmp_path / "trained").iterdir())


def test_a_joined_pair_quantizes_and_int8_agrees(home: Path, data: Path) -> None:
    """The companion's in-graph resize survives `wanwu quantize` (OpenVINO's CPU plugin refused it once: its sizes
    were computed from the input's shape); the INT8 pair serves the fp32 answers."""
    if not (Layout(home).trained / "pair@1").is_dir():
        _train(home, data, "pair", "--base", "efficientnet_lite2+efficientnet_lite0", "--features", "global")
    assert main(["--home", str(home), "quantize", "pair@1", "--calib", str(data), "--subset", "12", "--no-augment"]) == 0
    files = sorted(data.rglob("*.png"))
    assert int8_agreement("pair@1", home, files) >= len(files) - 1  # at most one near-tie flips


def test_an_unknown_companion_fails_before_any_extraction(data: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--home", str(tmp_path), "train", str(data), "--name", "x", "--base", "efficientnet_lite2+nope"])
    assert code == 1 and "unknown model 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "embeddings").exists()
