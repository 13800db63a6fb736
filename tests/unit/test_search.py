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
    hits = search.cross_validate(x, labels, 2, fold, 3, HeadConfig())
    assert hits.shape == (len(labels),) and hits.all()  # separable: every held-out image right
    noise, _ = _embeddings(separation=0.0, views=2, rng=rng)
    hits = search.cross_validate(noise, labels, 2, fold, 3, HeadConfig())
    assert hits.shape == (len(labels),) and hits.sum() < 0.7 * len(labels)  # no signal: about chance (1/3)


def _scored(candidate: search.Candidate, right: list[int], images: int = 20) -> search.Scored:
    hits = np.zeros(images, bool)
    hits[right] = True
    return search.Scored(candidate, hits, 0.1)


CANDIDATES = [*(search.Candidate(b, f) for b in search.CANDIDATE_BASES for f in search.CANDIDATE_FEATURES),
              search.Candidate(search.JOINED[0], "pyramid", search.JOINED[1])]


def test_the_richest_is_kept_unless_another_beats_it_by_more_than_one_standard_error() -> None:
    richest = list(range(15))  # the pair: 15 of 20
    scores = [_scored(CANDIDATES[0], list(range(12))), _scored(CANDIDATES[1], list(range(14)) + [16, 17, 18]),
              _scored(CANDIDATES[2], list(range(13))), _scored(CANDIDATES[3], [0, 1]), _scored(CANDIDATES[4], richest)]
    # Lite0 pyramid leads by 2 images, but 4 images differ: one standard error is 2.0, so the lead is noise
    assert search.margin(scores[1], scores[4]) == 2.0
    chosen = search.best(scores)
    assert chosen is scores[4]
    text = search.describe(chosen, scores, 5)
    assert text.startswith("efficientnet_lite2+efficientnet_lite0 pyramid (CV top-1 0.750 vs efficientnet_lite0 global "
                           "0.600, efficientnet_lite0 pyramid 0.850")
    assert text.endswith("the richest, kept: no other beat it by more than one standard error)")
    record = search.record(chosen, scores, 5, 1.0)
    assert record["how"] == "cross-validation" and len(record["candidates"]) == 5
    assert record["chosen"] == {"base": "efficientnet_lite2", "companion": "efficientnet_lite0", "features": "pyramid"}
    assert [c["correct"] for c in record["candidates"]] == [12, 17, 13, 2, 15]


def test_a_clear_lead_wins_and_a_tie_between_clear_leaders_goes_to_the_cheaper() -> None:
    scores = [_scored(CANDIDATES[0], list(range(19))), _scored(CANDIDATES[1], list(range(19))),
              _scored(CANDIDATES[2], list(range(10))), _scored(CANDIDATES[3], list(range(18))),
              _scored(CANDIDATES[4], list(range(12)))]
    chosen = search.best(scores)  # 19 vs 12: 7 images apart, one standard error sqrt(7) = 2.6
    assert chosen is scores[0]
    text = search.describe(chosen, scores, 5)
    assert "it beat the richest, efficientnet_lite2+efficientnet_lite0 pyramid, by 7 images, more than one standard " \
           "error (2.6); tied with efficientnet_lite0 pyramid: the cheaper kept" in text
