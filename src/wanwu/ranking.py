"""The one ranking path: logits -> probabilities -> top-k classes -> labelled predictions.

The CLI, the service, ``eval``, the Python API and the precision reports all rank here, so they
agree on tie order (equal scores: the lower class index first) and on what a prediction looks like.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wanwu.labels import LabelSet

LANGS = ("zh", "en", "both")

Ranked = list[tuple[int, float]]  # (class index, probability), highest first


@dataclass(frozen=True)
class Prediction:
    index: int
    label: str
    label_zh: str
    score: float

    def as_dict(self, lang: str = "both", digits: int | None = None) -> dict:
        """The JSON shape: ``index``, then ``label`` (en/both), ``label_zh`` (zh/both), ``score``."""
        return {"index": self.index, **label_fields(self.label, self.label_zh, lang), "score": rounded(self.score, digits)}


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits.astype(np.float64) - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def top_indices(scores: np.ndarray, k: int = 5) -> np.ndarray:
    """Per row, the indices of the ``k`` highest scores, highest first; ties: the lower index first."""
    return np.argsort(-scores, axis=-1, kind="stable")[..., :k]


def rank(logits: np.ndarray, k: int) -> list[Ranked]:
    """``(N, classes)`` logits -> per image, the ``k`` most probable classes with their probabilities."""
    return rank_probabilities(softmax(logits), k)


def rank_probabilities(probs: np.ndarray, k: int) -> list[Ranked]:
    """``rank`` for probabilities already computed (the categories are scored on the same ones)."""
    return [[(int(i), float(row[i])) for i in order] for row, order in zip(probs, top_indices(probs, k), strict=True)]


def label(ranked: Ranked, labels: LabelSet, min_score: float = 0.0) -> list[Prediction]:
    """Ranked classes -> predictions with English and Chinese labels, stopping below ``min_score``."""
    out = []
    for index, score in ranked:
        if score < min_score:
            break
        out.append(Prediction(index, labels.english[index], labels.chinese[index], score))
    return out


def label_fields(label: str, label_zh: str, lang: str) -> dict:
    """``label`` for en/both, ``label_zh`` for zh/both: the one rule every answer's language follows."""
    return {**({"label": label} if lang in ("en", "both") else {}), **({"label_zh": label_zh} if lang in ("zh", "both") else {})}


def rounded(score: float, digits: int | None) -> float:
    return score if digits is None else round(score, digits)
