"""Comparing a reduced-precision model with its fp32 reference: agreement, top-5 overlap, accuracy."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from wanwu.ranking import top_indices


def compare(reference: np.ndarray, candidate: np.ndarray, targets: np.ndarray | None = None) -> dict:
    """Top-1 agreement and mean top-5 overlap of ``candidate`` with ``reference`` (+ top-1 accuracy of both)."""
    ref5, cand5 = top_indices(reference), top_indices(candidate)
    report = {
        "images": int(reference.shape[0]),
        "top1_agreement": float(np.mean(ref5[:, 0] == cand5[:, 0])),
        # of the top min(5, classes): a trained model may have fewer than 5 classes
        "top5_overlap": float(np.mean([len(set(a) & set(b)) / len(a) for a, b in zip(ref5, cand5, strict=True)])),
        "disagreements": [int(i) for i in np.nonzero(ref5[:, 0] != cand5[:, 0])[0]],
    }
    if targets is not None:
        report["top1_reference"] = float(np.mean(ref5[:, 0] == targets))
        report["top1"] = float(np.mean(cand5[:, 0] == targets))
    return report


def run_batched(run: Callable[[np.ndarray], np.ndarray], images: np.ndarray, batch_size: int = 8) -> np.ndarray:
    return np.concatenate([run(images[i : i + batch_size]) for i in range(0, len(images), batch_size)])
