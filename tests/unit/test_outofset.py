"""Out-of-set evidence (``wanwu.trained.outofset``): references, the calibrated threshold, old versions without it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from wanwu.trained.outofset import EVIDENCE_FILE, InSetEvidence, fit_evidence, is_out_of_set, measure
from wanwu.trained.source import TrainedSource
from wanwu.trained.store import Version


def _clusters(rng: np.random.Generator, per_class: int, dims: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Three classes around fixed non-negative centres (as pooled activations are), plus noise."""
    centres = np.abs(np.random.default_rng(99).normal(size=(3, dims))) * 3
    y = np.repeat(np.arange(3), per_class)
    return np.abs(centres[y] + rng.normal(scale=0.5, size=(len(y), dims))).astype(np.float32), y


def test_references_are_capped_and_round_trip(tmp_path: Path) -> None:
    train, _ = _clusters(np.random.default_rng(1), 100)
    evidence = fit_evidence(train, limit=50)
    assert evidence.references.shape == (50, 64)
    np.testing.assert_allclose(np.linalg.norm(evidence.references, axis=1), 1, atol=1e-5)
    evidence.save(tmp_path / EVIDENCE_FILE)
    loaded = InSetEvidence.load(tmp_path / EVIDENCE_FILE)
    np.testing.assert_array_equal(loaded.similarity(train[:5]), evidence.similarity(train[:5]))
    assert (evidence.similarity(train[:5]) > 0.99).sum() <= 5  # a reference is its own nearest neighbour


def test_the_threshold_scores_each_labelled_image_against_the_others() -> None:
    """Leave one image out: an image's own views are not its neighbours, so the threshold is what a new in-set
    photo meets; with 3 views per image, a photo of no class's pattern falls below it."""
    rng = np.random.default_rng(2)
    images, _ = _clusters(rng, 20)
    views = np.repeat(images, 3, axis=0) + rng.normal(scale=0.05, size=(len(images) * 3, 64)).astype(np.float32)
    stored, calibration = measure(views, 3)
    assert calibration is not None and calibration["held_out_images"] == 60 and len(stored.references) == 180
    assert stored.similarity(images).min() > 0.99  # a stored image is its own reference ...
    assert calibration["threshold"] < 0.99  # ... but not when it is scored: its own views are left out
    fresh, _ = _clusters(rng, 20)
    other = np.abs(rng.normal(size=(40, 64)) * 3).astype(np.float32)
    assert np.mean(is_out_of_set(stored.similarity(fresh), calibration["threshold"])) <= 0.15
    assert np.mean(is_out_of_set(stored.similarity(other), calibration["threshold"])) > 0.9
    assert calibration["in_set_kept"] >= 0.9  # the share of labelled images at or above the threshold
    assert measure(views[:6], 3)[1] is None  # two images: no threshold


def test_no_threshold_flags_nothing() -> None:
    assert is_out_of_set(np.array([0.1, 0.9]), None) == [None, None]
    assert is_out_of_set(np.array([0.1, 0.9]), 0.5) == [True, False]


def test_a_version_trained_before_the_evidence_has_none(tmp_path: Path) -> None:
    old = {"unknown": {"threshold": 0.6}, "classes": [], "head": {}}
    source = TrainedSource(None, "sha", tmp_path, None, Version("old", 1, tmp_path, old), tmp_path)  # type: ignore[arg-type]
    assert source.out_of_set_below is None and source.in_set_evidence() is None and source.unknown_below == 0.6
    new = {**old, "out_of_set": {"threshold": 0.4, "file": EVIDENCE_FILE}}
    fit_evidence(np.ones((3, 4), np.float32) + np.eye(3, 4, dtype=np.float32)).save(tmp_path / EVIDENCE_FILE)
    source = TrainedSource(None, "sha", tmp_path, None, Version("new", 1, tmp_path, new), tmp_path)  # type: ignore[arg-type]
    evidence = source.in_set_evidence()
    assert source.out_of_set_below == 0.4 and evidence is not None and evidence.references.shape == (3, 4)
