"""`wanwu train` end to end on synthesized shapes with the real EfficientNet-Lite0: the version, predict, eval,
every engine, the embedding cache, the report, rm / export / import, and a run that is interrupted."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import int8_view, open_model
from tests.shapes import SHAPES, write_shapes
from wanwu.classifier import Classifier
from wanwu.cli import main
from wanwu.engines import create_engine
from wanwu.store import Layout
from wanwu.trained.source import feature_source
from wanwu.trained.store import versions
from wanwu.training.head import Head
from wanwu.weights import sha256_file

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("train-home")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = write_shapes(tmp_path_factory.mktemp("shapes") / "train", per_class=8)
    (root / "红色圆形" / "notes.txt").write_text("not an image")
    (root / "红色圆形" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)  # a PNG header, then nothing
    shutil.copy(root / "红色圆形" / "000.png", root / "blue square|蓝色方块" / "mislabelled.png")
    return root


@pytest.fixture(scope="module")
def test_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_shapes(tmp_path_factory.mktemp("shapes") / "test", per_class=4, seed=7)


@pytest.fixture(scope="module")
def trained(home: Path, data: Path) -> dict:
    args = ["--home", str(home), "train", str(data), "--name", "shapes", "--threads", "2", "--base", "efficientnet_lite0"]
    assert main(args) == 0  # Lite0 named: the tests below read its features (--base auto: test_train_search.py)
    (version,) = versions(home)
    return version.manifest


def _run_json(capsys, args: list[str]) -> list[dict]:  # type: ignore[no-untyped-def]
    capsys.readouterr()
    assert main(args) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_the_version_holds_everything_it_needs(trained: dict, home: Path, data: Path) -> None:
    path = Layout(home).trained / "shapes@1"
    assert trained["model"] == "shapes@1" and trained["base"]["model"] == "efficientnet_lite0"
    for name, digest in trained["files"].items():
        assert sha256_file(path / name) == digest
    assert set(trained["files"]) == {"model.onnx", "head.npz", "images.tsv", "report.html", "in_set.npz"}
    out_of_set = trained["out_of_set"]  # the base's evidence that an image is like the training images at all
    assert -1 < out_of_set["threshold"] < 1  # every labelled image scored leave-one-out (the stored head saw them all)
    assert out_of_set["held_out_images"] == trained["data"]["train_images"] + trained["data"]["val_images"]
    assert [c["folder"] for c in trained["classes"]] == sorted(SHAPES)
    assert [(c["label"], c["label_zh"]) for c in trained["classes"]] == [
        ("blue square", "蓝色方块"), ("green triangle", "绿色三角"), ("红色圆形", "红色圆形")]
    assert trained["command"][:3] == ["wanwu", "--home", str(home)] and trained["command"][3:5] == ["train", str(data)]
    assert trained["preprocessing"]["crop"] == "full" and trained["preprocessing"]["resize_size"] == 224
    assert trained["data"]["views"] == ["center", "flip", "zoom", "zoom-flip"]  # a small set: augmented
    skipped = {Path(s["path"]).name for s in trained["data"]["skipped"]}
    assert skipped == {"notes.txt", "broken.png"}
    (conflict,) = trained["data"]["conflicts"]
    assert sorted(Path(p).name for p in conflict["paths"]) == ["000.png", "mislabelled.png"]
    m = trained["metrics"]
    assert m["images"] == trained["data"]["val_images"] > 0 and m["top1"] >= 0.8 and m["top5"] is None
    assert len(m["confusion"]) == 3 and len(m["per_class"]) == 3
    assert 0 < trained["unknown"]["threshold"] < 1
    assert trained["head"]["fitted_on"] == "train+val" and trained["head"]["transform"] == "signed_sqrt"
    features = trained["head"]["features"]  # a small set: pyramid features (global average + 3x3 cells of two maps)
    assert features["kind"] == "pyramid" and features["grid"] == 3 and trained["extraction"]["features"] == "pyramid"
    assert [m["shape"] for m in features["maps"]] == [[1280, 7, 7], [192, 7, 7]]
    assert trained["head"]["embedding_size"] == (1280 + 192) * 10
    rows = (path / "images.tsv").read_text().splitlines()
    assert rows[0] == "split\tclass\tsha256\tpath" and len(rows) == 1 + trained["data"]["train_images"] + m["images"]


def test_predict_speaks_the_same_json_contract(trained: dict, home: Path, test_set: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    files = sorted(test_set.rglob("*.png"))
    records = _run_json(capsys, ["--home", str(home), "predict", "--json", "--model", "shapes@1", "--top-k", "2", *map(str, files)])
    right = 0
    for path, record in zip(files, records, strict=True):
        assert set(record) == {"path", "model", "weights_sha256", "summary", "predictions", "unknown", "out_of_set",
                               "categories"}
        assert record["categories"] == []  # a trained model keeps its own classes
        assert record["model"] == "shapes@1" and record["weights_sha256"] == trained["files"]["head.npz"]
        top = record["predictions"][0]
        assert set(top) == {"index", "label", "label_zh", "score"} and isinstance(record["unknown"], bool)
        assert record["unknown"] == (top["score"] < trained["unknown"]["threshold"] or record["out_of_set"])
        right += trained["classes"][top["index"]]["folder"] == path.parent.name
    assert right >= len(files) - 1


def test_every_engine_runs_the_trained_model_like_features_plus_head(trained: dict, home: Path, test_set: Path) -> None:
    files = sorted(test_set.rglob("*.png"))[:6]
    logits = {}
    for engine in ("torch", "onnxruntime", "openvino"):
        classifier = Classifier.load("shapes@1", engine=engine, home=home, threads=2)
        pixels = np.stack([classifier.pixels(f) for f in files])
        logits[engine] = classifier.logits(pixels)
    source = open_model("shapes@1", home)
    weight, bias = source.head()  # type: ignore[attr-defined]
    features_source = feature_source(open_model("efficientnet_lite0", home), source.features)  # type: ignore[attr-defined]
    features = create_engine("onnxruntime", features_source, threads=2).run(pixels)
    np.testing.assert_allclose(create_engine("torch", features_source, threads=2).run(pixels), features, atol=1e-3)
    expected = Head(weight, bias, 0, 0.0).logits(features)
    for engine, out in logits.items():
        np.testing.assert_allclose(out, expected, atol=1e-3, err_msg=engine)


def test_a_photo_like_no_training_image_is_out_of_set_on_every_engine(trained: dict, home: Path, test_set: Path,
                                                                     photos_dir: Path) -> None:
    """A dog on a shapes model scores some shape highly (the head's softmax sums to 1 over its own classes); the
    graph's extra column, the similarity to the nearest training image, says it is like none of them."""
    shapes, photos = sorted(test_set.rglob("*.png")), sorted(photos_dir.glob("*.jpg"))
    evidence = open_model("shapes@1", home).in_set_evidence()  # type: ignore[attr-defined]
    features_source = feature_source(open_model("efficientnet_lite0", home), trained["head"]["features"]["kind"])
    width = evidence.mean.shape[0]
    similarity = {}
    for engine in ("torch", "onnxruntime", "openvino"):
        classifier = Classifier.load("shapes@1", engine=engine, home=home, threads=2)
        pixels = np.stack([classifier.pixels(f) for f in shapes + photos])
        outputs = classifier.outputs(pixels)
        assert outputs.shape == (len(pixels), len(trained["classes"]) + 1)
        similarity[engine] = outputs[:, -1]
        results = classifier.results(outputs)
        assert [r.out_of_set for r in results[len(shapes):]] == [True] * len(photos), engine
        assert all(r.unknown for r in results[len(shapes):]), engine
        assert sum(r.out_of_set for r in results[: len(shapes)]) <= len(shapes) // 4, engine  # keeps ~95 % of in-set
        features = create_engine("onnxruntime", features_source, threads=2).run(pixels)[:, :width]
        np.testing.assert_allclose(similarity[engine], evidence.similarity(features), atol=2e-3, err_msg=engine)


def test_the_service_says_out_of_set_in_v1_v2_and_on_the_page(trained: dict, home: Path, test_set: Path,
                                                               photos_dir: Path) -> None:
    import base64
    import re

    from fastapi.testclient import TestClient

    from tests.service.conftest import wait_ready
    from wanwu.service.app import create_app
    from wanwu.service.settings import ServiceSettings

    dog, shape = (photos_dir / "dog.jpg").read_bytes(), next(test_set.rglob("*.png")).read_bytes()
    settings = ServiceSettings(home=home, decode_threads=1, inference_threads=1)
    classifier = Classifier.load("shapes@1", engine="onnxruntime", home=home, threads=2)
    with TestClient(create_app(settings, classifier=classifier)) as client:
        wait_ready(client.get)
        v1 = client.post("/v1/classify", files=[("image", ("dog.jpg", dog)), ("image", ("shape.png", shape))]).json()
        (outside, inside) = v1["results"]
        assert (outside["out_of_set"], outside["unknown"], inside["out_of_set"]) == (True, True, False)
        again = client.post("/v1/classify?view=classes", files={"image": ("dog.jpg", dog)}).json()["results"][0]
        assert again["cached"] and again["out_of_set"] is True  # the cache keeps it
        request = {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "data": [base64.b64encode(dog).decode()]}]}
        v2 = client.post("/v2/models/shapes/infer", json=request).json()
        (extra,) = next(o for o in v2["outputs"] if o["name"] == "categories")["data"]
        assert json.loads(extra)["out_of_set"] is True and json.loads(extra)["unknown"] is True
        hints = lambda page: re.findall(r"<p class=not-sure-hint>(.*?)</p>", page)  # noqa: E731
        page = client.post("/?lang=en", files={"image": ("dog.jpg", dog)}).text
        assert "is-unknown" in page and "like none of the classes this model was taught" in "".join(hints(page))
        in_set = hints(client.post("/?lang=en", files={"image": ("shape.png", shape)}).text)
        assert not any("like none" in hint for hint in in_set)  # in set: at most the plain "not sure" hint


