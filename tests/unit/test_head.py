"""The head (logistic regression on embeddings), the validation metrics and the ``unknown`` threshold."""

from __future__ import annotations

import numpy as np
import pytest

from wanwu.training.head import HeadConfig, class_weights, fit, signed_sqrt
from wanwu.training.metrics import confusion, metrics, unknown_threshold


def _blobs(n: int, classes: int, d: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Non-negative embeddings (like pooled ReLU activations), one cluster per class."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, 4, (classes, d))
    y = rng.integers(0, classes, n)
    return np.abs(centres[y] + rng.normal(0, 0.6, (n, d))).astype(np.float32), y


def test_the_head_separates_classes() -> None:
    x, y = _blobs(600, 4)
    head = fit(x, y, 4)
    assert head.weight.shape == (4, 32) and head.bias.shape == (4,) and head.weight.dtype == np.float32
    assert (head.logits(x).argmax(axis=1) == y).mean() > 0.97
    assert head.iterations > 1


def test_the_standardisation_is_folded_into_one_linear_layer() -> None:
    x, y = _blobs(200, 3)
    head = fit(x, y, 3)
    manual = signed_sqrt(x) @ head.weight.T + head.bias
    np.testing.assert_allclose(head.logits(x), manual, rtol=1e-5, atol=1e-5)


def test_signed_sqrt_keeps_the_sign() -> None:
    np.testing.assert_allclose(signed_sqrt(np.array([-4.0, 0.0, 9.0])), [-2.0, 0.0, 3.0])


def test_class_weights_balance_uneven_classes() -> None:
    y = np.array([0] * 90 + [1] * 10)
    w = class_weights(y, 2, balance=True)
    assert w[y == 0].sum() == pytest.approx(w[y == 1].sum())
    assert (class_weights(y, 2, balance=False) == 1).all()


def test_a_stronger_penalty_gives_smaller_weights() -> None:
    x, y = _blobs(200, 3)
    weak, strong = fit(x, y, 3, HeadConfig(l2=1e-3)), fit(x, y, 3, HeadConfig(l2=1.0))
    assert np.abs(strong.weight).sum() < np.abs(weak.weight).sum()


def test_metrics_on_a_known_confusion() -> None:
    y = np.array([0, 0, 0, 1, 1, 2])
    predicted = np.array([0, 0, 1, 1, 1, 0])
    logits = np.eye(3)[predicted] * 5
    m = metrics(logits, y, ["a", "b", "c"])
    assert m["top1"] == pytest.approx(4 / 6) and m["top5"] is None  # 3 classes: top-5 does not apply
    assert m["confusion"] == [[2, 1, 0], [0, 2, 0], [1, 0, 0]]
    a, b, c = m["per_class"]
    assert (a["precision"], a["recall"]) == (pytest.approx(2 / 3), pytest.approx(2 / 3))
    assert (b["precision"], b["recall"]) == (pytest.approx(2 / 3), 1.0)
    assert (c["precision"], c["recall"]) == (None, 0.0)  # never predicted
    assert confusion(y, predicted, 3).sum() == 6


def test_top5_applies_with_more_than_five_classes() -> None:
    y = np.arange(8)
    logits = np.tile(np.arange(8, 0, -1, dtype=np.float64), (8, 1))  # class 0 first, then 1, 2, ...
    m = metrics(logits, y, [str(i) for i in range(8)])
    assert m["top1"] == pytest.approx(1 / 8) and m["top5"] == pytest.approx(5 / 8)


def test_the_unknown_threshold_keeps_most_correct_answers_and_flags_unsure_wrong_ones() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 400)
    logits = rng.normal(0, 0.3, (400, 3))
    sure = rng.random(400) < 0.9
    logits[np.arange(400), y] += np.where(sure, 6.0, 0.0)  # 90 % confident and right, the rest a coin toss
    u = unknown_threshold(logits, y)
    assert u is not None and 0.34 < u["threshold"] < 1
    assert u["correct_kept"] == pytest.approx(0.95, abs=0.01)
    assert u["wrong_flagged"] > 0.9  # the unsure answers sit below the confident correct ones
    assert unknown_threshold(np.eye(3)[[1, 2, 0]], np.array([0, 1, 2])) is None  # nothing right: no threshold


def test_a_warm_start_reaches_the_same_head_in_fewer_iterations() -> None:
    x, y = _blobs(300, 3)
    first = fit(x[:200], y[:200], 3)
    cold, warm = fit(x, y, 3), fit(x, y, 3, init=first)
    assert warm.iterations < cold.iterations
    np.testing.assert_allclose(warm.logits(x), cold.logits(x), atol=0.05)
