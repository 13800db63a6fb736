"""Top-1/top-5 accuracy on a labelled folder: ``<wnid>_*.JPEG`` files (ImageNet's naming), or an ImageFolder
whose class folders are the model's classes (a trained model's folder names, or WordNet ids)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wanwu.classifier import Classifier
from wanwu.datasets import labelled_images
from wanwu.imagefolder import matched_items
from wanwu.labels import LabelSet
from wanwu.ranking import top_indices


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

    def as_dict(self) -> dict:
        return {
            "model": self.model,
            "engine": self.engine,
            "precision": self.precision,
            "images": self.images,
            "top1": self.top1,
            "top5": self.top5,
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
    started = time.perf_counter()
    for chunk in _batches(items, batch_size):
        batch = np.stack([classifier.preprocess(p.read_bytes(), fast_decode) for p, _ in chunk])
        ranked = top_indices(classifier.logits(batch), 5)
        for (_, target), row in zip(chunk, ranked, strict=True):
            top1 += int(row[0] == target)
            top5 += int(target in row)
            predictions.append(int(row[0]))
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
    )