def test_tag_records_say_out_of_set(trained: dict, home: Path, test_set: Path, photos_dir: Path, tmp_path: Path) -> None:
    import csv

    library = tmp_path / "library"
    library.mkdir()
    shutil.copy(photos_dir / "dog.jpg", library / "dog.jpg")
    shutil.copy(next(test_set.rglob("*.png")), library / "shape.png")
    for out in ("tags.jsonl", "tags.csv"):
        assert main(["--home", str(home), "tag", str(library), "--model", "shapes@1", "--out", str(tmp_path / out)]) == 0
    records = {r["path"]: r for r in map(json.loads, (tmp_path / "tags.jsonl").read_text().splitlines())}
    assert (records["dog.jpg"]["out_of_set"], records["dog.jpg"]["unknown"]) == (True, True)
    assert records["shape.png"]["out_of_set"] is False
    with open(tmp_path / "tags.csv", encoding="utf-8", newline="") as f:
        rows = {r["path"]: r for r in csv.DictReader(f)}
    assert (rows["dog.jpg"]["out_of_set"], rows["shape.png"]["out_of_set"]) == ("true", "false")


def test_eval_on_an_imagefolder(trained: dict, home: Path, test_set: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    (result,) = _run_json(capsys, ["--home", str(home), "eval", "--json", "--model", "shapes@1", str(test_set)])
    assert result["model"] == "shapes@1" and result["images"] == 12 and result["top1"] >= 0.9


def test_retraining_after_adding_images_extracts_only_the_new_ones(trained: dict, home: Path, data: Path, test_set: Path) -> None:
    args = ["--home", str(home), "train", str(data), "--name", "shapes", "--augment", "all", "--val", str(test_set)]
    assert main(args) == 0
    write_shapes(data, per_class=1, seed=11, start=100)  # three new images
    assert main(args) == 0
    second, third = (v.manifest for v in versions(home, "shapes")[-2:])
    assert third["model"] == "shapes@3" and third["data"]["train_images"] == second["data"]["train_images"] + 3
    ex = third["extraction"]
    assert ex["extracted"] == 3 and ex["cached"] == ex["images"] - 3  # the corrupt file is not retried either


def test_the_report_is_one_offline_file(trained: dict, home: Path) -> None:
    html = (Layout(home).trained / "shapes@1" / "report.html").read_text()
    assert "<svg" in html and "confusion" in html and "蓝色方块" in html
    assert "<script" not in html and "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in html
    assert "notes.txt" in html and "mislabelled.png" in html  # skipped and conflicting files listed


def test_export_import_and_rm(trained: dict, home: Path, tmp_path: Path, test_set: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    archive = tmp_path / "shapes.wanwu"
    assert main(["--home", str(home), "models", "export", "shapes@1", str(archive)]) == 0
    other = tmp_path / "other-home"
    assert main(["--home", str(other), "models", "import", str(archive)]) == 0
    image = str(next(test_set.rglob("*.png")))
    (mine,) = _run_json(capsys, ["--home", str(home), "predict", "--json", "--model", "shapes@1", "--engine", "onnxruntime", image])
    (theirs,) = _run_json(capsys, ["--home", str(other), "predict", "--json", "--model", "shapes@1", "--engine", "onnxruntime", image])
    assert theirs["predictions"] == mine["predictions"]
    listed = _run_json(capsys, ["--home", str(other), "models", "--json"])
    assert [r["model"] for r in listed if r.get("kind") == "trained"] == ["shapes@1"]
    assert main(["--home", str(other), "models", "rm", "shapes@1"]) == 0
    assert versions(other) == []


def test_an_interrupted_write_leaves_the_store_as_it_was(home: Path, data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from wanwu.trained import graph

    before = sorted(p.name for p in Layout(home).trained.iterdir())

    def interrupted(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt

    monkeypatch.setattr(graph, "save_model", interrupted)
    assert main(["--home", str(home), "train", str(data), "--name", "shapes"]) == 130
    assert sorted(p.name for p in Layout(home).trained.iterdir()) == before


@pytest.mark.parametrize(
    ("name", "message"), [("../evil", "invalid model name"), ("resnet18", "built-in ImageNet model")]
)
def test_bad_names_are_refused_before_any_work(home: Path, data: Path, name: str, message: str, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["--home", str(home), "train", str(data), "--name", name]) == 1
    assert message in capsys.readouterr().err
    assert not (home / "evil").exists()


def test_one_class_is_a_clear_error(home: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    write_shapes(tmp_path, per_class=3, classes={"only": ((1, 2, 3), "circle")})
    assert main(["--home", str(home), "train", str(tmp_path), "--name", "single"]) == 1
    err = capsys.readouterr().err
    assert "one class" in err and str(tmp_path / "only") in err.replace("\n", "")


def test_quantize_keeps_a_trained_graphs_batch_and_its_head_in_fp32(trained: dict, home: Path) -> None:
    """`wanwu quantize` folds constants at batch 1: the head's input must stay batch-dynamic (it collapsed once)."""
    _, shape, kept = int8_view("shapes@1", home)
    assert shape == (4, 3 + 1)  # 3 classes, then the out-of-set evidence (graph.with_in_set)
    assert "/_fc/Gemm/WithoutBiases" in kept and "/_conv_stem/Conv/WithoutBiases" in kept  # the head, and the base's
    assert "in_set/cosines" in kept  # the similarity that decides out-of-set stays exact
