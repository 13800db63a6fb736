"""Reduced precision: INT8 models (NNCF), the bf16 guard, calibration views, their artifact store and reports.

Sits above the engines: it decides which model file an engine gets (an INT8 artifact) and wraps a
bf16 engine in its fp32 guard; the engines themselves never import it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from wanwu.engines import Engine, check_precision, create_engine
from wanwu.sources import ModelSource

if TYPE_CHECKING:
    from wanwu.precision.auto import PrecisionChoice


def resolve_precision(engine: str, source: ModelSource, threads: int, precision: str, batch: int = 8,
                      timed: dict[str, Engine] | None = None) -> tuple[str, PrecisionChoice | None]:
    """``precision`` itself, or for ``auto`` the one measured fastest on this CPU and the record of why.

    ``timed`` receives the engines opened to time each precision (unguarded, one stream), so a caller can
    serve with the chosen one instead of compiling it again (a read-only store times at every start).
    """
    from wanwu.precision.auto import AUTO, choose_precision, engine_timer

    if precision != AUTO:
        return precision, None

    def open_unguarded(p: str) -> Engine:
        runner = open_engine(engine, source, threads=threads, precision=p, guard=False)
        if timed is not None:
            timed[p] = runner
        return runner

    choice = choose_precision(engine, source, threads, batch, engine_timer(open_unguarded, source, batch))
    return choice.precision, choice


def open_engine(name: str, source: ModelSource, threads: int = 1, precision: str = "fp32", streams: int = 1,
                guard: bool = True) -> Engine:
    """An engine at ``precision``: int8 loads the newest INT8 artifact of these weights; bf16 comes guarded
    (near-ties re-run in fp32) where the bundle holds a guard calibration, unless ``guard`` is False."""
    check_precision(name, precision)
    model_file = None
    if precision == "int8":
        from wanwu.precision.int8 import int8_model_file

        model_file = int8_model_file(source, name)
    engine = create_engine(name, source, threads=threads, precision=precision, streams=streams, model_file=model_file)
    if precision != "bf16" or not guard:
        return engine
    from wanwu.precision.bf16 import latest_guard
    from wanwu.precision.guard import GuardedEngine

    calibration = latest_guard(source.bundle)
    if calibration is None or calibration.margin <= 0:
        return engine
    exact = create_engine(name, source, threads=threads, precision="fp32", streams=streams)
    crop = source.spec.preprocessing.crop_size
    exact.run(np.zeros((1, crop, crop, 3), np.uint8))  # compiled and warm at load
    return GuardedEngine(engine, exact, calibration.margin, calibration.path)


_GUARD_SUMMARY = ("images", "top1_agreement", "top1_agreement_unguarded", "rechecked_fraction", "top1_fp32", "top1_bf16")
_INT8_SUMMARY = ("images", "top1_agreement", "top5_overlap", "top1_fp32", "top1_int8")


def reports(bundle: Path) -> list[dict]:
    """Summaries of the reduced-precision artifacts in a bundle, for ``wanwu models``."""
    from wanwu.precision.bf16 import bf16_guards
    from wanwu.precision.int8 import int8_artifacts

    rows = [
        {"precision": "bf16", "artifact": g.path.name, "engine": "openvino", "calibration_images": g.calibration.get("images"),
         "margin": g.margin, **{k: v for k, v in (g.report or {}).items() if k in _GUARD_SUMMARY}}
        for g in bf16_guards(bundle)
    ]
    rows += [
        {"precision": "int8", "artifact": a.path.name, "engine": a.calibration.get("engine"),
         "calibration_images": a.calibration.get("images"), **{k: v for k, v in (a.report or {}).items() if k in _INT8_SUMMARY}}
        for a in int8_artifacts(bundle)
    ]
    return rows
