"""bf16 with an fp32 second look at near-ties.

bf16 keeps 8 bits of mantissa, so it moves every logit a little (EfficientNet-Lite0: 0.036 on
average). That only changes an answer when the top two classes are closer than the error, so the
guard runs the batch in bf16 and re-runs in fp32 only the images whose bf16 top-1/top-2 gap is
below ``margin``. The margin belongs to the weights: ``wanwu quantize MODEL --precision bf16
--calib DIR`` measures it on the user's images (``choose_margin``, see ``wanwu.precision.bf16``).
"""

from __future__ import annotations

import math
import threading
from pathlib import Path

import numpy as np

from wanwu.engines import Engine


def top_margin(logits: np.ndarray) -> np.ndarray:
    """Per row: the largest logit minus the second largest."""
    top2 = np.partition(logits, -2, axis=1)[:, -2:]
    return top2[:, 1] - top2[:, 0]


def choose_margin(reference: np.ndarray, fast: np.ndarray, target: float) -> float:
    """The smallest margin at which the guarded top-1 agrees with ``reference`` on ≥ ``target`` of the rows.

    Rows whose ``fast`` margin is below the returned value are re-run exactly (so they agree);
    the rest keep the fast answer. 0.0 when the fast answers already meet the target.
    """
    n = len(reference)
    disagree = np.sort(top_margin(fast)[reference.argmax(axis=1) != fast.argmax(axis=1)])[::-1]
    allowed = math.floor((1.0 - target) * n + 1e-9)
    if len(disagree) <= allowed:
        return 0.0
    # cover every disagreeing row except the ``allowed`` widest ones: strictly above the next one
    return float(np.nextafter(np.float32(disagree[allowed]), np.float32(np.inf)))


class _Tally:
    """Images run and re-run in fp32, over an engine and its replicas (one count for the whole service)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.images = self.rechecked = 0

    def add(self, images: int, rechecked: int) -> None:
        with self.lock:
            self.images += images
            self.rechecked += rechecked


class GuardedEngine:
    """``fast`` (bf16) for every image, ``exact`` (fp32) again for those with a bf16 gap below ``margin``."""

    def __init__(self, fast: Engine, exact: Engine, margin: float, artifact: Path | None = None, tally: _Tally | None = None):
        self.fast, self.exact, self.margin, self.artifact = fast, exact, margin, artifact
        self.name, self.precision, self.threads = fast.name, fast.precision, fast.threads
        self._tally = tally or _Tally()

    def counts(self) -> tuple[int, int]:
        """(images run, images re-run in fp32) since load, over this engine and its replicas."""
        with self._tally.lock:
            return self._tally.images, self._tally.rechecked

    def describe(self) -> dict:
        images, rechecked = self.counts()
        return {**self.fast.describe(), "bf16_guard": {"margin": self.margin, "images": images, "rechecked_in_fp32": rechecked}}

    def replica(self) -> GuardedEngine:
        return GuardedEngine(self.fast.replica(), self.exact.replica(), self.margin, self.artifact, self._tally)

    def run(self, batch: np.ndarray) -> np.ndarray:
        logits = self.fast.run(batch)
        rows = np.flatnonzero(top_margin(logits) < self.margin)
        # one image at a time: near-ties are a few percent of images, and a single batch shape
        # keeps the fp32 model's per-shape kernels and buffers to one set
        for row in rows:
            logits[row] = self.exact.run(batch[row : row + 1])[0]
        self._tally.add(len(batch), len(rows))
        return logits
