"""Measuring the bf16 guard's margin on the user's images (``wanwu quantize MODEL --precision bf16``).

Every calibration view (the same views INT8 calibrates on: each image, its mirror image and random
crops) runs in fp32 and in bf16; the margin is the smallest bf16 top-1/top-2 gap below which
re-running in fp32 brings top-1 agreement on those views to ``target`` (``guard.choose_margin``).
Random crops are harder than whole photos (more near-ties), so on photos people upload fewer
images fall below the margin than on the views it was chosen on.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from wanwu.accuracy import compare, run_batched
from wanwu.artifacts import ModelSource
from wanwu.engines.guard import CALIBRATION, GUARD_PREFIX, REPORT, Bf16Guard, bf16_guards, choose_margin, top_margin
from wanwu.quantize import (
    DEFAULT_SUBSET,
    CalibrationViews,
    calibration_files,
    calibration_hash,
    choose_subset,
    labelled_eval_set,
    views_per_image,
    write_atomically,
)
from wanwu.weights import sha256_file

RECIPE_VERSION = 1
DEFAULT_TARGET = 0.995  # top-1 agreement with fp32 on the calibration views


def _paired_logits(reference_run, fast_run, views, batch_size: int = 8) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
    """Both engines' logits over ``views`` in one pass (each pass decodes and crops every view again)."""
    reference, fast, pending = [], [], []
    for i, view in enumerate(views, 1):
        pending.append(view)
        if len(pending) == batch_size or i == len(views):
            batch = np.stack(pending)
            reference.append(reference_run(batch))
            fast.append(fast_run(batch))
            pending = []
    return np.concatenate(reference), np.concatenate(fast)


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


def calibrate_bf16(
    source: ModelSource,
    calib_dirs: Sequence[Path],
    subset: int | None = DEFAULT_SUBSET,
    target: float = DEFAULT_TARGET,
    eval_dir: Path | None = None,
    threads: int = 1,
    log=lambda message: None,  # type: ignore[no-untyped-def]
) -> Bf16Guard:
    import openvino as ov

    from wanwu.engines.openvino_engine import OpenVinoEngine

    if not 0.0 < target <= 1.0:
        raise ValueError(f"target agreement must be in (0, 1], got {target}")
    files = choose_subset(calibration_files(calib_dirs), subset)
    digests = {p: sha256_file(p) for p in files}
    recipe = {
        "version": RECIPE_VERSION,
        "kind": "bf16-guard",
        "engine": "openvino",
        "openvino": ov.get_version().split("-")[0],  # bf16 rounding is the plugin's: another version, another margin
        "target": target,
        "views_per_image": views_per_image(len(files), augment=True),
    }
    calib = calibration_hash(digests, recipe)
    folder = source.bundle / f"{GUARD_PREFIX}{calib[:12]}"
    existing = [g for g in bf16_guards(source.bundle) if g.path == folder]
    if existing:
        log(f"reusing {folder} (same weights, calibration images and recipe)")
        return dataclasses.replace(existing[0], reused=True)

    # unguarded on both sides: this is what the margin is measured from
    fp32 = OpenVinoEngine(source, threads=threads, precision="fp32")
    bf16 = OpenVinoEngine(source, threads=threads, precision="bf16")
    views = CalibrationViews(tuple(files), digests, source.spec.preprocessing, recipe["views_per_image"])
    log(f"running {len(views)} views of {len(files)} images in fp32 and bf16")
    started = time.perf_counter()
    reference, fast = _paired_logits(fp32.run, bf16.run, views)
    margin = choose_margin(reference, fast, target)
    on_views = guarded_report(reference, fast, margin, None)
    log(f"margin {margin:.4f}: {on_views['rechecked_fraction']:.1%} of the views re-run in fp32")
    calibration = {
        "model": source.spec.name,
        "weights_sha256": source.weights_sha256,
        "calib_hash": calib,
        "margin": margin,
        "images": len(files),
        "views": len(views),
        "on_views": {k: v for k, v in on_views.items() if k != "disagreements"},
        "files": sorted(p.name for p in files),
        "folders": [str(d) for d in calib_dirs],
        "recipe": recipe,
        "seconds": round(time.perf_counter() - started, 1),
        "created": time.time(),
    }
    if eval_dir is not None:
        images, targets, header = labelled_eval_set(source, eval_dir, set(digests.values()))
        report = {**header, **guarded_report(run_batched(fp32.run, images), run_batched(bf16.run, images), margin, targets)}
    else:
        report = {"folder": None, "note": "no --eval folder: measured on the calibration views the margin was chosen on",
                  **on_views}
    report = {"model": source.spec.name, "weights_sha256": source.weights_sha256, "engine": "openvino",
              "precision": "bf16", "margin": margin, "calib_hash": calib, "calibration_images": len(files), **report}

    def write(tmp: Path) -> None:
        (tmp / REPORT).write_text(json.dumps(report, indent=2) + "\n")
        (tmp / CALIBRATION).write_text(json.dumps(calibration, indent=2) + "\n")

    write_atomically(folder, write)
    return next(g for g in bf16_guards(source.bundle) if g.path == folder)
