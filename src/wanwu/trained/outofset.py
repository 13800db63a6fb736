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
MAX_QUERIES = 2048  # labelled images scored leave-one-out for the threshold (a seeded sample beyond)
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


def is_out_of_set(similarity: np.ndarray, threshold: float | None) -> list[bool | None]:
    if threshold is None:
        return [None] * len(similarity)
    return [bool(s < threshold) for s in similarity]


def measure(stored: np.ndarray, views: int, seed: int = 0, keep: float = KEEP_IN_SET) -> tuple[InSetEvidence, dict | None]:
    """The evidence fitted on ``stored`` (every labelled image's ``views`` rows, image by image, the plain view
    first) and its threshold, leave one image out: each image's plain view against every other image's rows, as a
    new photo meets references it is not among. Every labelled image is a sample (not only the few validation
    ones: with five, the 5th percentile is the least typical one, and most new in-set photos fell below it)."""
    evidence = fit_evidence(stored, seed)
    images = len(stored) // views
    if images < 3:
        return evidence, None
    unit = _unit(np.asarray(stored, np.float32) - evidence.mean)
    rng = np.random.default_rng(seed)
    queries = np.sort(rng.choice(images, MAX_QUERIES, replace=False)) if images > MAX_QUERIES else np.arange(images)
    scores = []
    for block in np.array_split(queries, max(1, len(queries) // 256)):
        cosines = unit[block * views] @ unit.T
        cosines[np.arange(len(block))[:, None], block[:, None] * views + np.arange(views)] = -np.inf  # its own views
        scores.append(cosines.max(axis=1))
    score = np.concatenate(scores)
    threshold = float(np.quantile(score, 1 - keep))
    return evidence, {"threshold": threshold, "rule": f"{RULE}; keeps {keep:.0%} of the labelled images, each scored "
                      "against the others (leave one image out)", "in_set_kept": float((score >= threshold).mean()),
                      "held_out_images": int(len(queries)), "references": int(len(evidence.references)),
                      "file": EVIDENCE_FILE}


def with_similarity(features, head, evidence: InSetEvidence):  # type: ignore[no-untyped-def]
    """Torch twin of ``graph.with_in_set``: ``head(features(x))`` and, as one more column, the similarity of the
    features' global part (their first ``D`` columns) to the nearest reference."""
    import torch

    class WithSimilarity(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features, self.head = features, head
            self.register_buffer("mean", torch.from_numpy(evidence.mean.copy()))
            self.register_buffer("references", torch.from_numpy(evidence.references.copy()))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            f = self.features(x)
            unit = torch.nn.functional.normalize(f[:, : self.mean.shape[0]] - self.mean, dim=1)
            similarity = (unit @ self.references.T).amax(dim=1, keepdim=True)
            return torch.cat([self.head(f), similarity], dim=1)

    return WithSimilarity()
