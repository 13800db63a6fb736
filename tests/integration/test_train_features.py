"""Head mode's two feature kinds with the real EfficientNet-Lite0 (and a synthesized ResNet-18): the pyramid graph
against the head applied to the cached embeddings it was trained on, the global kind as before, separate caches,
and the pyramid's ONNX and torch forms agreeing."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import open_model
from tests.shapes import write_shapes
from wanwu.classifier import Classifier
from wanwu.cli import main
from wanwu.engines import create_engine
from wanwu.models import get_model_spec
from wanwu.sources import open_source
from wanwu.store import Layout
from wanwu.trained import graph
from wanwu.trained.source import feature_source
from wanwu.trained.store import versions
from wanwu.training.embed import EmbeddingCache, cache_folder
from wanwu.training.head import Head
from wanwu.training.train import training_preprocessing

pytestmark = pytest.mark.slow

CACHED_ATOL = 1e-3  # stored graph (ONNX Runtime) vs the head on embeddings extracted by OpenVINO (measured: ~1e-5)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("features-home")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_shapes(tmp_path_factory.mktemp("shapes") / "train", per_class=6)


@pytest.fixture(scope="module")
def trained(home: Path, data: Path) -> dict:
    """The same images as a pyramid version (the default on a small set) and a global one."""
    for name, features in (("pyr", "auto"), ("glob", "global")):
        args = ["--home", str(home), "train", str(data), "--name", name, "--augment", "none", "--features", features,
                "--base", "efficientnet_lite0"]
        assert main([*args, "--threads", "2"]) == 0
    return {v.name: v.manifest for v in versions(home)}


def _cache(home: Path, features: str) -> EmbeddingCache:
    base = open_model("efficientnet_lite0", home)
    return EmbeddingCache(cache_folder(home, base, training_preprocessing(base.spec.preprocessing, "full"), features))


def test_the_stored_pyramid_graph_is_the_head_on_its_cached_embeddings(trained: dict, home: Path) -> None:
    version = Layout(home).trained / "pyr@1"
    assert trained["pyr"]["head"]["features"]["kind"] == "pyramid" and trained["pyr"]["head"]["embedding_size"] == 14720
    with open(version / "images.tsv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    cache = _cache(home, "pyramid")
    vectors = np.stack([cache.get(r["sha256"], "center") for r in rows])
    assert vectors.shape == (len(rows), 14720)
    source = open_model("pyr@1", home)
    expected = Head(*source.head(), 0, 0.0).logits(vectors)  # type: ignore[attr-defined]
    classifier = Classifier.load("pyr@1", engine="onnxruntime", home=home, threads=2)
    logits = classifier.logits(np.stack([classifier.pixels(Path(r["path"])) for r in rows]))
    np.testing.assert_allclose(logits, expected, atol=CACHED_ATOL)


def test_global_features_are_the_base_embedding_as_before(trained: dict, home: Path) -> None:
    head = trained["glob"]["head"]
    assert head["features"]["kind"] == "global" and head["embedding_size"] == 1280 and "maps" not in head["features"]
    model = graph.load_model(Layout(home).trained / "glob@1" / "model.onnx")
    assert not any(n.name.startswith("features/") for n in model.graph.node)
    pyramid = graph.load_model(Layout(home).trained / "pyr@1" / "model.onnx")
    gemm = next(n for n in pyramid.graph.node if n.op_type == "Gemm")
    assert gemm.name == head["node"] == "/_fc/Gemm"  # the head keeps its name (quantize keeps it in fp32 by it)
    assert "features/pyramid" in {n.name for n in pyramid.graph.node}
    assert not any(n.op_type == "Reshape" for n in pyramid.graph.node[-12:])  # the base's own pooling is pruned


def test_each_feature_kind_has_its_own_cache(trained: dict, home: Path) -> None:
    base = open_model("efficientnet_lite0", home)
    pre = training_preprocessing(base.spec.preprocessing, "full")
    before = ("Preprocessing(resize_size=224, crop_size=224, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), "
              "interpolation='bilinear')")  # its repr before there was a choice of features (or ``pad``)
    old_name = f"efficientnet_lite0-{base.weights_sha256[:16]}-{hashlib.sha256(before.encode()).hexdigest()[:8]}"
    assert cache_folder(home, base, pre, "global").name == old_name  # caches written before there was a choice still count
    assert cache_folder(home, base, pre, "pyramid") != cache_folder(home, base, pre, "global")
    padded = training_preprocessing(base.spec.preprocessing, "pad")
    assert cache_folder(home, base, padded, "global") != cache_folder(home, base, pre, "global")  # other pixels
    glob, pyr = _cache(home, "global"), _cache(home, "pyramid")
    assert set(glob.vectors) == set(pyr.vectors) and len(glob.vectors) > 0
    assert {v.shape for v in glob.vectors.values()} == {(1280,)} and {v.shape for v in pyr.vectors.values()} == {(14720,)}
    ex = trained["glob"]["extraction"]
    assert ex["features"] == "global" and ex["cached"] == 0  # the pyramid run's vectors were not reused


def test_features_is_only_for_head_mode(home: Path, data: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["--home", str(home), "train", str(data), "--name", "x", "--mode", "finetune", "--features", "pyramid"]) == 1
    assert "--features is for --mode head" in capsys.readouterr().err


@pytest.fixture(scope="module")
def resnet_source(shared_home: Path, resnet18_checkpoint: Path):  # type: ignore[no-untyped-def]
    return open_source(get_model_spec("resnet18"), shared_home, resnet18_checkpoint)


def test_resnet_pyramid_features_agree_in_onnx_and_torch(resnet_source) -> None:  # type: ignore[no-untyped-def]
    """ResNet's last block is ``layer4.1``: the maps are its output and its input (512 × 7 × 7 each)."""
    import torch

    from wanwu.models.pyramid import PyramidFeatures

    source = feature_source(resnet_source, "pyramid")
    maps = graph.feature_maps(graph.load_model(source.onnx_path()))
    assert maps is not None and [m["shape"] for m in maps] == [[512, 7, 7], [512, 7, 7]]
    pixels = np.random.default_rng(0).integers(0, 256, (3, 224, 224, 3), dtype=np.uint8)
    onnx_out = create_engine("onnxruntime", source, threads=2).run(pixels)
    assert onnx_out.shape == (3, 512 * 10 * 2)
    np.testing.assert_allclose(create_engine("torch", source, threads=2).run(pixels), onnx_out, atol=1e-4)
    weight = np.random.default_rng(1).normal(0, 0.01, (4, onnx_out.shape[1])).astype(np.float32)
    bias = np.arange(4, dtype=np.float32)
    trained = graph.with_head(graph.load_model(resnet_source.onnx_path()), weight, bias, "signed_sqrt", maps)
    import onnxruntime as ort

    session = ort.InferenceSession(trained.SerializeToString(), providers=["CPUExecutionProvider"])
    from wanwu.engines import model_input

    logits = session.run(None, {session.get_inputs()[0].name: model_input(pixels, resnet_source.spec.preprocessing)})[0]
    np.testing.assert_allclose(logits, Head(weight, bias, 0, 0.0).logits(onnx_out), atol=1e-4)
    module = PyramidFeatures(resnet_source.torch_model())
    with torch.no_grad():
        torch_features = module(torch.from_numpy(model_input(pixels, resnet_source.spec.preprocessing))).numpy()
    np.testing.assert_allclose(torch_features, onnx_out, atol=1e-4)


