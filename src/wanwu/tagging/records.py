"""What a tag record holds, and what a run needs to know about the records already written.

One record per image, every key always present (``null`` where it does not apply)::

    {"path": "2023/beach.jpg", "sha256": "…", "bytes": 2345678, "width": 4032, "height": 3024,
     "model": "efficientnet_lite0", "weights_sha256": "…", "precision": "fp32", "engine": "openvino",
     "wanwu_version": "0.1.0", "predictions": [{"index": 978, "label": "seashore", "label_zh": "海滨",
     "score": 0.91}, …], "categories": [{"id": "landscape", "label": "landscape", "label_zh": "自然景观",
     "score": 0.97, "parent": null}, …], "unknown": false, "error": null}

``categories``: the everyday categories scoring at least 0.05, highest first (``wanwu.categories``; ``[]`` for a
trained model, which keeps its own classes); ``unknown``: no confident answer at any level (a trained model: its own
measured threshold; ``null`` where the model has no rule). Records written before categories existed lack both keys.
A failed image has ``"predictions": null``, ``"categories": null``, ``"unknown": null`` and ``"error": {"code": …,
"message": …}``. A record is
*current* for a run when its model, weights and precision are the run's; the last record of a path
wins (a re-run re-tags failed and changed images, then drops the records they replace).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from wanwu.categories import Category, headline

FIELDS = (
    "path", "sha256", "bytes", "width", "height", "model", "weights_sha256", "precision", "engine", "wanwu_version",
    "predictions", "categories", "unknown", "error",
)
META_FIELDS = FIELDS[:FIELDS.index("predictions")]  # one value each; the rest are lists, flags or the error
SCORE_DIGITS = 6


@dataclass(frozen=True)
class ModelInfo:
    """What made the predictions; model, weights and precision decide whether a record is current."""

    model: str
    weights_sha256: str
    precision: str
    engine: str
    wanwu_version: str

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.model, self.weights_sha256, self.precision)

    def matches(self, record: dict) -> bool:
        """Whether ``record`` is current for this run: the same model and weights, and precision (a run whose
        precision is ``auto``, resolved per node on Ray, takes records of any precision of these weights)."""
        return current(record, self.key)

    def as_dict(self) -> dict:
        return {"model": self.model, "weights_sha256": self.weights_sha256, "precision": self.precision,
                "engine": self.engine, "wanwu_version": self.wanwu_version}


def make_record(
    info: ModelInfo, rel: str, sha256: str | None, size: int | None, width: int | None = None, height: int | None = None,
    predictions: list[dict] | None = None, error: tuple[str, str] | None = None,
    categories: list[dict] | None = None, unknown: bool | None = None,
) -> dict:
    return {
        "path": rel, "sha256": sha256, "bytes": size, "width": width, "height": height, **info.as_dict(),
        "predictions": None if error else (predictions or []),
        "categories": None if error else (categories or []),
        "unknown": None if error else unknown,
        "error": {"code": error[0], "message": error[1]} if error else None,
    }


def top_category(record: dict) -> dict:
    """The category a person would answer with (``wanwu.categories.headline``), as a record entry; ``{}`` if none."""
    entries = record.get("categories") or []
    cats = [Category(c["id"], c.get("label", ""), c.get("label_zh", ""), c["score"], c.get("parent")) for c in entries]
    best = headline(cats)
    return next(c for c in entries if c["id"] == best.id) if best else {}


def current(record: dict, key: tuple[str, str, str]) -> bool:
    model, weights, precision = key
    same = record["model"] == model and record["weights_sha256"] == weights
    return same and (precision == "auto" or record["precision"] == precision)


def record_key(record: dict) -> tuple:
    """Records with the same key describe the same image under the same model: the last one wins."""
    return (record["path"], record["model"], record["weights_sha256"], record["precision"])


class Existing:
    """The current records already in the output: which images to skip, whose predictions to reuse."""

    def __init__(self, key: tuple[str, str, str]) -> None:
        self.key = key
        self.records = 0
        self._done: dict[str, str] = {}  # path -> sha256 of its current, successful record
        self._failed: set[str] = set()  # paths whose current record is an error (re-tried)
        self._records: dict[str, dict] = {}  # sha256 -> its current successful record (predictions, what made them)
        self._by_size: dict[int, set[str]] = defaultdict(set)

    def add(self, record: dict) -> None:
        self.records += 1
        if not current(record, self.key):
            return
        path, sha = record["path"], record["sha256"]
        if record.get("error") or sha is None or record.get("predictions") is None:
            self._done.pop(path, None)
            self._failed.add(path)
            return
        self._failed.discard(path)
        self._done[path] = sha
        self._records[sha] = record
        self._by_size[int(record["bytes"])].add(sha)

    def known(self, size: int | None) -> frozenset[str]:
        """Hashes already tagged among files of this size: a file with one of them need not be decoded."""
        return frozenset(self._by_size.get(size, ())) if size is not None else frozenset()

    def is_done(self, rel: str, sha256: str) -> bool:
        return self._done.get(rel) == sha256

    def has_record(self, rel: str) -> bool:
        return rel in self._done or rel in self._failed

    def predictions(self, sha256: str) -> list[dict] | None:
        record = self._records.get(sha256)
        return None if record is None else record["predictions"]

    def record(self, sha256: str) -> dict:
        return self._records[sha256]
