"""Everyday categories over ImageNet-1k's 1,000 classes, with exact scores and an honest "not sure" (issue 24).

A category's score is the sum of the softmax probabilities of its classes over the full 1,000-vector, and a parent's
score includes its children's: ``probabilities @ membership``, with a 0/1 (classes, categories) matrix, so a batch
costs one small matrix product. The table (``wanwu/labels/categories.json``) is generated from WordNet 3.0 by
``tools/make_categories.py`` and reviewed in ``tools/categories.toml``; nothing of WordNet is needed here.

    from wanwu.categories import categorize, is_unknown, summary
    cats = categorize(probs)          # [Category(id="cat", label="cat", label_zh="猫", score=0.97, parent="feline"), ...]
    summary(cats, predictions, "both")  # "猫 cat 97 % · 可能是埃及猫 Egyptian cat 42 %"

Knows nothing of HTTP or the CLI; ``wanwu.classifier`` puts categories and ``unknown`` on every result.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache, cached_property
from importlib import resources
from typing import TypeVar

import numpy as np

from wanwu.labels import LabelSet, get_labels
from wanwu.ranking import Prediction, label_fields, rounded

TABLE_FILE = "categories.json"
MIN_SCORE = 0.05  # categories scoring less are not listed
T = TypeVar("T")
HEADLINE_SCORE = 0.5  # the summary names the most specific category at least this sure

# The "not sure" rule, calibrated in docs/categories.md on labelled photos and generated object-less images: an
# answer is unknown when the probabilities are spread out (entropy at least UNKNOWN_ENTROPY nats of ln 1000 = 6.9)
# and nothing stands out at any level: the top class below UNKNOWN_CLASS_BELOW and every category below the top
# level (dog, car, fruit; not animal or vehicle, which gather hundreds of classes) below UNKNOWN_CATEGORY_BELOW.
UNKNOWN_ENTROPY = 4.0
UNKNOWN_CLASS_BELOW = 0.3
UNKNOWN_CATEGORY_BELOW = 0.8


@dataclass(frozen=True)
class Category:
    id: str
    label: str
    label_zh: str
    score: float
    parent: str | None

    def as_dict(self, lang: str = "both", digits: int | None = None) -> dict:
        """The JSON shape: ``id``, ``label`` (en/both), ``label_zh`` (zh/both), ``score``, ``parent``."""
        return {"id": self.id, **label_fields(self.label, self.label_zh, lang), "score": rounded(self.score, digits),
                "parent": self.parent}


@dataclass(frozen=True, eq=False)
class CategoryTable:
    version: str  # a hash of the table's content: tag records name the table their categories came from
    ids: tuple[str, ...]
    english: tuple[str, ...]
    chinese: tuple[str, ...]
    parents: tuple[str | None, ...]
    classes: tuple[str | None, ...]  # per class index: its most specific category, or None (left out)
    membership: np.ndarray  # (classes, categories) 0/1: class i counts toward category j and each of j's ancestors
    depth: np.ndarray  # per category: 0 for a top-level one

    def scores(self, probabilities: np.ndarray) -> np.ndarray:
        """``(..., 1000)`` probabilities -> ``(..., categories)`` scores (exact sums, in [0, 1])."""
        return np.asarray(probabilities, dtype=np.float64) @ self.membership

    def own_category(self, probabilities: np.ndarray) -> np.ndarray:
        """Per image, the index of the category whose own classes (not its children's) hold the most probability:
        the everyday answer at the most specific level, for category top-1 accuracy."""
        probs = np.asarray(probabilities, dtype=np.float64)
        return (probs @ self.assignment).argmax(axis=-1)

    @cached_property
    def depth_of(self) -> dict[str, int]:
        return {cid: int(d) for cid, d in zip(self.ids, self.depth, strict=True)}

    @cached_property
    def assignment(self) -> np.ndarray:
        """(classes, categories) 0/1: class i's own (most specific) category only."""
        index = {cid: j for j, cid in enumerate(self.ids)}
        out = np.zeros_like(self.membership)
        for i, cid in enumerate(self.classes):
            if cid is not None:
                out[i, index[cid]] = 1.0
        return out

    def category_index(self, class_index: int) -> int | None:
        cid = self.classes[class_index]
        return None if cid is None else self.ids.index(cid)

    def category(self, j: int, score: float) -> Category:
        return Category(self.ids[j], self.english[j], self.chinese[j], float(score), self.parents[j])


@cache
def category_table() -> CategoryTable:
    """The shipped table, checked: parents known and acyclic, both languages present, one entry per class."""
    data = json.loads(resources.files("wanwu.labels").joinpath(TABLE_FILE).read_text(encoding="utf-8"))
    return build_table(data)


def build_table(data: dict) -> CategoryTable:
    cats = data["categories"]
    ids = tuple(c["id"] for c in cats)
    index = {cid: j for j, cid in enumerate(ids)}
    if len(index) != len(ids) or any(not c.get("en") or not c.get("zh") for c in cats):
        raise RuntimeError(f"{TABLE_FILE} is damaged: duplicate ids or a category without en/zh names")
    chains = [_ancestors(j, cats, index) for j in range(len(cats))]
    membership = np.zeros((len(data["classes"]), len(ids)), np.float64)
    for i, cid in enumerate(data["classes"]):
        if cid is not None:
            membership[i, chains[index[cid]]] = 1.0
    depth = np.array([len(chain) - 1 for chain in chains])
    return CategoryTable(data["version"], ids, tuple(c["en"] for c in cats), tuple(c["zh"] for c in cats),
                         tuple(c.get("parent") for c in cats), tuple(data["classes"]), membership, depth)


def _ancestors(j: int, cats: list[dict], index: dict[str, int]) -> list[int]:
    """``j`` and every category above it; a cycle or an unknown parent is a damaged table."""
    chain = [j]
    while (parent := cats[chain[-1]].get("parent")) is not None:
        if parent not in index or index[parent] in chain:
            raise RuntimeError(f"{TABLE_FILE} is damaged: {cats[j]['id']} has a cycle or an unknown parent {parent!r}")
        chain.append(index[parent])
    return chain


def applies_to(labels: LabelSet, unknown_below: float | None) -> bool:
    """Whether a model's answers get everyday categories: its classes are ImageNet-1k's and it has no ``unknown``
    threshold of its own (a trained model keeps its own classes and its own rule)."""
    return unknown_below is None and labels.wnids == get_labels().wnids


def categorize(probabilities: np.ndarray, min_score: float = MIN_SCORE, table: CategoryTable | None = None) -> list[Category]:
    """One image's 1,000 probabilities -> each category scoring at least ``min_score``, highest first (ties: the
    more specific one first, then table order)."""
    return categorize_batch(np.asarray(probabilities)[None], min_score, table)[0]


def categorize_batch(probabilities: np.ndarray, min_score: float = MIN_SCORE,
                     table: CategoryTable | None = None) -> list[list[Category]]:
    table = table or category_table()
    out = []
    for row in table.scores(probabilities):
        keep = np.flatnonzero(row >= min_score)
        order = sorted(keep, key=lambda j: (-row[j], -table.depth[j], j))
        out.append([table.category(int(j), row[j]) for j in order])
    return out


def unknown_batch(probabilities: np.ndarray, table: CategoryTable | None = None) -> list[bool]:
    """Per image of ``(N, 1000)`` probabilities: no confident answer at any level (see the constants above)."""
    table = table or category_table()
    probs = np.asarray(probabilities, dtype=np.float64)
    entropy = -(probs * np.log(np.clip(probs, 1e-30, None))).sum(axis=1)
    specific = table.scores(probs)[:, table.depth > 0]
    best_category = specific.max(axis=1) if specific.shape[1] else np.zeros(len(probs))
    spread = entropy >= UNKNOWN_ENTROPY
    unsure = (probs.max(axis=1) < UNKNOWN_CLASS_BELOW) & (best_category < UNKNOWN_CATEGORY_BELOW)
    return [bool(u) for u in spread & unsure]


def is_unknown(probabilities: np.ndarray, table: CategoryTable | None = None) -> bool:
    return unknown_batch(np.asarray(probabilities)[None], table)[0]


class Result(list):
    """One image's answer: its top classes (a ``list`` of ``Prediction``, as ``predict`` always returned) with
    ``categories`` (everyday categories scoring at least 0.05, highest first; empty for a trained model, which keeps
    its own classes), ``unknown`` (True: no confident answer at any level; a trained model uses its own measured
    threshold; None: a model with no rule) and ``summary(lang)``."""

    def __init__(self, predictions: Sequence[Prediction], categories: Sequence[Category] = (),
                 unknown: bool | None = None, out_of_set: bool | None = None) -> None:
        super().__init__(predictions)
        self.categories = list(categories)
        self.unknown = unknown
        self.out_of_set = out_of_set  # a trained version: like none of its training images (then ``unknown`` too)

    def summary(self, lang: str = "both") -> str:
        return summary(self.categories, self, lang, bool(self.unknown))

    def as_dict(self, lang: str = "both", digits: int | None = None) -> dict:
        """The JSON shape: ``summary``, ``unknown``, ``categories``, ``predictions``."""
        evidence = {} if self.out_of_set is None else {"out_of_set": self.out_of_set}
        return {"summary": self.summary(lang), "unknown": self.unknown, **evidence,
                "categories": [c.as_dict(lang, digits) for c in self.categories],
                "predictions": [p.as_dict(lang, digits) for p in self]}

    def __repr__(self) -> str:
        return f"Result({list.__repr__(self)}, categories={self.categories!r}, unknown={self.unknown!r})"


def headline(categories: Sequence[Category], table: CategoryTable | None = None) -> Category | None:
    """The category a person would answer with: the most specific one scoring at least ``HEADLINE_SCORE``,
    else the best one."""
    return most_specific(categories, lambda c: (c.id, c.score), table)


def most_specific(items: Sequence[T], id_score: Callable[[T], tuple[str, float]],
                  table: CategoryTable | None = None) -> T | None:
    """``headline``'s rule over any listing of categories (``id_score`` reads an item's id and score): the page
    applies it to the JSON's dicts. A listed category's ancestors are listed too (a parent scores at least its
    child), so the table's depth orders them as the listing's own parents would."""
    if not items:
        return None
    depth = (table or category_table()).depth_of
    sure = [c for c in items if id_score(c)[1] >= HEADLINE_SCORE]
    return max(sure, key=lambda c: (depth.get(id_score(c)[0], 0), id_score(c)[1])) if sure else items[0]


def percent(score: float) -> str:
    value = score * 100
    return f"{value:.0f} %" if value >= 1 or value == 0 else f"{value:.1f} %"


def _name(english: str, chinese: str, lang: str) -> str:
    if english == chinese:  # a trained class named once ("mammals", not "mammals mammals")
        return english
    return {"en": english, "zh": chinese}.get(lang, f"{chinese} {english}")


def summary(categories: Sequence[Category], predictions: Sequence[Prediction], lang: str = "both",
            unknown: bool = False) -> str:
    """One line: the headline category, then the top class as a "maybe", e.g. "猫 cat 97 % · 可能是埃及猫 Egyptian
    cat 42 %"; "不确定 not sure · …" when ``unknown``. ``lang``: zh, en or both."""
    maybe = "maybe " if lang == "en" else "可能是"
    parts = []
    if unknown:
        parts.append(_name("not sure", "不确定", lang))
    elif (top := headline(categories)) is not None:
        parts.append(f"{_name(top.label, top.label_zh, lang)} {percent(top.score)}")
    if predictions:
        best = predictions[0]
        name = _name(best.label, best.label_zh, lang)
        joined = f"{maybe} {name}" if maybe == "可能是" and name[:1].isascii() else f"{maybe}{name}"  # 可能是 mammals
        parts.append(f"{joined} {percent(best.score)}" if parts else f"{name} {percent(best.score)}")
    return " · ".join(parts) if parts else _name("not sure", "不确定", lang)
