"""Measuring the bf16 guard's margin on the user's images (``wanwu quantize MODEL --precision bf16``).

Every calibration view (the same views INT8 calibrates on: each image, its mirror image and random
crops) runs in fp32 and in bf16; the margin is the smallest bf16 top-1/top-2 gap below which
re-running in fp32 brings top-1 agreement on those views to ``target`` (``guard.choose_margin``).
Random crops are harder than whole photos (more near-ties), so on photos people upload fewer
images fall below the margin than on the views it was chosen on. The result is stored as
``<bundle>/bf16-guard-<calib_hash[:12]>/`` (``wanwu.precision.store``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wanwu.engines import Engine, create_engine
from wanwu.precision.calibration import CalibrationSet, Log, calibration_set, quiet
from wanwu.precision.compare import compare, run_batched
from wanwu.precision.guard import choose_margin, top_margin
from wanwu.precision.store import find_artifacts, newest, reuse, write_atomically, write_json
from wanwu.precision.views import DEFAULT_SUBSET, CalibrationViews, labelled_eval_set, views_per_image
from wanwu.sources import ModelSource

GUARD_PREFIX = "bf16-guard-"
RECIPE_VERSION = 1
DEFAULT_TARGET = 0.995  # top-1 agreement with fp32 on the calibration views


@dataclass(frozen=True)
class Bf16Guard:
    path: Path
    margin: float
    calibration: dict
    report: dict | None
    reused: bool = False


def bf16_guards(bundle: Path) -> list[Bf16Guard]:
    """Complete guard calibrations with a valid margin, oldest first."""
    found = []
    for artifact in find_artifacts(bundle, GUARD_PREFIX):
        try:
            margin = float(artifact.calibration["margin"])
        except (KeyError, TypeError, ValueError):
            continue
        if math.isfinite(margin) and margin >= 0:
            found.append(Bf16Guard(artifact.path, margin, artifact.calibration, artifact.report))
    return found


def latest_guard(bundle: Path) -> Bf16Guard | None:
    return newest(bf16_guards(bundle))  # type: ignore[arg-type]


def paired_logits(reference: Engine, fast: Engine, views: CalibrationViews, batch_size: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Both engines' logits over ``views`` in one pass (each pass decodes and crops every view again)."""
    out_reference, out_fast, pending = [], [], []
    for i, view in enumerate(views, 1):
        pending.append(view)
        if len(pending) == batch_size or i == len(views):
            batch = np.stack(pending)
            out_reference.append(reference.run(batch))
            out_fast.append(fast.run(batch))
            pending = []
    return np.concatenate(out_reference), np.concatenate(out_fast)


def guarded_report(reference: np.ndarray, fast: np.ndarray, margin: float, targets: np.ndarray | None) -> dict:
    """Plain bf16 and guarded bf16 against fp32 on the same images (guarded rows take the fp32 logits)."""
    rechecked = top_margin(fast) < margin
    guarded = np.where(rechecked[:, None], reference, fast)
    plain, with_guard = compare(reference, fast, targets), compare(reference, guarded, targets)
    report = {
        "images": plain["images"],
        "top1_agreement_unguarded": plain["top1_agreement"],
        "top1_agreement": with_guard["top1_agreement"],
        "top5_overlap": with_guard["top5_overlap"],
        "rechecked_fraction": float(rechecked.mean()),
        "disagreements": with_guard["disagreements"],
    }
    if targets is not None:
        report.update(top1_fp32=plain["top1_reference"], top1_bf16_unguarded=plain["top1"], top1_bf16=with_guard["top1"])
    return report


def _recipe(calib: CalibrationSet, target: float) -> dict:
    import openvino as ov

    return {
        "version": RECIPE_VERSION,
        "kind": "bf16-guard",
        "engine": "openvino",
        "openvino": ov.get_version().split("-")[0],  # bf16 rounding is the plugin's: another version, another margin
        "target": target,
        "views_per_image": views_per_image(len(calib.files), augment=True),
    }


def calibrate_bf16(
    source: ModelSource,
    calib_dirs: Sequence[Path],
    subset: int | None = DEFAULT_SUBSET,
    target: float = DEFAULT_TARGET,
    eval_dir: Path | None = None,
    threads: int = 1,
    log: Log = quiet,
) -> Bf16Guard:
    if not 0.0 < target <= 1.0:
        raise ValueError(f"target agreement must be in (0, 1], got {target}")
    calib = calibration_set(calib_dirs, subset)
    recipe = _recipe(calib, target)
    calib_hash, folder = calib.artifact_folder(source.bundle, GUARD_PREFIX, recipe)
    if (existing := reuse(bf16_guards(source.bundle), folder, log)) is not None:
        return existing

    # unguarded on both sides: this is what the margin is measured from
    fp32 = create_engine("openvino", source, threads=threads, precision="fp32")
    bf16 = create_engine("openvino", source, threads=threads, precision="bf16")
    views = calib.views(source, recipe["views_per_image"])
    log(f"running {len(views)} views of {len(calib.files)} images in fp32 and bf16")
    started = time.perf_counter()
    reference, fast = paired_logits(fp32, bf16, views)
    margin = choose_margin(reference, fast, target)
    on_views = guarded_report(reference, fast, margin, None)
    log(f"margin {margin:.4f}: {on_views['rechecked_fraction']:.1%} of the views re-run in fp32")
    calibration = {
        **calib.describe(source, calib_hash, calib_dirs),
        "margin": margin,
        "views": len(views),
        "on_views": {k: v for k, v in on_views.items() if k != "disagreements"},
        "recipe": recipe,
        "seconds": round(time.perf_counter() - started, 1),
        "created": time.time(),
    }
    report = _eval_report(fp32.run, bf16.run, margin, on_views, eval_dir, source, calib)
    report = {"model": source.spec.name, "weights_sha256": source.weights_sha256, "engine": "openvino",
              "precision": "bf16", "margin": margin, "calib_hash": calib_hash, "calibration_images": len(calib.files), **report}
    write_atomically(folder, lambda tmp: write_json(tmp, calibration, report))
    return next(g for g in bf16_guards(source.bundle) if g.path == folder)


def _eval_report(
    fp32: Callable[[np.ndarray], np.ndarray], bf16: Callable[[np.ndarray], np.ndarray], margin: float, on_views: dict,
    eval_dir: Path | None, source: ModelSource, calib: CalibrationSet,
) -> dict:
    if eval_dir is None:
        return {"folder": None, "note": "no --eval folder: measured on the calibration views the margin was chosen on",
                **on_views}
    images, targets, header = labelled_eval_set(source, eval_dir, set(calib.digests.values()))
    return {**header, **guarded_report(run_batched(fp32, images), run_batched(bf16, images), margin, targets)}
