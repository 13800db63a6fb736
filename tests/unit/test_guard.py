"""The bf16 guard: how its margin is chosen from paired logits, and which images it re-runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from wanwu.precision.bf16 import bf16_guards, guarded_report, latest_guard
from wanwu.precision.guard import GuardedEngine, choose_margin, top_margin


def _pair(margins: list[float], flipped: list[bool]) -> tuple[np.ndarray, np.ndarray]:
    """fp32 and "bf16" logits over 4 classes: row i has bf16 gap ``margins[i]``; flipped rows disagree on top-1."""
    reference, fast = np.zeros((len(margins), 4), np.float32), np.zeros((len(margins), 4), np.float32)
    for i, (m, flip) in enumerate(zip(margins, flipped, strict=True)):
        fast[i, :2] = (1.0 + m, 1.0)
        reference[i, :2] = (1.0, 1.0 + m) if flip else (1.0 + m, 1.0)
    return reference, fast


def test_top_margin_is_the_gap_between_the_two_largest() -> None:
    assert top_margin(np.array([[0.0, 3.0, 1.0, 2.5]], np.float32)).tolist() == [0.5]


def test_margin_covers_every_flip_except_the_widest_the_target_allows() -> None:
    margins = [0.05, 0.2, 0.4, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0]
    reference, fast = _pair(margins, [True, True, True] + [False] * 7)
    everything = choose_margin(reference, fast, target=1.0)
    assert 0.4 < everything < 0.41  # just above the widest flip: strictly-below re-runs it
    assert guarded_report(reference, fast, everything, None)["top1_agreement"] == 1.0
    one_left = choose_margin(reference, fast, target=0.9)  # one of ten may stay wrong: the widest one
    assert 0.2 < one_left < 0.21
    report = guarded_report(reference, fast, one_left, None)
    assert report["top1_agreement"] == 0.9 and report["top1_agreement_unguarded"] == 0.7
    assert report["rechecked_fraction"] == 0.2 and report["disagreements"] == [2]
    assert choose_margin(reference, fast, target=0.7) == 0.0  # already met: no guard


class _Fixed:
    """An engine whose answer per image is set in advance (keyed by the image's first pixel)."""

    def __init__(self, table: dict[int, list[float]], precision: str) -> None:
        self.table, self.precision, self.name, self.threads, self.batches = table, precision, "fake", 1, []

    def run(self, batch: np.ndarray) -> np.ndarray:
        self.batches.append(len(batch))
        return np.array([self.table[int(image.flat[0])] for image in batch], np.float32)

    def describe(self) -> dict:
        return {"engine": self.name, "precision": self.precision, "threads": self.threads}

    def replica(self) -> _Fixed:
        return _Fixed(self.table, self.precision)


def test_guarded_engine_reruns_only_near_ties_one_at_a_time() -> None:
    fast = _Fixed({0: [5.0, 1.0], 1: [2.0, 1.95], 2: [0.0, 3.0], 3: [1.0, 1.1]}, "bf16")
    exact = _Fixed({1: [1.9, 2.0], 3: [1.2, 1.0]}, "fp32")
    guarded = GuardedEngine(fast, exact, margin=0.2)
    batch = np.arange(4, dtype=np.uint8).reshape(4, 1, 1, 1).repeat(3, axis=3)
    logits = guarded.run(batch)
    assert logits.argmax(axis=1).tolist() == [0, 1, 1, 0]  # rows 1 and 3 answered by fp32, which flips both
    assert np.allclose(logits[[0, 2]], [[5.0, 1.0], [0.0, 3.0]])
    assert exact.batches == [1, 1] and guarded.precision == "bf16"
    twin = guarded.replica()
    twin.run(batch[:1])
    assert guarded.counts() == (5, 2)  # one tally across replicas
    assert twin.describe()["bf16_guard"] == {"margin": 0.2, "images": 5, "rechecked_in_fp32": 2}


def test_latest_guard_is_the_newest_valid_calibration(tmp_path: Path) -> None:
    def write(name: str, **calibration: object) -> None:
        (tmp_path / name).mkdir()
        (tmp_path / name / "calibration.json").write_text(json.dumps(calibration))

    assert latest_guard(tmp_path) is None
    write("bf16-guard-old", margin=0.3, created=1)
    write("bf16-guard-new", margin=0.1, created=2)
    write("bf16-guard-bad", margin=-1, created=3)
    write("bf16-guard-nan", margin="nan", created=4)
    (tmp_path / "bf16-guard-torn").mkdir()
    (tmp_path / "bf16-guard-torn" / "calibration.json").write_text("{")
    assert [g.path.name for g in bf16_guards(tmp_path)] == ["bf16-guard-old", "bf16-guard-new"]
    assert latest_guard(tmp_path).margin == 0.1
