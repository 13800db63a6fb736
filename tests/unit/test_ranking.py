"""The one ranking path: stable tie order, min_score, label language."""

from __future__ import annotations

import numpy as np

from wanwu.labels import get_labels
from wanwu.ranking import label, rank, softmax, top_indices


def test_ties_go_to_the_lower_class_index() -> None:
    logits = np.zeros((1, 1000), np.float32)
    logits[0, [7, 3, 900]] = 5.0
    assert [i for i, _ in rank(logits, 4)[0]] == [3, 7, 900, 0]
    assert top_indices(logits, 3).tolist() == [[3, 7, 900]]


def test_probabilities_are_a_softmax_and_sorted() -> None:
    logits = np.random.default_rng(0).standard_normal((2, 1000)).astype(np.float32)
    ranked = rank(logits, 1000)
    for row, probs in zip(ranked, softmax(logits), strict=True):
        scores = [s for _, s in row]
        assert scores == sorted(scores, reverse=True) and abs(sum(scores) - 1) < 1e-9
        assert [s for _, s in row] == [probs[i] for i, _ in row]


def test_labels_languages_and_min_score() -> None:
    labels = get_labels()
    predictions = label([(1, 0.6), (2, 0.3), (3, 0.1)], labels, min_score=0.3)
    assert [p.index for p in predictions] == [1, 2]
    first = predictions[0]
    assert first.label == labels.english[1] == "goldfish" and first.label_zh == labels.chinese[1]
    assert first.as_dict() == {"index": 1, "label": "goldfish", "label_zh": labels.chinese[1], "score": 0.6}
    assert list(first.as_dict("zh")) == ["index", "label_zh", "score"]
    assert list(first.as_dict("en")) == ["index", "label", "score"]
    assert predictions[1].as_dict(digits=1)["score"] == 0.3
