"""The images a reduced precision is calibrated and checked on.

Calibration uses many *views* of a few images (each image, its mirror and seeded random crops):
NNCF's default range estimator averages per-view extremes, so it needs many views. On
EfficientNet-Lite0 calibrated on 7 photos, 21 views gave 94 % top-1 agreement with fp32 and a KL
divergence of 0.075 from its softmax; 1,806 views gave 97–98 % and 0.0065 (four crop seeds).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wanwu.datasets import labelled_images
from wanwu.imagefolder import matched_items
from wanwu.models.registry import Preprocessing
from wanwu.preprocess import decode_image, preprocess_pixels, transform
from wanwu.sources import ModelSource
from wanwu.weights import sha256_file

DEFAULT_SUBSET = 300
VIEW_BUDGET = 1800  # calibration views per run, spread over the images (7 photos -> 258 views each, 300 images -> 6)
VALIDATION_VIEWS = 300  # what a report without --eval, and --accuracy-control, score on


def choose_subset(files: list[Path], subset: int | None) -> list[Path]:
    """``subset`` files spread evenly over the sorted list (all of them when ``subset`` is None)."""
    if subset is None or subset >= len(files):
        return list(files)
    positions = np.linspace(0, len(files) - 1, subset).round().astype(int)
    return [files[i] for i in sorted(set(positions.tolist()))]


def views_per_image(images: int, augment: bool) -> int:
    return max(3, math.ceil(VIEW_BUDGET / images)) if augment else 1


def calibration_views(data: bytes, digest: str, pre: Preprocessing, count: int) -> list[np.ndarray]:
    """``count`` views of an image: the eval view, its mirror image, then random crops.

    Crops cover 25–100 % of the area with an aspect ratio of 3/4–4/3 and are mirrored half the time
    (the shapes an object takes in photos people upload); the generator is seeded by the image's
    hash, so the same image always gives the same views.
    """
    from PIL import ImageOps

    img = decode_image(data)
    views = [transform(img, pre)]
    if count > 1:
        views.append(transform(ImageOps.mirror(img), pre))
    rng = np.random.default_rng(int(digest[:16], 16))
    width, height = img.size
    for _ in range(count - 2):
        area = rng.uniform(0.25, 1.0) * width * height
        aspect = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
        cw = min(width, max(8, round(math.sqrt(area * aspect))))
        ch = min(height, max(8, round(math.sqrt(area / aspect))))
        x0, y0 = int(rng.integers(0, width - cw + 1)), int(rng.integers(0, height - ch + 1))
        crop = img.crop((x0, y0, x0 + cw, y0 + ch))
        views.append(transform(ImageOps.mirror(crop) if rng.random() < 0.5 else crop, pre))
    return views


@dataclass(frozen=True)
class CalibrationViews:
    """The views NNCF calibrates on, made image by image on every pass instead of held in memory
    (1,800 float32 views at 224 × 224 would take about 1 GB)."""

    files: tuple[Path, ...]
    digests: dict[Path, str]
    pre: Preprocessing
    per_image: int

    def __len__(self) -> int:
        return len(self.files) * self.per_image

    def __iter__(self) -> Iterator[np.ndarray]:
        for path in self.files:
            yield from calibration_views(path.read_bytes(), self.digests[path], self.pre, self.per_image)

    def sample(self, count: int) -> list[np.ndarray]:
        """About ``count`` views spread evenly over the set."""
        return list(itertools.islice(self, 0, None, max(1, len(self) // count)))


def labelled_eval_set(source: ModelSource, eval_dir: Path, calib_digests: set[str]) -> tuple[np.ndarray, np.ndarray, dict]:
    """``eval_dir``'s labelled images (``<wnid>_*.JPEG``) as pixels, their class indices, and the report's header
    (the folder and how many of its images were also calibrated on)."""
    labels = source.labels  # a trained model's own classes, or ImageNet's
    if any(p.is_dir() for p in eval_dir.iterdir()):  # an ImageFolder (a trained model's held-out photos)
        items = matched_items(eval_dir, labels, what="--eval folder")
    else:
        items = labelled_images(eval_dir, labels)
    images = np.stack([preprocess_pixels(p.read_bytes(), source.spec.preprocessing) for p, _ in items])
    targets = np.array([t for _, t in items])
    overlap = sum(sha256_file(p) in calib_digests for p, _ in items)
    return images, targets, {"folder": str(eval_dir), "images_in_calibration_set": overlap}
