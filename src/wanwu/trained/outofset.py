"""Out-of-set evidence: is an image like anything the model was trained on at all?

A head's softmax always sums to 1 over its own classes, so a coffee cup on an animals model can score
"mammals 90 %". The base's global embedding says more: the rule is the cosine similarity of an image's
embedding, centred on the training mean, to its nearest training embedding (1-NN). Below a threshold that
keeps ``KEEP_IN_SET`` of the held-out in-set images, the image is out of set.

Measured (docs/training.md, ``bench/out_of_set.py``) against the head's own scores and class centroids:
1-NN on centred raw embeddings separated other ImageNet kinds best (AUROC 0.93 vs 0.71 for the top softmax,
0.67 for class centroids, on 5 animal classes; 1.00 on 6 Fashion-MNIST classes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KEEP_IN_SET = 0.95  # the threshold keeps this share of the in-set held-out images
MAX_REFERENCES = 2048  # training embeddings kept (a seeded sample beyond): 10 MiB of float32 at 1,280 dims
EVIDENCE_FILE = "in_set.npz"
RULE = "cosine similarity to the nearest training embedding (base's global embedding, centred on the training mean)"


@dataclass(frozen=True)
class InSetEvidence:
    mean: np.ndarray  # (D,) the training embeddings' mean
    references: np.ndarray  # (M, D) centred, L2-normalised training embeddings

    def similarity(self, embeddings: np.ndarray) -> np.ndarray:
        """``(N, D)`` global embeddings -> ``(N,)`` cosine similarity to the nearest reference."""
        return (_unit(np.asarray(embeddings, np.float32) - self.mean) @ self.references.T).max(axis=1)

    def save(self, path) -> None:  # type: ignore[no-untyped-def]
        with open(path, "wb") as f:
            np.savez(f, mean=self.mean, references=self.references)

    @classmethod
    def load(cls, path) -> InSetEvidence:  # type: ignore[no-untyped-def]
        with np.load(path) as data:
            return cls(data["mean"], data["references"])


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)).astype(np.float32)


def fit_evidence(embeddings: np.ndarray, seed: int = 0, limit: int = MAX_REFERENCES) -> InSetEvidence:
    """The references from the training images' global embeddings (a seeded sample of ``limit`` when more)."""
    x = np.asarray(embeddings, np.float32)
    mean = x.mean(axis=0)
    if len(x) > limit:
        x = x[np.sort(np.random.default_rng(seed).choice(len(x), limit, replace=False))]
    return InSetEvidence(mean.astype(np.float32), _unit(x - mean))


def calibrate(evidence: InSetEvidence, held_out: np.ndarray, keep: float = KEEP_IN_SET) -> dict | None:
    """The similarity below which an image is out of set: the lowest ``1 - keep`` of held-out in-set images fall
    below it (they were not among the references, as a new photo will not be)."""
    if len(held_out) < 2:
        return None
    scores = evidence.similarity(held_out)
    threshold = float(np.quantile(scores, 1 - keep))
    return {"threshold": threshold, "rule": f"{RULE}; keeps {keep:.0%} of the held-out in-set images",
            "in_set_kept": float((scores >= threshold).mean()), "held_out_images": int(len(held_out)),
            "references": int(len(evidence.references)), "file": EVIDENCE_FILE}


def global_part(vectors: np.ndarray, features: str, width: int) -> np.ndarray:
    """The base's global embedding inside a feature vector: all of ``global``; the first ``width`` of ``pyramid``
    (its first part is the global average of the last feature map, ``wanwu.trained.graph._pyramid_nodes``)."""
    return vectors if features == "global" else vectors[:, :width]


def is_out_of_set(similarity: np.ndarray, threshold: float | None) -> list[bool | None]:
    if threshold is None:
        return [None] * len(similarity)
    return [bool(s < threshold) for s in similarity]


def measure(train: np.ndarray, held_out: np.ndarray | None, stored: np.ndarray, seed: int = 0
            ) -> tuple[InSetEvidence, dict | None]:
    """Calibrated on references from ``train`` against ``held_out`` (None: no validation images, no threshold);
    the evidence stored is then fitted on ``stored`` (training + validation images after a refit), so every
    labelled photo counts and the threshold stays a held-out estimate (more references only raise similarities)."""
    calibration = None if held_out is None else calibrate(fit_evidence(train, seed), held_out)
    return fit_evidence(stored, seed), calibration
