"""Reduced precision: INT8 models (NNCF), the bf16 guard, calibration views, their artifact store and reports.

Sits above the engines: it says which model file an engine gets (an INT8 artifact) and wraps a bf16
engine in its fp32 guard, for ``wanwu.loader`` (which opens every engine); the engines never import it.
"""

from __future__ import annotations

from pathlib import Path

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
