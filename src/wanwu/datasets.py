"""Folders of images: which files count as images, and ImageNet-style labelled folders."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from wanwu.labels import LabelSet

IMAGE_SUFFIXES = frozenset({".jpeg", ".jpg", ".png", ".webp", ".bmp"})


def image_files(folders: Sequence[Path], what: str = "folder") -> list[Path]:
    """Every image file directly inside ``folders``, sorted by folder then name."""
    files: list[Path] = []
    for folder in folders:
        if not folder.is_dir():
            raise FileNotFoundError(f"{what} {folder} does not exist")
        files.extend(sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES))
    if not files:
        raise FileNotFoundError(f"no images (.jpg, .png, .webp, .bmp) in {', '.join(map(str, folders))}")
    return files


def labelled_images(folder: Path, labels: LabelSet) -> list[tuple[Path, int]]:
    """Every image whose name starts with a known WordNet id (``<wnid>_*.JPEG``), with its class index, sorted."""
    found = []
    for path in sorted(folder.iterdir()):
        wnid = path.name.split("_", 1)[0]
        if path.suffix.lower() in IMAGE_SUFFIXES and wnid in labels.wnids:
            found.append((path, labels.index_of_wnid(wnid)))
    if not found:
        raise FileNotFoundError(f"no images named <wnid>_*.JPEG (e.g. n01440764_0.JPEG) in {folder}")
    return found
