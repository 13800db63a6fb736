"""What a tag record holds, and what a run needs to know about the records already written.

One record per image, every key always present (``null`` where it does not apply)::

    {"path": "2023/beach.jpg", "sha256": "…", "bytes": 2345678, "width": 4032, "height": 3024,
     "model": "efficientnet_lite0", "weights_sha256": "…", "precision": "fp32", "engine": "openvino",
     "wanwu_version": "0.1.0", "predictions": [{"index": 978, "label": "seashore", "label_zh": "海滨",
     "score": 0.91}, …], "categories": [{"id": "landscape", "label": "landscape", "label_zh": "自然景观",
     "score": 0.97, "parent": null}, …], "unknown": false, "out_of_set": null, "error": null}

``categories``: the everyday categories scoring at least 0.05, highest first (``wanwu.categories``; ``[]`` for a
trained model, which keeps its own classes); ``unknown``: no confident answer at any level (a trained model: its own
measured threshold; ``null`` where the model has no rule). Records written before categories existed lack both keys.
``out_of_set``: a trained version with out-of-set evidence says whether the image is like none of its training images
(then ``unknown`` is true too); ``null`` for other models, and absent from records an older wanwu wrote.
A failed image has ``"predictions": null``, ``"categories": null``, ``"unknown": null`` and ``"error": {"code": …,
"message": …}``. ``categories_version``: the version of the category table the categories came from (``null`` for a
trained model; absent from records an older wanwu wrote).

The output holds one record per image: the last record of a path wins, whatever made it. A record is *current* for
a run (the image is skipped) when its model, weights and category table are the run's, and its precision too unless
the run asked for ``auto`` (which takes any precision of these weights); otherwise the image is tagged again and its
new record replaces the old one (dropped when the run ends: temporary file, fsync, rename).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from wanwu.categories import Category, applies_to, category_table, headline

if TYPE_CHECKING:
    from wanwu.sources import ModelSource

FIELDS = (
    "path", "sha256", "bytes", "width", "height", "model", "weights_sha256", "precision", "engine", "wanwu_version",
    "predictions", "categories", "unknown", "out_of_set", "error", "categories_version",
)
META_FIELDS = FIELDS[:FIELDS.index("predictions")]  # one value each; the rest are lists, flags or the error
SCORE_DIGITS = 6
AUTO = "auto"  # a requested precision: any precision of the same weights is current
RunKey = tuple[str, str, str, "str | None"]  # (model, weights_sha256, precision or auto, categories_version)


def categories_version(source: ModelSource) -> str | None:
    """The category table's version for a model with everyday categories (``wanwu.categories.applies_to``), else None."""
    return category_table().version if applies_to(source.labels, source.unknown_below) else None


@dataclass(frozen=True)
class ModelInfo:
    """What made the predictions; model, weights, category table and precision decide whether a record is current."""

    model: str
    weights_sha256: str
    precision: str
    engine: str
    wanwu_version: str
    categories_version: str | None = None  # the category table's version (``categories_version(source)``)

    @property
    def key(self) -> RunKey:
        return (self.model, self.weights_sha256, self.precision, self.categories_version)

    def key_for(self, requested: str) -> RunKey:
        """The run's key when ``requested`` precision was asked for: ``auto`` takes records of any precision."""
        return (self.model, self.weights_sha256, AUTO if requested == AUTO else self.precision, self.categories_version)

    def matches(self, record: dict) -> bool:
        """Whether ``record`` is current for this run: the same model, weights and table, and precision (a run whose
        precision is ``auto``, resolved per node on Ray, takes records of any precision of these weights)."""
        return current(record, self.key)

    def as_dict(self) -> dict:
        return {"model": self.model, "weights_sha256": self.weights_sha256, "precision": self.precision,
                "engine": self.engine, "wanwu_version": self.wanwu_version}


def make_record(
    info: ModelInfo, rel: str, sha256: str | None, size: int | None, width: int | None = None, height: int | None = None,
    predictions: list[dict] | None = None, error: tuple[str, str] | None = None,
    categories: list[dict] | None = None, unknown: bool | None = None, out_of_set: bool | None = None,
) -> dict:
    return {
        "path": rel, "sha256": sha256, "bytes": size, "width": width, "height": height, **info.as_dict(),
        "predictions": None if error else (predictions or []),
        "categories": None if error else (categories or []),
        "unknown": None if error else unknown,
        "out_of_set": None if error else out_of_set,
        "error": {"code": error[0], "message": error[1]} if error else None,
        "categories_version": info.categories_version,
    }


def top_category(record: dict) -> dict:
    """The category a person would answer with (``wanwu.categories.headline``), as a record entry; ``{}`` if none."""
    entries = record.get("categories") or []
    cats = [Category(c["id"], c.get("label", ""), c.get("label_zh", ""), c["score"], c.get("parent")) for c in entries]
    best = headline(cats)
    return next(c for c in entries if c["id"] == best.id) if best else {}


def current(record: dict, key: RunKey) -> bool:
    """Whether ``record`` was made by the run ``key`` describes (a record without ``categories_version``, written by
    an older wanwu, is current only for a model without categories)."""
    model, weights, precision, table = key
    same = record["model"] == model and record["weights_sha256"] == weights and record.get("categories_version") == table
    return same and (precision == AUTO or record["precision"] == precision)


def record_key(record: dict) -> str:
    """Records with the same key describe the same image: the last one wins, whatever model made it."""
    return record["path"]


class Existing:
    """What the output already holds: which images to skip (their last record is current), whose predictions to
    reuse (current records, by content hash), and which paths have a record a new one replaces."""

    def __init__(self, key: RunKey) -> None:
        self.key = key
        self.records = 0
        self.duplicates = False  # some path has more than one record (a run stopped before compacting)
        self._paths: set[str] = set()  # every path with a record
        self._done: dict[str, str] = {}  # path -> sha256 of its last record, if current and successful
        self._records: dict[str, dict] = {}  # sha256 -> its current successful record (predictions, what made them)
        self._by_size: dict[int, set[str]] = defaultdict(set)

    def add(self, record: dict) -> None:
        self.records += 1
        path, sha = record["path"], record["sha256"]
        self.duplicates |= path in self._paths
        self._paths.add(path)
        self._done.pop(path, None)  # the last record of a path decides: another model's, or an error, is tagged again
        if not current(record, self.key) or record.get("error") or sha is None or record.get("predictions") is None:
            return
        self._done[path] = sha
        self._records[sha] = record
        self._by_size[int(record["bytes"])].add(sha)

    def known(self, size: int | None) -> frozenset[str]:
        """Hashes already tagged among files of this size: a file with one of them need not be decoded."""
        return frozenset(self._by_size.get(size, ())) if size is not None else frozenset()

    def is_done(self, rel: str, sha256: str) -> bool:
        return self._done.get(rel) == sha256

    def has_record(self, rel: str) -> bool:
        return rel in self._paths

    def predictions(self, sha256: str) -> list[dict] | None:
        record = self._records.get(sha256)
        return None if record is None else record["predictions"]

    def record(self, sha256: str) -> dict:
        return self._records[sha256]
