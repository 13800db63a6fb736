"""bf16 with an fp32 second look at near-ties.

bf16 keeps 8 bits of mantissa, so it moves every logit a little (EfficientNet-Lite0: 0.036 on
average). That only changes an answer when the top two classes are closer than the error, so the
guard runs the batch in bf16 and re-runs in fp32 only the images whose bf16 top-1/top-2 gap is
below ``margin``. The margin belongs to the weights: ``wanwu quantize MODEL --precision bf16
--calib DIR`` measures it on the user's images (``choose_margin``) and stores it in the bundle as
``bf16-guard-<calib_hash[:12]>/`` (``calibration.json`` + ``report.json``, like an INT8 artifact).
Without one, bf16 runs unguarded.
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from wanwu.engines import Engine

GUARD_PREFIX = "bf16-guard-"
CALIBRATION = "calibration.json"
REPORT = "report.json"


@dataclass(frozen=True)
class Bf16Guard:
    path: Path
    margin: float
    calibration: dict
    report: dict | None
    reused: bool = False


def bf16_guards(bundle: Path) -> list[Bf16Guard]:
    """Complete guard calibrations in a bundle, oldest first."""
    found = []
    for manifest in bundle.glob(f"{GUARD_PREFIX}*/{CALIBRATION}"):
        try:
            calibration = json.loads(manifest.read_text())
            margin = float(calibration["margin"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if not math.isfinite(margin) or margin < 0:
            continue
        report_path = manifest.parent / REPORT
        report = json.loads(report_path.read_text()) if report_path.is_file() else None
        found.append(Bf16Guard(manifest.parent, margin, calibration, report))
    return sorted(found, key=lambda g: (g.calibration.get("created", 0), g.path.name))


def latest_guard(bundle: Path) -> Bf16Guard | None:
    guards = bf16_guards(bundle)
    return guards[-1] if guards else None


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


class GuardedEngine:
    """``fast`` (bf16) for every image, ``exact`` (fp32) again for those with a bf16 gap below ``margin``."""

    def __init__(self, fast: Engine, exact: Engine, margin: float, artifact: Path | None = None) -> None:
        self.fast, self.exact, self.margin, self.artifact = fast, exact, margin, artifact
        self.name, self.precision, self.threads = fast.name, fast.precision, fast.threads
        self.streams = getattr(fast, "streams", 1)  # workers share both compiled models through ``sibling``
        self._lock = threading.Lock()
        self._counts = {"images": 0, "rechecked": 0}

    def counts(self) -> tuple[int, int]:
        """(images run, images re-run in fp32) since load, over this engine and its siblings."""
        with self._lock:
            return self._counts["images"], self._counts["rechecked"]

    def sibling(self) -> GuardedEngine:
        twin = GuardedEngine(self.fast.sibling(), self.exact.sibling(), self.margin, self.artifact)  # type: ignore[attr-defined]
        twin._lock, twin._counts = self._lock, self._counts  # one tally for the whole service
        return twin

    def run(self, batch: np.ndarray) -> np.ndarray:
        logits = self.fast.run(batch)
        rows = np.flatnonzero(top_margin(logits) < self.margin)
        # one image at a time: near-ties are a few percent of images, and a single batch shape
        # keeps the fp32 model's per-shape kernels and buffers to one set
        for row in rows:
            logits[row] = self.exact.run(batch[row : row + 1])[0]
        with self._lock:
            self._counts["images"] += len(batch)
            self._counts["rechecked"] += len(rows)
        return logits
