"""Validation metrics of a trained head, and the confidence below which an answer is called ``unknown``."""

from __future__ import annotations

import numpy as np

from wanwu.ranking import softmax, top_indices

KEEP_CORRECT = 0.95  # the threshold keeps this share of the correct validation answers


def confusion(y: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """Rows: true class; columns: predicted class."""
    matrix = np.zeros((classes, classes), np.int64)
    np.add.at(matrix, (y, predicted), 1)
    return matrix


def metrics(logits: np.ndarray, y: np.ndarray, names: list[str]) -> dict:
    """top-1, top-5 (where there are more than 5 classes), per-class precision/recall, confusion matrix."""
    classes = len(names)
    ranked = top_indices(softmax(logits), min(5, classes))
    predicted = ranked[:, 0]
    matrix = confusion(y, predicted, classes)
    per_class = []
    for c, name in enumerate(names):
        tp, predicted_c, support = int(matrix[c, c]), int(matrix[:, c].sum()), int(matrix[c].sum())
        per_class.append({
            "index": c, "label": name, "support": support,
            "precision": tp / predicted_c if predicted_c else None, "recall": tp / support if support else None,
        })
    return {
        "images": int(len(y)),
        "top1": float((predicted == y).mean()),
        "top5": float((ranked == y[:, None]).any(axis=1).mean()) if classes > 5 else None,
        "per_class": per_class,
        "confusion": matrix.tolist(),
    }


def unknown_threshold(logits: np.ndarray, y: np.ndarray, keep: float = KEEP_CORRECT) -> dict | None:
    """The top score below which an answer is marked ``unknown``: the lowest ``1 - keep`` of the scores of
    correct validation answers fall below it. Also reports how many wrong answers it catches."""
    probs = softmax(logits)
    top, predicted = probs.max(axis=1), probs.argmax(axis=1)
    correct = predicted == y
    if correct.sum() < 2:
        return None
    threshold = float(np.quantile(top[correct], 1 - keep))
    wrong = ~correct
    return {
        "threshold": threshold,
        "rule": f"keeps {keep:.0%} of the correct validation answers",
        "correct_kept": float((top[correct] >= threshold).mean()),
        "wrong_flagged": float((top[wrong] < threshold).mean()) if wrong.any() else None,
        "validation_images": int(len(y)),
    }
