"""Engine parity on real images: fp32 engines agree with torch within 1e-3 and in top-5 order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from wanwu.classifier import Classifier
from wanwu.engines import create_engine
from wanwu.errors import EngineUnavailableError
from wanwu.evaluate import evaluate
from wanwu.models import get_model_spec
from wanwu.preprocess import preprocess, preprocess_pixels
from wanwu.ranking import top_indices
from wanwu.sources import open_source

FAST_ENGINES = ("onnxruntime", "openvino")
TOLERANCE = 1e-3  # max |Δlogit| allowed between an fp32 engine and torch eager


def _batch(samples_dir: Path, model: str, count: int = 16) -> np.ndarray:
    pre = get_model_spec(model).preprocessing
    paths = sorted(samples_dir.glob("*.JPEG"))[:: 100 // count][:count]
    return np.stack([preprocess(p.read_bytes(), pre) for p in paths])


@pytest.fixture(scope="module")
def lite_source(shared_home: Path):  # type: ignore[no-untyped-def]
    return open_source(get_model_spec("efficientnet_lite0"), shared_home)


@pytest.fixture(scope="module")
def resnet_source(shared_home: Path, resnet18_checkpoint: Path):  # type: ignore[no-untyped-def]
    return open_source(get_model_spec("resnet18"), shared_home, resnet18_checkpoint)


@pytest.mark.parametrize("engine", FAST_ENGINES)
@pytest.mark.parametrize("model", ["efficientnet_lite0", "efficientnet_lite2", "resnet18"])
def test_fp32_engines_match_torch(engine: str, model: str, samples_dir: Path, shared_home: Path, resnet_source) -> None:  # type: ignore[no-untyped-def]
    source = resnet_source if model == "resnet18" else open_source(get_model_spec(model), shared_home)
    batch = _batch(samples_dir, model)
    reference = create_engine("torch", source, threads=2).run(batch)
    logits = create_engine(engine, source, threads=2).run(batch)
    assert logits.shape == reference.shape == (len(batch), 1000)
    assert np.abs(logits - reference).max() <= TOLERANCE
    np.testing.assert_array_equal(top_indices(logits), top_indices(reference))


@pytest.mark.parametrize("engine", ["torch", *FAST_ENGINES])
@pytest.mark.parametrize("model", ["efficientnet_lite0", "resnet18"])
def test_pixel_input_matches_the_normalised_tensor(engine: str, model: str, samples_dir: Path, lite_source, resnet_source) -> None:  # type: ignore[no-untyped-def]
    """uint8 crops (OpenVINO normalises them in its graph, the others in numpy) give the float tensor's logits."""
    source = lite_source if model == "efficientnet_lite0" else resnet_source
    pre = source.spec.preprocessing
    paths = sorted(samples_dir.glob("*.JPEG"))[::12]
    pixels = np.stack([preprocess_pixels(p.read_bytes(), pre) for p in paths])
    assert pixels.dtype == np.uint8 and pixels.shape == (len(paths), pre.crop_size, pre.crop_size, 3)
    runner = create_engine(engine, source, threads=2)
    from_pixels = runner.run(pixels)
    from_tensor = runner.run(np.stack([preprocess(p.read_bytes(), pre) for p in paths]))
    assert np.abs(from_pixels - from_tensor).max() <= 1e-4 * max(1.0, float(np.abs(from_tensor).max()))
    np.testing.assert_array_equal(from_pixels.argmax(axis=1), from_tensor.argmax(axis=1))


@pytest.mark.parametrize("engine", FAST_ENGINES)
def test_batch_results_equal_single_results(engine: str, samples_dir: Path, lite_source) -> None:  # type: ignore[no-untyped-def]
    batch = _batch(samples_dir, "efficientnet_lite0", 4)
    runner = create_engine(engine, lite_source, threads=2)
    singles = np.concatenate([runner.run(batch[i : i + 1]) for i in range(len(batch))])
    assert np.abs(runner.run(batch) - singles).max() <= TOLERANCE


