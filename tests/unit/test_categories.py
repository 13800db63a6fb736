"""Everyday categories (issue 24): the shipped table is whole and reproducible, and scores are exact sums."""

from __future__ import annotations

import importlib.util
import json
import tomllib
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import missing
from wanwu.categories import (
    Category,
    build_table,
    categorize,
    categorize_batch,
    category_table,
    headline,
    is_unknown,
    summary,
    unknown_batch,
)
from wanwu.labels import get_labels
from wanwu.ranking import Prediction

REPO = Path(__file__).resolve().parents[2]
REQUIRED = (
    "animal mammal dog cat bird fish insect reptile amphibian food fruit vegetable dish drink plant flower vehicle car "
    "truck bus two_wheeler boat aircraft train building furniture clothing footwear bag instrument electronics "
    "computer phone tool kitchenware container sports toy sign person"
).split()


def _overrides() -> dict:
    return tomllib.loads((REPO / "tools" / "categories.toml").read_text(encoding="utf-8"))


def test_every_class_is_placed_or_left_out_on_purpose() -> None:
    table = category_table()
    wnids = get_labels().wnids
    assert len(table.classes) == 1000
    left_out = {wnids[i] for i, c in enumerate(table.classes) if c is None}
    assert left_out == set(_overrides()["leave_out"])
    assert set(filter(None, table.classes)) <= set(table.ids)


def test_the_tree_covers_the_everyday_kinds_in_both_languages() -> None:
    table = category_table()
    assert len(table.ids) >= 40
    assert set(REQUIRED) <= set(table.ids)
    assert all(en.strip() for en in table.english) and all(zh.strip() for zh in table.chinese)
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in zh) for zh in table.chinese)
    assert table.english[table.ids.index("cat")] == "cat" and table.chinese[table.ids.index("cat")] == "猫"
    # every category gathers at least one class, directly or through a child
    assert (table.membership.sum(axis=0) > 0).all()


def test_parents_are_known_and_acyclic() -> None:
    table = category_table()
    for parent in filter(None, table.parents):
        assert parent in table.ids
    data = json.loads((REPO / "src" / "wanwu" / "labels" / "categories.json").read_text(encoding="utf-8"))
    data["categories"][0]["parent"] = data["categories"][1]["id"]  # animal <- mammal <- animal
    with pytest.raises(RuntimeError, match="cycle"):
        build_table(data)


def test_the_table_carries_a_version_and_wordnets_notice() -> None:
    data = json.loads((REPO / "src" / "wanwu" / "labels" / "categories.json").read_text(encoding="utf-8"))
    assert len(data["version"]) == 12 and data["version"] == category_table().version
    assert "WordNet 3.0 Copyright 2006 by Princeton University" in data["notice"]
    assert "Princeton University" in (REPO / "src" / "wanwu" / "labels" / "WORDNET_LICENSE.txt").read_text()


def test_regenerating_gives_the_same_table() -> None:
    wordnet = Path("/usr/share/wordnet/data.noun")
    if not wordnet.exists():
        missing("WordNet 3.0 is not installed (/usr/share/wordnet/data.noun): apt-get install wordnet-base")
    spec = importlib.util.spec_from_file_location("make_categories", REPO / "tools" / "make_categories.py")
    assert spec and spec.loader
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    text = tool.render(tool.generate(tool.read_hypernyms(wordnet), _overrides()))
    assert text == (REPO / "src" / "wanwu" / "labels" / "categories.json").read_text(encoding="utf-8")


def _probs(**by_label: float) -> np.ndarray:
    labels = get_labels()
    probs = np.zeros(1000)
    rest = 1.0 - sum(by_label.values())
    probs[:] = rest / 1000
    for name, p in by_label.items():
        probs[labels.english.index(name.replace("_", " "))] += p
    return probs


def test_a_category_scores_the_sum_of_its_classes_and_a_parent_includes_its_children() -> None:
    probs = _probs(tabby=0.3, Egyptian_cat=0.4, lion=0.1, golden_retriever=0.1)
    table = category_table()
    scores = table.scores(probs)
    by_id = dict(zip(table.ids, scores, strict=True))
    cls = np.array(table.classes, dtype=object)
    assert by_id["cat"] == pytest.approx(probs[cls == "cat"].sum())
    assert by_id["cat"] == pytest.approx(0.7 + 5 * 0.1 / 1000)
    assert by_id["feline"] == pytest.approx(by_id["cat"] + probs[cls == "feline"].sum())
    assert by_id["animal"] >= by_id["mammal"] >= by_id["feline"] >= by_id["cat"]
    assert scores[table.depth == 0].sum() <= 1.0 + 1e-9  # top-level categories do not overlap


