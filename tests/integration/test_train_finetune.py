"""`wanwu train --mode finetune` end to end on synthesized shapes with the real EfficientNet-Lite0: the version,
the same logits from PyTorch, ONNX Runtime and OpenVINO, predict, quantize's view of the graph, and an
interrupted run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import int8_agreement, int8_view, open_model
from tests.shapes import write_shapes
from wanwu.classifier import Classifier
from wanwu.cli import main
from wanwu.engines import create_engine
from wanwu.store import Layout
from wanwu.trained.finetuned import load_tensors, trunk_source
from wanwu.trained.store import versions
from wanwu.training.tail import predict
from wanwu.weights import sha256_file

pytestmark = pytest.mark.slow

PARITY_ATOL = 1e-4  # logits of the same fp32 graph on three engines (measured: ~4e-6)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("finetune-home")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_shapes(tmp_path_factory.mktemp("shapes") / "train", per_class=8)


@pytest.fixture(scope="module")
def test_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_shapes(tmp_path_factory.mktemp("shapes") / "test", per_class=3, seed=7)


@pytest.fixture(scope="module")
def tuned(home: Path, data: Path) -> dict:
    args = ["--home", str(home), "train", str(data), "--name", "tuned", "--mode", "finetune", "--epochs", "3", "--threads", "2"]
    assert main(args) == 0
    (version,) = versions(home)
    return version.manifest


def test_the_version_is_a_finetuned_model(tuned: dict, home: Path) -> None:
    path = Layout(home).trained / "tuned@1"
    assert tuned["kind"] == "finetune" and tuned["base"]["model"] == "efficientnet_lite0"
    assert set(tuned["files"]) == {"model.onnx", "head.npz", "images.tsv", "report.html"}
    for name, digest in tuned["files"].items():
        assert sha256_file(path / name) == digest
    head = tuned["head"]
    assert head["blocks"] == 1 and head["transform"] is None and head["fitted_on"] == "train+val"
    assert 1 <= head["best_epoch"] <= head["epochs_run"] <= 3 and len(head["history"]) == head["epochs_run"]
    assert all("val_top1" in r for r in head["history"])
    tensors = load_tensors(path / "head.npz")
    assert tensors["fc.weight"].shape == (3, 1280) and any(k.startswith("blocks.0.") for k in tensors)
    assert tuned["metrics"]["top1"] >= 0.8 and 0 < tuned["unknown"]["threshold"] < 1
    assert set(tuned["timings_s"]) >= {"prepare", "activations", "finetune", "refit"}
    assert tuned["extraction"]["activations"] == "float16 192 × 7 × 7"


def test_every_engine_gives_the_same_logits_as_trunk_plus_tail(tuned: dict, home: Path, test_set: Path) -> None:
    """The exported graph, the torch rebuild and the trained tail on the trunk's activations agree."""
    import torch

    from wanwu.models.split import Tail

    files = sorted(test_set.rglob("*.png"))
    logits = {}
    for engine in ("torch", "onnxruntime", "openvino"):
        classifier = Classifier.load("tuned@1", engine=engine, home=home, threads=2)
        pixels = np.stack([classifier.pixels(f) for f in files])
        logits[engine] = classifier.logits(pixels)
    for engine in ("onnxruntime", "openvino"):
        np.testing.assert_allclose(logits[engine], logits["torch"], atol=PARITY_ATOL, err_msg=engine)
    base = open_model("efficientnet_lite0", home)
    activations = create_engine("onnxruntime", trunk_source(base, 1), threads=2).run(pixels)
    tail = Tail(base.torch_model(), 1, 3)
    tail.load_state_dict({k: torch.from_numpy(v) for k, v in load_tensors(Layout(home).trained / "tuned@1" / "head.npz").items()})
    np.testing.assert_allclose(predict(tail, activations.astype(np.float16)), logits["torch"], atol=0.05)  # fp16 cache
    folders = [c["folder"] for c in tuned["classes"]]
    right = sum(folders[int(i)] == f.parent.name for i, f in zip(logits["onnxruntime"].argmax(1), files, strict=True))
    assert right >= len(files) - 1


def test_predict_speaks_the_same_json_contract(tuned: dict, home: Path, test_set: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    image = str(next(test_set.rglob("*.png")))
    capsys.readouterr()
    assert main(["--home", str(home), "predict", "--json", "--model", "tuned@1", image]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["model"] == "tuned@1" and record["weights_sha256"] == tuned["files"]["head.npz"]
    assert set(record["predictions"][0]) == {"index", "label", "label_zh", "score"} and isinstance(record["unknown"], bool)


def test_quantize_sees_a_batch_dynamic_graph_and_keeps_its_head_in_fp32(tuned: dict, home: Path) -> None:
    model, shape, kept = int8_view("tuned@1", home)
    assert shape == (4, 3)
    assert tuned["head"]["node"] == "/_fc/Gemm" and "/_fc/Gemm/WithoutBiases" in kept
    assert not any(k.startswith("head/") for k in kept)  # no signed sqrt in a fine-tuned graph
    names = {op.get_friendly_name() for op in model.get_ops()}
    assert "/_conv_stem/Conv/WithoutBiases" in kept and "/_conv_stem/Conv/WithoutBiases" in names  # the base's names


def test_quantize_calibrates_on_its_own_imagefolder_and_int8_agrees(tuned: dict, home: Path, data: Path, test_set: Path) -> None:
    """`wanwu quantize tuned@1 --calib DATA` finds the images in DATA's class folders; the INT8 model serves the same answers."""
    args = ["--home", str(home), "quantize", "tuned@1", "--calib", str(data), "--subset", "12", "--no-augment", "--json"]
    assert main(args) == 0
    calibration = json.loads(next((Layout(home).trained / "tuned@1").glob("int8-*/calibration.json")).read_text())
    assert calibration["images"] == 12 and len({f.split("/")[0] for f in calibration["files"]}) == 3  # every class folder
    files = sorted(test_set.rglob("*.png"))
    assert int8_agreement("tuned@1", home, files) >= len(files) - 1  # at most one near-tie flips


def test_an_interrupted_export_leaves_the_store_as_it_was(tuned: dict, home: Path, data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from wanwu.training import version

    before = sorted(p.name for p in Layout(home).trained.iterdir())

    def interrupted(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt

    monkeypatch.setattr(version, "export_onnx", interrupted)
    args = ["--home", str(home), "train", str(data), "--name", "tuned", "--mode", "finetune", "--epochs", "1", "--no-refit"]
    assert main(args) == 130
    assert sorted(p.name for p in Layout(home).trained.iterdir()) == before


@pytest.mark.parametrize(("extra", "message"), [
    (["--mode", "finetune", "--blocks", "17"], "--blocks must be between 0 and 16"),
    (["--blocks", "2"], "--blocks is for --mode finetune"),
])
def test_blocks_it_cannot_train_are_a_clear_error(home: Path, data: Path, extra: list[str], message: str, capsys) -> None:  # type: ignore[no-untyped-def]
    before = sorted(p.name for p in Layout(home).trained.iterdir()) if Layout(home).trained.is_dir() else []
    assert main(["--home", str(home), "train", str(data), "--name", "tuned", *extra]) == 1
    assert message in capsys.readouterr().err
    assert (sorted(p.name for p in Layout(home).trained.iterdir()) if Layout(home).trained.is_dir() else []) == before