def _cut_outs(root: Path, per_class: int) -> Path:
    """The shapes as cut-outs: drawn on a transparent canvas, trimmed to the object (as PNG cut-out sites ship them)
    and stretched tall or wide."""
    from PIL import Image, ImageDraw

    from tests.shapes import SHAPES

    rng = np.random.default_rng(3)
    for folder, (colour, shape) in SHAPES.items():
        (root / folder).mkdir(parents=True)
        for i in range(per_class):
            img = Image.new("RGBA", (72, 72), (0, 0, 0, 0))  # room for a margin right and below
            box = [int(v) for v in (*rng.integers(0, 16, 2), *rng.integers(48, 64, 2))]
            fill = (*(int(np.clip(c + rng.integers(-25, 26), 0, 255)) for c in colour), 255)
            draw = ImageDraw.Draw(img)
            if shape == "circle":
                draw.ellipse(box, fill=fill)
            elif shape == "square":
                draw.rectangle(box, fill=fill)
            else:
                draw.polygon([((box[0] + box[2]) // 2, box[1]), (box[0], box[3]), (box[2], box[3])], fill=fill)
            left, top, right, bottom = img.getchannel("A").getbbox()
            # a one-pixel transparent margin, as cut-out sites leave: a square trimmed flush is opaque, not a cut-out
            img = img.crop((max(0, left - 1), max(0, top - 1), right + 1, bottom + 1))
            stretch = float(rng.choice([0.4, 2.5]))
            img.resize((max(8, round(img.width * stretch)), img.height)).save(root / folder / f"{i:03d}.png")
    return root


def test_a_set_of_cut_outs_is_letterboxed_in_training_and_in_serving(home: Path, tmp_path: Path) -> None:
    from wanwu.preprocess import crop_pixels, decode_image

    data = _cut_outs(tmp_path / "cut-outs", per_class=5)
    args = ["--home", str(home), "train", str(data), "--name", "cut", "--augment", "none", "--base", "efficientnet_lite0"]
    assert main([*args, "--threads", "2"]) == 0  # --crop auto: every training image has transparency
    (version,) = versions(home, "cut")
    pre = version.manifest["preprocessing"]
    assert (pre["crop"], pre["pad"], pre["resize_size"]) == ("pad", True, 224)
    assert pre["crop_why"] == f"{version.manifest['data']['train_images']} of {version.manifest['data']['train_images']} " \
                              "training images are cut-outs with transparent pixels"
    classifier = Classifier.load("cut@1", engine="onnxruntime", home=home, threads=2)
    files = sorted(data.rglob("*.png"))
    pixels = np.stack([classifier.pixels(f) for f in files])
    tall = next(i for i, f in enumerate(files) if decode_image(f.read_bytes()).height > decode_image(f.read_bytes()).width)
    assert (pixels[tall][:, :40] == 255).all() and (pixels[tall][:, -40:] == 255).all()  # letterboxed, as trained
    base = open_model("efficientnet_lite0", home)
    letterboxed = training_preprocessing(base.spec.preprocessing, "pad")
    expected = np.stack([crop_pixels(decode_image(f.read_bytes()), letterboxed) for f in files])
    np.testing.assert_array_equal(pixels, expected)
    cache = EmbeddingCache(cache_folder(home, base, letterboxed, "pyramid"))
    vectors = np.stack([cache.get(hashlib.sha256(f.read_bytes()).hexdigest(), "center") for f in files])
    source = open_model("cut@1", home)
    np.testing.assert_allclose(classifier.logits(pixels), Head(*source.head(), 0, 0.0).logits(vectors),  # type: ignore[attr-defined]
                               atol=CACHED_ATOL)
