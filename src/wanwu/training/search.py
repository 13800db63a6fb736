"""``--base auto``: which base model and which features the head reads, chosen by cross-validation on the training images.

Few-shot sets disagree on the best base: on 1,000 Fashion-MNIST images Lite0's features beat Lite2's by a point,
on ~100 cut-out photos of everyday objects Lite2's beat Lite0's by three (issue 24). So below ``SEARCH_UP_TO``
training images each candidate (base × features, cheapest first; up to ``JOINED_UP_TO`` images also Lite2 and Lite0
joined, the richest) is scored by stratified k-fold cross-validation of the same head on the training split (the
validation split stays held out for the metrics). The richest candidate (listed last) is kept unless another beats
it by more than one standard error (``best``). Above ``SEARCH_UP_TO``, extracting with every base and the folds' fits
would not fit the training budget (≤ 60 s for 1,000 images on 2 cores), so the default base is used and the record
says why.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

import numpy as np

from wanwu.training.head import HeadConfig, fit

SEARCH_UP_TO = 1_000  # training images; above, --base auto is the default base without a search
FOLDS = 5
# Cheapest to serve first (a tie goes to the earlier one): Lite2 extracts ~2.5x slower than Lite0.
CANDIDATE_BASES = ("efficientnet_lite0", "efficientnet_lite2")
CANDIDATE_FEATURES = ("global", "pyramid")
# Both bases joined (``wanwu.trained.companion``): the pair's features are the first's, then the companion's of the same
# input. Listed last, the richest (``best`` keeps it unless clearly beaten); searched up to ``JOINED_UP_TO`` training
# images, where the companion's extraction and the widest folds fit the time budget.
JOINED = ("efficientnet_lite2", "efficientnet_lite0")
JOINED_UP_TO = 500


@dataclass(frozen=True)
class Candidate:
    base: str
    features: str
    companion: str | None = None

    @property
    def name(self) -> str:
        return f"{self.base}{'+' + self.companion if self.companion else ''} {self.features}"


@dataclass(frozen=True, eq=False)
class Scored:
    candidate: Candidate
    hits: np.ndarray  # (images,) bool: each training image right when its fold was held out
    seconds: float

    @property
    def correct(self) -> int:
        return int(self.hits.sum())

    @property
    def images(self) -> int:
        return len(self.hits)

    @property
    def top1(self) -> float:
        return self.correct / self.images if self.images else 0.0

    def as_dict(self) -> dict:
        return {"base": self.candidate.base, "companion": self.candidate.companion, "features": self.candidate.features,
                "cv_top1": round(self.top1, 4),
                "correct": self.correct, "images": self.images, "seconds": round(self.seconds, 2)}


def folds_of(labels: list[int], keys: list[str], folds: int, seed: int) -> np.ndarray:
    """Stratified folds: each class's images ranked by a hash of the seed and their content, dealt out in turn."""
    out = np.zeros(len(labels), np.int64)
    for label in sorted(set(labels)):
        members = [i for i, y in enumerate(labels) if y == label]
        ranked = sorted(members, key=lambda i: hashlib.sha256(f"cv{seed}:{keys[i]}".encode()).hexdigest())
        for position, i in enumerate(ranked):
            out[i] = position % folds
    return out


def fold_count(labels: list[int]) -> int:
    """``FOLDS``, or fewer when even the largest class has fewer images (a fold with no image teaches nothing)."""
    return max(2, min(FOLDS, int(np.bincount(labels).max())))


def cross_validate(x: np.ndarray, labels: list[int], views: int, fold: np.ndarray, classes: int,
                   config: HeadConfig) -> np.ndarray:
    """Per image, whether it was right: ``x`` has ``views`` rows per image (its plain view first); each fold's head is
    fitted on the other folds' images (every view) and scores the fold's images on their plain view, as validation
    does."""
    image_fold = np.repeat(fold, views)
    y = np.repeat(np.asarray(labels, np.int64), views)
    plain = np.arange(len(x)) % views == 0
    hits = np.zeros(len(labels), bool)
    head = None
    for k in range(int(fold.max()) + 1):
        held = image_fold == k
        if not held.any():
            continue
        head = fit(x[~held], y[~held], classes, config, init=head)  # folds share most images: start from the last
        test = held & plain
        hits[fold == k] = head.logits(x[test]).argmax(axis=1) == y[test]
    return hits


