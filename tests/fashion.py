"""Fashion-MNIST (Zalando, MIT) as ImageFolder trees, for the training tests and ``bench/train.py`` (which imports it from here).

Debian ships it: ``apt-get install dataset-fashion-mnist`` -> ``/usr/share/datasets/fashion-mnist/``
(gzipped IDX files: 60,000 training and 10,000 test images, 28×28 grayscale, 10 classes).
"""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np

FASHION_DIR = Path(os.environ.get("WANWU_FASHION_MNIST", "/usr/share/datasets/fashion-mnist"))
# Folder names in the dataset's label order, as `english|中文` (a folder name cannot hold the "/" of "T-shirt/top").
CLASSES = (
    "T-shirt|T恤", "Trouser|裤子", "Pullover|套头衫", "Dress|连衣裙", "Coat|外套",
    "Sandal|凉鞋", "Shirt|衬衫", "Sneaker|运动鞋", "Bag|包", "Ankle boot|短靴",
)
_FILES = {"train": "train-{}-idx{}-ubyte.gz", "test": "t10k-{}-idx{}-ubyte.gz"}


def available(folder: Path = FASHION_DIR) -> bool:
    return all((folder / _FILES[s].format(kind, n)).is_file() for s in _FILES for kind, n in (("images", 3), ("labels", 1)))


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (gzipped or not) -> its array (uint8 data: Fashion-MNIST's images and labels)."""
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file")
    shape = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load(split: str, folder: Path = FASHION_DIR) -> tuple[np.ndarray, np.ndarray]:
    """``(images (N, 28, 28) uint8, labels (N,) uint8)`` of ``train`` or ``test``."""
    pattern = _FILES[split]
    return read_idx(folder / pattern.format("images", 3)), read_idx(folder / pattern.format("labels", 1))


def pick(labels: np.ndarray, per_class: int | None, seed: int = 0, skip: int = 0) -> np.ndarray:
    """Indices of ``per_class`` images of each class (all when None), seeded; ``skip`` leaves out the first ones picked."""
    rng = np.random.default_rng(seed)
    chosen = []
    for c in range(len(CLASSES)):
        idx = rng.permutation(np.flatnonzero(labels == c))
        chosen.append(idx[skip:] if per_class is None else idx[skip : skip + per_class])
    return np.sort(np.concatenate(chosen))


def write_imagefolder(dst: Path, images: np.ndarray, labels: np.ndarray, indices: np.ndarray, prefix: str = "") -> int:
    """PNG files ``dst/<class folder>/<prefix><index>.png``; returns how many were written."""
    from PIL import Image

    for folder in CLASSES:
        (dst / folder).mkdir(parents=True, exist_ok=True)
    for i in indices:
        Image.fromarray(images[i], "L").save(dst / CLASSES[labels[i]] / f"{prefix}{i:05d}.png", optimize=False)
    return len(indices)
