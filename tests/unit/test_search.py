"""``--base auto``'s cross-validation (``wanwu.training.search``) on synthetic embeddings: folds, scores, the choice."""

from __future__ import annotations

import numpy as np

from wanwu.training import search
from wanwu.training.head import HeadConfig


def test_folds_are_stratified_seeded_and_keep_every_class_in_training() -> None:
    labels = [0] * 7 + [1] * 5 + [2] * 2
    keys = [f"image-{i}" for i in range(len(labels))]
    fold = search.folds_of(labels, keys, 5, seed=0)
    for label, count in ((0, 7), (1, 5), (2, 2)):
        members = fold[np.asarray(labels) == label]
        assert sorted(np.bincount(members, minlength=5).tolist(), reverse=True)[: min(count, 5)] == [
            count // 5 + (i < count % 5) for i in range(min(count, 5))]
    assert np.array_equal(fold, search.folds_of(labels, keys, 5, seed=0))
    assert not np.array_equal(fold, search.folds_of(labels, keys, 5, seed=1))
    assert search.fold_count(labels) == 5 and search.fold_count([0, 0, 1, 1, 1]) == 3


def _embeddings(separation: float, views: int, rng: np.random.Generator) -> tuple[np.ndarray, list[int]]:
    labels = [c for c in range(3) for _ in range(10)]
    centres = rng.normal(size=(3, 40)) * separation
    rows = [np.abs(centres[y] + rng.normal(size=40)) for y in labels for _ in range(views)]
    return np.stack(rows).astype(np.float32), labels


def test_cross_validation_scores_each_image_once_on_its_plain_view() -> None:
    rng = np.random.default_rng(0)
    x, labels = _embeddings(separation=6.0, views=2, rng=rng)
    fold = search.folds_of(labels, [str(i) for i in range(len(labels))], 5, seed=0)
    correct, scored = search.cross_validate(x, labels, 2, fold, 3, HeadConfig())
    assert scored == len(labels) and correct == scored  # separable: every held-out image right
    noise, _ = _embeddings(separation=0.0, views=2, rng=rng)
    correct, scored = search.cross_validate(noise, labels, 2, fold, 3, HeadConfig())
    assert scored == len(labels) and correct < 0.7 * scored  # no signal: about chance (1/3)


def test_the_best_score_wins_and_a_tie_goes_to_the_cheaper() -> None:
    names = [search.Candidate(b, f) for b in search.CANDIDATE_BASES for f in search.CANDIDATE_FEATURES]
    scores = [search.Scored(c, correct, 20, 0.1) for c, correct in zip(names, (15, 18, 18, 12), strict=True)]
    chosen = search.best(scores)
    assert chosen is scores[1]
    text = search.describe(chosen, scores, 5)
    assert text.startswith("efficientnet_lite0 pyramid (CV top-1 0.900 vs efficientnet_lite0 global 0.750")
    assert "efficientnet_lite2 pyramid 0.600" in text and "tied with efficientnet_lite2 global: the cheaper kept" in text
    record = search.record(chosen, scores, 5, 1.0)
    assert record["how"] == "cross-validation" and len(record["candidates"]) == 4
    assert record["chosen"] == {"base": "efficientnet_lite0", "features": "pyramid"}
    scores[3] = search.Scored(names[3], 19, 20, 0.1)
    assert search.best(scores) is scores[3]
