"""Folders of images: which files count as images, and ImageNet-style labelled folders."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from wanwu.labels import LabelSet

IMAGE_SUFFIXES = frozenset({".jpeg", ".jpg", ".png", ".webp", ".bmp"})


def image_files(folders: Sequence[Path], what: str = "folder", recursive: bool = False) -> list[Path]:
    """Every image file inside ``folders`` (with ``recursive``, in their subfolders too: an ImageFolder's
    class folders), sorted by folder then path; symlinked folders are not followed (no loops)."""
    files: list[Path] = []
    for folder in folders:
        if not folder.is_dir():
            raise FileNotFoundError(f"{what} {folder} does not exist")
        found = _walk(folder) if recursive else (p for p in folder.iterdir() if p.is_file())
        files.extend(sorted(p for p in found if p.suffix.lower() in IMAGE_SUFFIXES))
    if not files:
        where = f"{', '.join(map(str, folders))}{' or its subfolders' if recursive else ''}"
        raise FileNotFoundError(f"no images (.jpg, .png, .webp, .bmp) in {where}")
    return files


def _walk(folder: Path) -> list[Path]:
    return [Path(root) / name for root, _, names in os.walk(folder) for name in names if (Path(root) / name).is_file()]


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
