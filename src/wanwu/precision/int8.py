"""INT8 post-training static quantization (NNCF -> OpenVINO IR), stored in the model's bundle.

Layout: ``<bundle>/int8-<calib_hash[:12]>/`` holds ``model.xml``/``model.bin`` (the quantized
OpenVINO model), ``calibration.json`` and ``report.json`` (``wanwu.precision.store``). The same
images and recipe reuse the artifact; different ones make a new folder; ``precision="int8"``
loads the most recent one.

Why not the seed's recipe: ``torch.quantization.quantize_dynamic`` on ``nn.Linear`` quantizes only
the final classifier of a CNN (under 1% of its FLOPs); every convolution still runs in fp32, so it
is not an INT8 model and is no faster. Static quantization needs calibration images to fix the
activation ranges, which is what ``wanwu quantize MODEL --calib DIR`` does. NNCF is imported only
to quantize; loading an artifact needs nothing beyond OpenVINO.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from wanwu.engines import Engine, create_engine
from wanwu.errors import EngineUnavailableError, WanwuError
from wanwu.precision.calibration import Log, calibration_set, quiet
from wanwu.precision.compare import compare, run_batched
from wanwu.precision.store import Artifact, find_artifacts, reuse, write_atomically, write_json
from wanwu.precision.validated import validated_report
from wanwu.precision.views import DEFAULT_SUBSET, VALIDATION_VIEWS, CalibrationViews, labelled_eval_set, views_per_image
from wanwu.sources import ModelSource

INT8_PREFIX = "int8-"
RECIPE_VERSION = 2
ENGINE_FILES = {"openvino": ("model.xml", "model.bin")}

# Layers kept in fp32, per model. For EfficientNet-Lite0 these were found by NNCF's accuracy-aware
# search (``--accuracy-control``, max 1 point of top-1 agreement lost) on augmented views of the
# calibration images: the stem convolution and the first depthwise convolutions are the most
# sensitive to 8-bit activations. Everything else (49 of 52 convolutions and the classifier) is INT8.
KEEP_FP32: dict[str, tuple[str, ...]] = {
    "efficientnet_lite0": (
        "/_conv_stem/Conv/WithoutBiases",
        "/_blocks.0/_depthwise_conv/Conv/WithoutBiases",
        "/_blocks.3/_depthwise_conv/Conv/WithoutBiases",
    ),
}


def keep_fp32(source: ModelSource) -> tuple[str, ...]:
    """The model's fp32 layers; a trained model keeps its base's, and its head (a few classes: tiny, and
    OpenVINO's INT8 fully-connected kernel refused a 3-class head) — ``TrainedSource`` names both."""
    base = getattr(source, "base_model", source.spec.name)
    return KEEP_FP32.get(base, ()) + tuple(getattr(source, "fp32_nodes", ()))


class QuantizationError(WanwuError):
    code = "quantization_failed"


def int8_artifacts(bundle: Path, engine: str | None = None) -> list[Artifact]:
    """Complete INT8 artifacts in a bundle, oldest first (optionally only those ``engine`` can load)."""
    engines = [engine] if engine else list(ENGINE_FILES)
    return [
        artifact
        for artifact in find_artifacts(bundle, INT8_PREFIX)
        if any(all(artifact.file(f).is_file() for f in ENGINE_FILES.get(e, ("?",))) for e in engines)
    ]


def int8_model_file(source: ModelSource, engine: str) -> Path:
    """The newest INT8 model of these weights that ``engine`` loads, or an error that says how to make one."""
    artifacts = int8_artifacts(source.bundle, engine)
    if not artifacts:
        raise EngineUnavailableError(
            f"no INT8 model of {source.spec.name} (weights {source.weights_sha256[:12]}) for {engine} yet; "
            f"make one from a few hundred of your images: wanwu quantize {source.spec.name} --calib DIR"
        )
    return artifacts[-1].file(ENGINE_FILES[engine][0])


def _static_spatial_model(core, onnx_path: Path, crop: int):  # type: ignore[no-untyped-def]
    """The ONNX model with its padding arithmetic folded to constants (batch stays dynamic).

    EfficientNet's "same" padding is computed from the input shape at run time; with a dynamic
    batch OpenVINO cannot fold it, and the run-time Pad between a quantizer and each depthwise
    convolution keeps those convolutions in fp32. The pads depend only on height and width.
    """
    from openvino.passes import ConstantFolding, Manager

    model = core.read_model(str(onnx_path))
    model.reshape([1, 3, crop, crop])
    manager = Manager()
    manager.register_pass(ConstantFolding())
    manager.run_passes(model)
    model.reshape([-1, 3, crop, crop])
    return model


def _nncf():  # type: ignore[no-untyped-def]
    try:
        import nncf
    except ImportError as err:
        raise EngineUnavailableError(f"quantizing needs NNCF: pip install 'wanwu[quantize]' ({err})") from err
    return nncf


def _quantize_openvino(source: ModelSource, views: CalibrationViews, keep_fp32: tuple[str, ...], reference: Engine | None):  # type: ignore[no-untyped-def]
    """NNCF's plain quantization, or with ``reference`` its accuracy-aware search against fp32 top-1."""
    import openvino as ov

    nncf = _nncf()
    model = _static_spatial_model(ov.Core(), source.onnx_path(), source.spec.preprocessing.crop_size)
    dataset = nncf.Dataset(views, lambda x: x[None])
    common = {
        "subset_size": len(views),
        "preset": nncf.QuantizationPreset.PERFORMANCE,
        "ignored_scope": nncf.IgnoredScope(names=list(keep_fp32), validate=False),
    }
    if reference is None:
        nncf.set_log_level(logging.WARNING)  # its INFO lines list the layers kept in fp32 on purpose (KEEP_FP32)
        return nncf.quantize(model, dataset, **common)
    scored = views.sample(VALIDATION_VIEWS)
    targets = [int(t) for t in reference.run(np.stack(scored)).argmax(axis=1)]

    def agreement(compiled, items):  # type: ignore[no-untyped-def]
        request = compiled.create_infer_request()
        hits = []
        for x, target in items:
            request.infer({0: x[None]})
            hits.append(float(request.get_output_tensor(0).data.argmax() == target))
        return float(np.mean(hits)), hits

    validation = nncf.Dataset(list(zip(scored, targets, strict=True)), lambda item: item[0][None])
    return nncf.quantize_with_accuracy_control(
        model, dataset, validation, validation_fn=agreement, max_drop=0.01, drop_type=nncf.DropType.ABSOLUTE, **common
    )


def accuracy_report(
    source: ModelSource, model_file: Path, eval_dir: Path | None, calib_digests: set[str], views: CalibrationViews, threads: int
) -> dict:
    """fp32 vs int8 on ``eval_dir`` (labelled ``<wnid>_*.JPEG``) or, without one, on a sample of the calibration views
    (replaced by the project's labelled measurement where these are the very files it measured)."""
    fp32 = create_engine("openvino", source, threads=threads)
    int8 = create_engine("openvino", source, threads=threads, precision="int8", model_file=model_file)
    if eval_dir is not None:
        images, targets, report = labelled_eval_set(source, eval_dir, calib_digests)
    else:
        images, targets = np.stack(views.sample(VALIDATION_VIEWS)), None  # made only here: each pass decodes every view
        report = {"folder": None, "note": "no --eval folder: agreement measured on calibration views themselves"}
    report.update(compare(run_batched(fp32.run, images), run_batched(int8.run, images), targets))
    if targets is not None:
        report["top1_fp32"] = report.pop("top1_reference")
        report["top1_int8"] = report.pop("top1")
        return report
    known = validated_report(source.spec.name, [model_file.parent / f for f in ENGINE_FILES["openvino"]])
    # the very model the project measured on labelled photos: that figure, not the views' (wanwu.precision.validated)
    return {**known, "views_top1_agreement": report["top1_agreement"]} if known else report


def _run_nncf(source: ModelSource, views: CalibrationViews, recipe: dict, threads: int):  # type: ignore[no-untyped-def]
    """The quantized model and the seconds it took."""
    reference = create_engine("openvino", source, threads=threads) if recipe["accuracy_control"] else None
    started = time.perf_counter()
    try:
        model = _quantize_openvino(source, views, tuple(recipe["keep_fp32"]), reference)
    except (RuntimeError, ValueError) as err:
        raise QuantizationError(f"NNCF could not quantize {source.spec.name}: {err}") from err
    return model, round(time.perf_counter() - started, 1)


def _recipe(source: ModelSource, engine: str, images: int, augment: bool, accuracy_control: bool) -> dict:
    return {
        "version": RECIPE_VERSION,
        "engine": engine,
        "augment": augment,
        "views_per_image": views_per_image(images, augment),
        "accuracy_control": accuracy_control,
        "keep_fp32": list(keep_fp32(source)),
    }


def quantize(
    source: ModelSource,
    calib_dirs: Sequence[Path],
    engine: str = "openvino",
    subset: int | None = DEFAULT_SUBSET,
    augment: bool = True,
    accuracy_control: bool = False,
    eval_dir: Path | None = None,
    threads: int = 1,
    log: Log = quiet,
) -> Artifact:
    if engine not in ENGINE_FILES:
        raise EngineUnavailableError(f"INT8 quantization is implemented for {', '.join(ENGINE_FILES)}, not {engine}")
    calib = calibration_set(calib_dirs, subset)
    recipe = _recipe(source, engine, len(calib.files), augment, accuracy_control)
    calib_hash, folder = calib.artifact_folder(source.bundle, INT8_PREFIX, recipe)
    if (existing := reuse(int8_artifacts(source.bundle, engine), folder, log)) is not None:
        return existing

    views = calib.views(source, recipe["views_per_image"])
    log(f"calibrating on {len(calib.files)} images ({len(views)} views: each image, its mirror image and random crops)"
        if augment else f"calibrating on {len(calib.files)} images")
    import openvino as ov

    model, seconds = _run_nncf(source, views, recipe, threads)
    calibration = {
        **calib.describe(source, calib_hash, calib_dirs),
        "engine": engine,
        "views": len(views),
        "recipe": {
            **recipe,
            "tool": f"nncf {_nncf().__version__}, openvino {ov.get_version().split('-')[0]}",
            "preset": "performance (symmetric int8 weights per channel, int8 activations per tensor)",
        },
        "quantize_seconds": seconds,
        "created": time.time(),
    }

    def write(tmp: Path) -> None:
        model_file = tmp / ENGINE_FILES["openvino"][0]
        ov.save_model(model, model_file, compress_to_fp16=False)
        log("measuring agreement with fp32")
        report = accuracy_report(source, model_file, eval_dir, set(calib.digests.values()), views, threads)
        header = {"model": source.spec.name, "weights_sha256": source.weights_sha256, "engine": engine, "precision": "int8",
                  "calib_hash": calib_hash, "calibration_images": len(calib.files)}
        write_json(tmp, calibration, {**header, **report})

    write_atomically(folder, write)
    return next(a for a in int8_artifacts(source.bundle, engine) if a.path == folder)