def test_converted_bundle_serves_without_the_checkpoint(shared_home: Path, lite_source, samples_dir: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """What the container does: a store holding only the converted bundle, no .pth and no torch needed."""
    import shutil

    lite_source.onnx_path()
    home = tmp_path / "home"
    shutil.copytree(lite_source.bundle, home / "compiled" / lite_source.bundle.name)
    spec = get_model_spec("efficientnet_lite0")
    pkg = replace_package(spec)
    source = open_source(pkg, home)
    assert source.weights is None and source.weights_sha256 == lite_source.weights_sha256
    batch = _batch(samples_dir, "efficientnet_lite0", 2)
    np.testing.assert_allclose(
        create_engine("onnxruntime", source).run(batch), create_engine("onnxruntime", lite_source).run(batch), atol=1e-5
    )


def replace_package(spec):  # type: ignore[no-untyped-def]
    """The same model as if its weights package were not installed."""
    from dataclasses import replace

    return replace(spec, weights=replace(spec.weights, package=None, package_file=None))


def test_unknown_engine_and_precision_are_clear(lite_source) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(EngineUnavailableError, match="unknown engine 'tensorrt'; valid engines: torch, onnxruntime, openvino"):
        create_engine("tensorrt", lite_source)
    with pytest.raises(EngineUnavailableError, match="does not offer precision bf16"):
        create_engine("torch", lite_source, precision="bf16")


@pytest.mark.slow
def test_efficientnet_lite0_accuracy_and_agreement_on_every_engine(samples_dir: Path, shared_home: Path) -> None:
    results = {
        engine: evaluate(Classifier.load("efficientnet_lite0", engine, home=shared_home, threads=2), samples_dir)
        for engine in ("torch", *FAST_ENGINES)
    }
    for engine, result in results.items():
        assert result.images == 100
        assert result.top1 >= 0.85, f"{engine}: top-1 {result.top1:.2%}"
        assert result.predictions == results["torch"].predictions, f"{engine} disagrees with torch"


@pytest.mark.parametrize("engine", FAST_ENGINES)
def test_a_bundle_without_writable_caches_still_serves(engine: str, lite_source, samples_dir: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A container's baked bundle is read-only and may lack the engines' caches: load without them.

    Plain files stand where the engines' cache folders would go, so they cannot be created even
    by root (for whom permissions would not make a folder read-only).
    """
    import shutil

    import onnxruntime
    import openvino

    lite_source.onnx_path()
    home = tmp_path / "home"
    bundle = home / "compiled" / lite_source.bundle.name
    bundle.mkdir(parents=True)
    for name in ("model.onnx", "manifest.json"):
        shutil.copy(lite_source.bundle / name, bundle / name)
    (bundle / f"onnxruntime-{onnxruntime.__version__}").write_text("not a folder")
    (bundle / f"openvino-{openvino.get_version().split('-')[0]}").write_text("not a folder")
    source = open_source(replace_package(get_model_spec("efficientnet_lite0")), home)
    batch = _batch(samples_dir, "efficientnet_lite0", 2)
    np.testing.assert_allclose(create_engine(engine, source).run(batch), create_engine(engine, lite_source).run(batch), atol=1e-4)


def test_service_style_load_exports_in_a_child_process(resnet18_checkpoint: Path, tmp_path: Path) -> None:
    """A server on a fresh store must not import torch itself (it would keep ~300 MB for its lifetime)."""
    import subprocess
    import sys

    code = (
        "import sys; from pathlib import Path; from wanwu.service.settings import ServiceSettings;"
        "from wanwu.service.state import load_classifier;"
        f"c = load_classifier(ServiceSettings(model='resnet18', engine='onnxruntime', weights=Path({str(resnet18_checkpoint)!r}), home=Path({str(tmp_path)!r})));"
        "print('torch' in sys.modules, c.weights_sha256[:8])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    loaded_torch, digest = out.stdout.split()
    assert loaded_torch == "False" and len(digest) == 8
    assert list((tmp_path / "compiled").glob("resnet18-*/model.onnx"))


def test_a_bundle_from_other_weights_never_stands_in_for_the_official_ones(resnet18_checkpoint: Path, tmp_path: Path) -> None:
    """Exporting your own (or a benchmark's random) checkpoint must not make it the model's default."""
    from wanwu.errors import WeightsMissingError
    from wanwu.loader import default_model

    spec = get_model_spec("resnet18")
    open_source(spec, tmp_path, resnet18_checkpoint).onnx_path()  # a converted bundle of non-official weights
    assert default_model(tmp_path) == "efficientnet_lite0"
    with pytest.raises(WeightsMissingError, match="wanwu fetch resnet18"):
        open_source(spec, tmp_path)
    assert open_source(spec, tmp_path, resnet18_checkpoint).bundle.is_dir()  # passed explicitly, it is used


def test_openvino_stream_siblings_share_one_model_and_agree_in_parallel(samples_dir: Path, lite_source) -> None:  # type: ignore[no-untyped-def]
    """--inference-workers 2 on OpenVINO: two infer requests on one compiled model, run at the same time."""
    from concurrent.futures import ThreadPoolExecutor

    batch = _batch(samples_dir, "efficientnet_lite0", 8)
    reference = create_engine("openvino", lite_source, threads=2).run(batch)
    engine = create_engine("openvino", lite_source, threads=1, streams=2)
    twin = engine.replica()
    assert twin is not engine and twin.compiled is engine.compiled
    with ThreadPoolExecutor(2) as pool:
        halves = list(pool.map(lambda pair: pair[0].run(pair[1]), [(engine, batch[:4]), (twin, batch[4:])]))
    assert np.abs(np.concatenate(halves) - reference).max() <= TOLERANCE


def test_openvino_pins_its_threads_only_when_they_span_every_usable_core(lite_source) -> None:  # type: ignore[no-untyped-def]
    """A compiled model pins from the first core on: one on fewer threads than the process may use stays unpinned."""
    from wanwu.cpu import usable_cores

    cores = usable_cores()
    spanning = create_engine("openvino", lite_source, threads=1, streams=cores)
    assert spanning.compiled.get_property("ENABLE_CPU_PINNING") is True
    if cores > 1:
        partial = create_engine("openvino", lite_source, threads=1)
        assert partial.compiled.get_property("ENABLE_CPU_PINNING") is False


@pytest.mark.slow
def test_efficientnet_lite2_is_the_accurate_choice(samples_dir: Path, shared_home: Path) -> None:
    """Its own preprocessing (TensorFlow's crop: resize 292, crop 260, bicubic, [-1, 1]); measured 92/100 top-1, 100 top-5."""
    result = evaluate(Classifier.load("efficientnet_lite2", "openvino", home=shared_home, threads=2), samples_dir)
    assert result.images == 100 and result.top1 >= 0.9 and result.top5 >= 0.98
