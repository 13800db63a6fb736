"""INT8 post-training static quantization (NNCF -> OpenVINO IR), cached in the model's bundle.

Layout: ``<bundle>/int8-<calib_hash[:12]>/`` holds ``model.xml``/``model.bin`` (the quantized
OpenVINO model), ``calibration.json`` (what produced it) and ``report.json`` (how far it is from
fp32). The bundle is already keyed by the weights' SHA-256; ``calib_hash`` covers the calibration
images (sorted file names + content hashes) and the recipe, so the same images reuse the artifact
and different ones make a new folder. ``precision="int8"`` in an engine loads the most recent one.

Why not the seed's recipe: ``torch.quantization.quantize_dynamic`` on ``nn.Linear`` quantizes only
the final classifier of a CNN (under 1% of its FLOPs); every convolution still runs in fp32, so it
is not an INT8 model and is no faster. Static quantization needs calibration images to fix the
activation ranges, which is what ``wanwu quantize MODEL --calib DIR`` does.

NNCF and its dependencies are imported only here, only to quantize; loading an artifact needs
nothing beyond OpenVINO.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from wanwu.artifacts import ModelSource
from wanwu.errors import EngineUnavailableError, WanwuError
from wanwu.partials import remove_stale_parts
from wanwu.weights import sha256_file, store_error

INT8_PREFIX = "int8-"
CALIBRATION = "calibration.json"
REPORT = "report.json"
RECIPE_VERSION = 2
IMAGE_SUFFIXES = {".jpeg", ".jpg", ".png", ".webp", ".bmp"}
ENGINE_FILES = {"openvino": ("model.xml", "model.bin")}
DEFAULT_SUBSET = 300
# Calibration views per run, spread over the images (7 photos -> 258 views each, 300 images -> 6).
# NNCF's default range estimator averages per-view extremes, so it needs many views: on
# EfficientNet-Lite0 calibrated on 7 photos, 21 views gave 94 % top-1 agreement with fp32 and a
# KL divergence of 0.075 from its softmax; 1,806 views gave 97–98 % and 0.0065 (four crop seeds).
VIEW_BUDGET = 1800
VALIDATION_VIEWS = 300  # what --accuracy-control scores each candidate on

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


class QuantizationError(WanwuError):
    code = "quantization_failed"


@dataclass(frozen=True)
class Int8Artifact:
    path: Path
    calibration: dict
    report: dict | None
    reused: bool = False

    def engine_file(self, engine: str) -> Path:
        return self.path / ENGINE_FILES[engine][0]


def calibration_files(folders: Sequence[Path]) -> list[Path]:
    """Every image file directly inside ``folders``, sorted by folder then name."""
    files: list[Path] = []
    for folder in folders:
        if not folder.is_dir():
            raise FileNotFoundError(f"calibration folder {folder} does not exist")
        files.extend(sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES))
    if not files:
        raise FileNotFoundError(f"no images (.jpg, .png, .webp, .bmp) in {', '.join(map(str, folders))}")
    return files


def choose_subset(files: list[Path], subset: int | None) -> list[Path]:
    """``subset`` files spread evenly over the sorted list (all of them when ``subset`` is None)."""
    if subset is None or subset >= len(files):
        return list(files)
    positions = np.linspace(0, len(files) - 1, subset).round().astype(int)
    return [files[i] for i in sorted(set(positions.tolist()))]


def calibration_hash(digests: dict[Path, str], recipe: dict) -> str:
    """SHA-256 of the sorted (file name, content SHA-256) pairs plus the recipe."""
    h = hashlib.sha256()
    for name, digest in sorted((p.name, d) for p, d in digests.items()):
        h.update(f"{name}\0{digest}\n".encode())
    h.update(json.dumps(recipe, sort_keys=True).encode())
    return h.hexdigest()


def views_per_image(images: int, augment: bool) -> int:
    return max(3, math.ceil(VIEW_BUDGET / images)) if augment else 1


def calibration_views(data: bytes, digest: str, pre, count: int) -> list[np.ndarray]:  # type: ignore[no-untyped-def]
    """``count`` views of an image: the eval view, its mirror image, then random crops.

    Crops cover 25–100 % of the area with an aspect ratio of 3/4–4/3 and are mirrored half the time
    (the shapes an object takes in photos people upload); the generator is seeded by the image's
    hash, so the same image always gives the same views.
    """
    from PIL import ImageOps

    from wanwu.preprocess import decode_image, transform

    img = decode_image(data)
    views = [transform(img, pre)]
    if count > 1:
        views.append(transform(ImageOps.mirror(img), pre))
    rng = np.random.default_rng(int(digest[:16], 16))
    width, height = img.size
    for _ in range(count - 2):
        area = rng.uniform(0.25, 1.0) * width * height
        aspect = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
        cw = min(width, max(8, round(math.sqrt(area * aspect))))
        ch = min(height, max(8, round(math.sqrt(area / aspect))))
        x0, y0 = int(rng.integers(0, width - cw + 1)), int(rng.integers(0, height - ch + 1))
        crop = img.crop((x0, y0, x0 + cw, y0 + ch))
        views.append(transform(ImageOps.mirror(crop) if rng.random() < 0.5 else crop, pre))
    return views


@dataclass(frozen=True)
class CalibrationViews:
    """The views NNCF calibrates on, made image by image on every pass instead of held in memory
    (1,800 float32 views at 224 × 224 would take about 1 GB)."""

    files: tuple[Path, ...]
    digests: dict[Path, str]
    pre: object
    per_image: int

    def __len__(self) -> int:
        return len(self.files) * self.per_image

    def __iter__(self) -> Iterator[np.ndarray]:
        for path in self.files:
            yield from calibration_views(path.read_bytes(), self.digests[path], self.pre, self.per_image)

    def sample(self, count: int) -> list[np.ndarray]:
        """About ``count`` views spread evenly over the set."""
        return list(itertools.islice(self, 0, None, max(1, len(self) // count)))


def int8_artifacts(bundle: Path, engine: str | None = None) -> list[Int8Artifact]:
    """Complete INT8 artifacts in a bundle, oldest first (optionally only those ``engine`` can load)."""
    found = []
    for manifest in bundle.glob(f"{INT8_PREFIX}*/{CALIBRATION}"):
        folder = manifest.parent
        try:
            calibration = json.loads(manifest.read_text())
        except (OSError, ValueError):
            continue
        engines = [engine] if engine else list(ENGINE_FILES)
        if not any(all((folder / f).is_file() for f in ENGINE_FILES.get(e, ("?",))) for e in engines):
            continue
        report_path = folder / REPORT
        report = json.loads(report_path.read_text()) if report_path.is_file() else None
        found.append(Int8Artifact(folder, calibration, report))
    return sorted(found, key=lambda a: (a.calibration.get("created", 0), a.path.name))


def latest_int8(source: ModelSource, engine: str) -> Int8Artifact:
    artifacts = int8_artifacts(source.bundle, engine)
    if not artifacts:
        raise EngineUnavailableError(
            f"no INT8 model of {source.spec.name} (weights {source.weights_sha256[:12]}) for {engine} yet; "
            f"make one from a few hundred of your images: wanwu quantize {source.spec.name} --calib DIR"
        )
    return artifacts[-1]


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


def _quantize_openvino(
    source: ModelSource, views: CalibrationViews, keep_fp32: tuple[str, ...], accuracy_control: bool, reference
):  # type: ignore[no-untyped-def]
    import openvino as ov

    nncf = _nncf()
    core = ov.Core()
    model = _static_spatial_model(core, source.onnx_path(), source.spec.preprocessing.crop_size)
    dataset = nncf.Dataset(views, lambda x: x[None])
    common = {
        "subset_size": len(views),
        "preset": nncf.QuantizationPreset.PERFORMANCE,
        "ignored_scope": nncf.IgnoredScope(names=list(keep_fp32), validate=False),
    }
    if not accuracy_control:
        return nncf.quantize(model, dataset, **common)
    scored = views.sample(VALIDATION_VIEWS)
    targets = [int(t) for t in reference(np.stack(scored)).argmax(axis=1)]

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


def write_atomically(folder: Path, write) -> None:  # type: ignore[no-untyped-def]
    remove_stale_parts(folder.parent)  # what killed writers left behind
    tmp = folder.with_name(f"{folder.name}.part-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        try:
            write(tmp)
            if folder.exists():  # another process finished the same artifact first
                shutil.rmtree(tmp)
            else:
                os.replace(tmp, folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    except (OSError, RuntimeError) as err:  # OpenVINO's save_model says RuntimeError("basic_ios::clear") on a full disk
        raise store_error(folder, err) from err


def labelled_eval_set(source: ModelSource, eval_dir: Path, calib_digests: set[str]) -> tuple[np.ndarray, np.ndarray, dict]:
    """``eval_dir``'s labelled images (``<wnid>_*.JPEG``) as pixels, their class indices, and the report's header
    (the folder and how many of its images were also calibrated on)."""
    from wanwu.evaluate import labelled_images
    from wanwu.labels import get_labels
    from wanwu.preprocess import preprocess_pixels

    items = labelled_images(eval_dir, get_labels(source.spec.labels))
    images = np.stack([preprocess_pixels(p.read_bytes(), source.spec.preprocessing) for p, _ in items])
    targets = np.array([t for _, t in items])
    overlap = sum(sha256_file(p) in calib_digests for p, _ in items)
    return images, targets, {"folder": str(eval_dir), "images_in_calibration_set": overlap}


def accuracy_report(
    source: ModelSource, artifact: Path, eval_dir: Path | None, calib_digests: set[str], views: CalibrationViews, threads: int
) -> dict:
    """fp32 vs int8 on ``eval_dir`` (labelled ``<wnid>_*.JPEG``) or, without one, on a sample of the calibration views."""
    from wanwu.accuracy import compare, run_batched
    from wanwu.engines.openvino_engine import OpenVinoEngine

    fp32 = OpenVinoEngine(source, threads=threads)
    int8 = OpenVinoEngine(source, threads=threads, precision="int8", int8_model=artifact / ENGINE_FILES["openvino"][0])
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


def quantize(
    source: ModelSource,
    calib_dirs: Sequence[Path],
    engine: str = "openvino",
    subset: int | None = DEFAULT_SUBSET,
    augment: bool = True,
    accuracy_control: bool = False,
    eval_dir: Path | None = None,
    threads: int = 1,
    log=lambda message: None,  # type: ignore[no-untyped-def]
) -> Int8Artifact:
    if engine not in ENGINE_FILES:
        raise EngineUnavailableError(f"INT8 quantization is implemented for {', '.join(ENGINE_FILES)}, not {engine}")
    files = choose_subset(calibration_files(calib_dirs), subset)
    digests = {p: sha256_file(p) for p in files}
    keep_fp32 = KEEP_FP32.get(source.spec.name, ())
    recipe = {
        "version": RECIPE_VERSION,
        "engine": engine,
        "augment": augment,
        "views_per_image": views_per_image(len(files), augment),
        "accuracy_control": accuracy_control,
        "keep_fp32": list(keep_fp32),
    }
    calib = calibration_hash(digests, recipe)
    folder = source.bundle / f"{INT8_PREFIX}{calib[:12]}"
    existing = [a for a in int8_artifacts(source.bundle, engine) if a.path == folder]
    if existing:
        log(f"reusing {folder} (same weights, calibration images and recipe)")
        return replace(existing[0], reused=True)

    views = CalibrationViews(tuple(files), digests, source.spec.preprocessing, recipe["views_per_image"])
    log(f"calibrating on {len(files)} images ({len(views)} views: each image, its mirror image and random crops)"
        if augment else f"calibrating on {len(files)} images")
    nncf = _nncf()
    import openvino as ov

    from wanwu.engines.openvino_engine import OpenVinoEngine

    started = time.perf_counter()
    reference = OpenVinoEngine(source, threads=threads).run if accuracy_control else None
    try:
        model = _quantize_openvino(source, views, keep_fp32, accuracy_control, reference)
    except (RuntimeError, ValueError) as err:
        raise QuantizationError(f"NNCF could not quantize {source.spec.name}: {err}") from err
    seconds = time.perf_counter() - started
    calibration = {
        "model": source.spec.name,
        "weights_sha256": source.weights_sha256,
        "engine": engine,
        "calib_hash": calib,
        "images": len(files),
        "views": len(views),
        "files": sorted(p.name for p in files),
        "folders": [str(d) for d in calib_dirs],
        "recipe": {
            **recipe,
            "tool": f"nncf {nncf.__version__}, openvino {ov.get_version().split('-')[0]}",
            "preset": "performance (symmetric int8 weights per channel, int8 activations per tensor)",
        },
        "quantize_seconds": round(seconds, 1),
        "created": time.time(),
    }

    def write(tmp: Path) -> None:
        ov.save_model(model, tmp / ENGINE_FILES["openvino"][0], compress_to_fp16=False)
        log("measuring agreement with fp32")
        report = {
            "model": source.spec.name,
            "weights_sha256": source.weights_sha256,
            "engine": engine,
            "precision": "int8",
            "calib_hash": calib,
            "calibration_images": len(files),
            **accuracy_report(source, tmp, eval_dir, set(digests.values()), views, threads),
        }
        (tmp / REPORT).write_text(json.dumps(report, indent=2) + "\n")
        (tmp / CALIBRATION).write_text(json.dumps(calibration, indent=2) + "\n")

    write_atomically(folder, write)
    artifact = int8_artifacts(source.bundle, engine)
    return next(a for a in artifact if a.path == folder)


_GUARD_SUMMARY = ("images", "top1_agreement", "top1_agreement_unguarded", "rechecked_fraction", "top1_fp32", "top1_bf16")


def reports(bundle: Path) -> list[dict]:
    """Summaries of the reduced-precision artifacts in a bundle, for ``wanwu models``."""
    from wanwu.engines.guard import bf16_guards

    rows = [
        {
            "precision": "bf16",
            "artifact": guard.path.name,
            "engine": "openvino",
            "calibration_images": guard.calibration.get("images"),
            "margin": guard.margin,
            **{k: v for k, v in (guard.report or {}).items() if k in _GUARD_SUMMARY},
        }
        for guard in bf16_guards(bundle)
    ]
    for artifact in int8_artifacts(bundle):
        report = artifact.report or {}
        rows.append(
            {
                "precision": "int8",
                "artifact": artifact.path.name,
                "engine": artifact.calibration.get("engine"),
                "calibration_images": artifact.calibration.get("images"),
                **{k: report[k] for k in ("images", "top1_agreement", "top5_overlap", "top1_fp32", "top1_int8") if k in report},
            }
        )
    return rows
