"""The ``unknown`` rule and the everyday categories with the real model (issue 24), on generated object-less
images and the shared labelled samples; the numbers behind them are in docs/categories.md (bench/categories.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.objectless import objectless_images
from wanwu import Classifier
from wanwu.categories import category_table

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def classifier(shared_home: Path) -> Classifier:
    return Classifier.load("efficientnet_lite0", engine="openvino", home=shared_home, threads=2)


def test_object_less_images_are_flagged_unknown(classifier: Classifier) -> None:
    images = list(objectless_images(per_kind=10, seed=7))  # other images than the calibration's (seed 24)
    results = classifier.predict([image for _, image in images], top_k=3)
    flagged = [r.unknown for r in results]
    assert np.mean(flagged) >= 0.95, [(k, r.summary("en")) for (k, _), r in zip(images, results, strict=True) if not r.unknown]
    assert all(r.summary("zh").startswith("不确定") for r in results if r.unknown)


def test_real_photos_are_rarely_flagged_and_their_kind_scores_high(classifier: Classifier, samples_dir: Path,
                                                                     photos_dir: Path) -> None:
    samples = sorted(samples_dir.glob("*.JPEG"))
    results = classifier.predict([*samples, *sorted(photos_dir.glob("*.jpg"))], top_k=5)
    assert np.mean([r.unknown for r in results]) <= 0.05
    table = category_table()
    kinds = {"dog", "cat", "bird", "fish", "insect", "reptile", "car", "boat", "aircraft", "fruit", "instrument",
             "furniture", "clothing"}
    scored = []
    for path, result in zip(samples, results[: len(samples)], strict=True):
        j = table.category_index(classifier.labels.index_of_wnid(path.name.split("_")[0]))
        chain = []
        while j is not None:
            chain.append(table.ids[j])
            j = None if table.parents[j] is None else table.ids.index(table.parents[j])
        kind = next((c for c in chain if c in kinds), None)
        if kind:
            scored.append(next((c.score for c in result.categories if c.id == kind), 0.0))
    assert len(scored) >= 30 and np.mean([s >= 0.4 for s in scored]) >= 0.95


def test_the_result_is_a_list_with_categories(classifier: Classifier, examples_dir: Path) -> None:
    result = classifier.predict(examples_dir / "chelsea.jpg", top_k=3)
    assert isinstance(result, list) and len(result) == 3 and result.unknown is False
    assert [c.id for c in result.categories][:4] == ["animal", "mammal", "feline", "cat"]
    assert result.summary("zh").startswith("猫 ") and "可能是" in result.summary("zh")
    assert result.as_dict("en")["categories"][0] == {"id": "animal", "label": "animal",
                                                     "score": result.categories[0].score, "parent": None}