def score(candidate: Candidate, x: np.ndarray, labels: list[int], views: int, fold: np.ndarray, classes: int,
          config: HeadConfig) -> Scored:
    started = time.perf_counter()
    hits = cross_validate(x, labels, views, fold, classes, config)
    return Scored(candidate, hits, time.perf_counter() - started)


def margin(a: Scored, b: Scored) -> float:
    """One standard error of ``a``'s lead over ``b`` in images: the square root of the images only one got right
    (a paired difference's spread; the images both got right or both wrong say nothing about which is better)."""
    return float(np.sqrt(np.count_nonzero(a.hits != b.hits)))


def best(scores: list[Scored]) -> Scored:
    """The richest candidate (listed last) unless another beats it by more than one standard error (``margin``); of
    those that do, the highest CV top-1, a tie going to the cheaper (listed first).

    Why not simply the highest: on few images CV is too noisy to rank candidates a few images apart (5-fold on 78
    images, one image is 1.3 points), and picking the noisy best cost 1.7 points of held-out top-1 against always
    taking the richest on the emoji proxy (0.770 vs 0.787), while the richest was never worse than any fixed choice
    on either proxy (docs/training.md)."""
    richest = scores[-1]
    clear = [s for s in scores[:-1] if s.correct - richest.correct > margin(s, richest)]
    return max(clear, key=lambda s: (s.correct, -scores.index(s))) if clear else richest


def describe(chosen: Scored, scores: list[Scored], folds: int) -> str:
    """"efficientnet_lite2 pyramid (CV top-1 0.931 vs efficientnet_lite0 global 0.885, …; 5-fold on 78 images; …)"."""
    others = ", ".join(f"{s.candidate.name} {s.top1:.3f}" for s in scores if s is not chosen)
    richest = scores[-1]
    if chosen is not richest:
        why = (f"it beat the richest, {richest.candidate.name}, by {chosen.correct - richest.correct} images, more than "
               f"one standard error ({margin(chosen, richest):.1f})")
        ties = [s for s in scores if s is not chosen and s.correct == chosen.correct and s is not richest]
        why += f"; tied with {', '.join(s.candidate.name for s in ties)}: the cheaper kept" if ties else ""
    elif any(s.correct > chosen.correct for s in scores):
        why = "the richest, kept: no other beat it by more than one standard error"
    else:
        why = "the richest, and the best"
    return (f"{chosen.candidate.name} (CV top-1 {chosen.top1:.3f} vs {others}; {folds}-fold on {chosen.images} "
            f"training images; {why})")


def record(chosen: Scored, scores: list[Scored], folds: int, seconds: float) -> dict:
    """What the manifest, ``--json`` and the report say about the choice."""
    c = chosen.candidate
    return {"how": "cross-validation", "chosen": {"base": c.base, "companion": c.companion, "features": c.features},
            "summary": describe(chosen, scores, folds), "folds": folds, "images": chosen.images,
            "candidates": [s.as_dict() for s in scores], "seconds": round(seconds, 2)}


def skipped_record(base: str, features: str, train_images: int) -> dict:
    why = (f"{train_images:,} training images, above {SEARCH_UP_TO:,}: extracting with every candidate base would not "
           f"fit the time budget, so the default base")
    return {"how": "default", "chosen": {"base": base, "features": features}, "summary": f"{base} {features} ({why})",
            "candidates": []}


def explicit_record(base: str, features: str) -> dict:
    return {"how": "--base", "chosen": {"base": base, "features": features}, "summary": f"{base} {features} (--base)",
            "candidates": []}
