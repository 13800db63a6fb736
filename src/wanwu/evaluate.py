"""Top-1/top-5 accuracy on a labelled folder: ``<wnid>_*.JPEG`` files (ImageNet's naming), or an ImageFolder
whose class folders are the model's classes (a trained model's folder names, or WordNet ids).

For ImageNet models, also category top-1 (issue 24): the share of images whose everyday category (the one whose own
classes hold the most probability; ``wanwu.categories``) is their class's, over the images whose class has one."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wanwu.categories import category_table
from wanwu.classifier import Classifier
from wanwu.datasets import labelled_images
from wanwu.imagefolder import matched_items
from wanwu.labels import LabelSet
from wanwu.ranking import softmax, top_indices


@dataclass(frozen=True)
class EvalResult:
    model: str
    engine: str
    precision: str
    images: int
    top1: float
    top5: float
    images_per_s: float
    predictions: tuple[int, ...]  # top-1 index per image, for agreement between engines
    category_top1: float | None = None  # None: a trained model (its own classes), or no image has a category
    category_images: int = 0  # the images category top-1 is over (their class is in a category)

    def as_dict(self) -> dict:
        return {
            "model": self.model,
            "engine": self.engine,
            "precision": self.precision,
            "images": self.images,
            "top1": self.top1,
            "top5": self.top5,
            "category_top1": self.category_top1,
            "category_images": self.category_images,
            "images_per_s": self.images_per_s,
        }


def _batches(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def eval_items(folder: Path, labels: LabelSet) -> list[tuple[Path, int]]:
    """(image, class index) pairs: an ImageFolder when ``folder`` has sub-folders, else ``<wnid>_*`` file names."""
    if folder.is_dir() and any(p.is_dir() and not p.name.startswith(".") for p in folder.iterdir()):
        return matched_items(folder, labels)
    return labelled_images(folder, labels)


def evaluate(
    classifier: Classifier,
    folder: Path,
    batch_size: int = 8,
    fast_decode: bool = False,
    on_batch: Callable[[int], None] | None = None,
) -> EvalResult:
    items = eval_items(folder, classifier.labels)
    top1 = top5 = 0
    predictions: list[int] = []
    categories = CategoryTally(classifier.has_categories)
    started = time.perf_counter()
    for chunk in _batches(items, batch_size):
        batch = np.stack([classifier.preprocess(p.read_bytes(), fast_decode) for p, _ in chunk])
        logits = classifier.logits(batch)
        ranked = top_indices(logits, 5)
        for (_, target), row in zip(chunk, ranked, strict=True):
            top1 += int(row[0] == target)
            top5 += int(target in row)
            predictions.append(int(row[0]))
        categories.add(logits, [target for _, target in chunk])
        if on_batch:
            on_batch(len(chunk))
    elapsed = time.perf_counter() - started
    return EvalResult(
        classifier.model_name,
        classifier.engine.name,
        classifier.engine.precision,
        len(items),
        top1 / len(items),
        top5 / len(items),
        len(items) / elapsed,
        tuple(predictions),
        categories.top1,
        categories.images,
    )


class CategoryTally:
    """Category top-1 over a run: right when the predicted everyday category is the target class's own."""

    def __init__(self, enabled: bool) -> None:
        self.enabled, self.images, self.right = enabled, 0, 0

    def add(self, logits: np.ndarray, targets: list[int]) -> None:
        if not self.enabled:
            return
        table = category_table()
        predicted = table.own_category(softmax(logits))
        for guess, target in zip(predicted, targets, strict=True):
            truth = table.category_index(target)
            if truth is not None:
                self.images += 1
                self.right += int(guess == truth)

    @property
    def top1(self) -> float | None:
        return self.right / self.images if self.images else None