def test_categorize_lists_categories_above_the_floor_highest_first() -> None:
    cats = categorize(_probs(tabby=0.3, Egyptian_cat=0.4, lion=0.1, golden_retriever=0.1))
    assert [c.id for c in cats][:4] == ["animal", "mammal", "feline", "cat"]
    assert all(c.score >= 0.05 for c in cats)
    assert [c.score for c in cats] == sorted((c.score for c in cats), reverse=True)
    cat = next(c for c in cats if c.id == "cat")
    assert (cat.label, cat.label_zh, cat.parent) == ("cat", "猫", "feline")
    assert cat.as_dict("zh", 3) == {"id": "cat", "label_zh": "猫", "score": round(cat.score, 3), "parent": "feline"}
    assert set(cat.as_dict()) == {"id", "label", "label_zh", "score", "parent"}
    batch = categorize_batch(np.stack([_probs(tabby=0.9), _probs(banana=0.9)]))
    assert headline(batch[0]).id == "cat" and headline(batch[1]).id == "fruit"


def test_the_summary_names_the_category_first_then_the_class() -> None:
    probs = _probs(tabby=0.5, Egyptian_cat=0.42)
    cats = categorize(probs)
    preds = [Prediction(285, "Egyptian cat", "埃及猫", 0.42)]
    cat = next(c for c in cats if c.id == "cat")
    assert summary(cats, preds, "zh") == f"猫 {cat.score * 100:.0f} % · 可能是埃及猫 42 %"
    assert summary(cats, preds, "en").startswith("cat ") and "maybe Egyptian cat 42 %" in summary(cats, preds, "en")
    assert summary(cats, preds, "both").startswith("猫 cat ")
    assert summary([], preds, "both", unknown=True) == "不确定 not sure · 可能是埃及猫 Egyptian cat 42 %"
    assert summary([], [], "en", unknown=True) == "not sure"


def test_unknown_flags_spread_out_answers_only() -> None:
    flat = np.full(1000, 1 / 1000)
    assert is_unknown(flat)
    assert not is_unknown(_probs(tabby=0.9))
    assert not is_unknown(_cats_spread())
    assert unknown_batch(np.stack([flat, _probs(banana=0.8)])) == [True, False]


def _cats_spread() -> np.ndarray:
    """The five house cats share 0.85: no class is sure, but the category "cat" is."""
    return _probs(tabby=0.17, Egyptian_cat=0.17, Persian_cat=0.17, Siamese_cat=0.17, tiger_cat=0.17)


def test_category_objects_compare_by_value() -> None:
    assert Category("cat", "cat", "猫", 0.5, "feline") == Category("cat", "cat", "猫", 0.5, "feline")


def test_own_category_picks_the_most_specific_everyday_answer() -> None:
    table = category_table()
    probs = np.stack([_cats_spread(), _probs(banana=0.5, lemon=0.3), _probs(echidna=0.9)])
    assert [table.ids[j] for j in table.own_category(probs)] == ["cat", "fruit", "mammal"]
    assert table.category_index(get_labels().english.index("tabby")) == table.ids.index("cat")
    assert table.category_index(get_labels().english.index("maze")) is None  # left out


def test_a_trained_model_keeps_its_own_classes_and_unknown_rule(tmp_path: Path) -> None:
    from tests.helpers import FakeEngine, fake_classifier
    from wanwu.classifier import Classifier
    from wanwu.labels import LabelSet

    imagenet = fake_classifier(tmp_path)
    logits = np.zeros((2, 1000), np.float32)
    logits[0, 281] = 12.0  # tabby: sure
    (sure, flat) = imagenet.results(logits, top_k=3)
    assert sure.unknown is False and headline(sure.categories).id == "cat" and sure.summary("en").startswith("cat ")
    assert flat.unknown is True and flat.summary("zh").startswith("不确定")

    class Trained(type(imagenet.source)):  # type: ignore[misc]
        labels = LabelSet(("a",) * 1000, ("甲",) * 1000, tuple(f"c{i}" for i in range(1000)))
        unknown_below = 0.5

    trained = Classifier(Trained(imagenet.spec, "f" * 64, tmp_path), FakeEngine())
    (sure, flat) = trained.results(logits, top_k=3)
    assert (sure.categories, sure.unknown) == ([], False) and (flat.categories, flat.unknown) == ([], True)
    assert sure.summary("en").startswith("a ") and flat.summary("en").startswith("not sure")
