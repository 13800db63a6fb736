"""A labelled set for ``wanwu dupes``: public-domain photos and their edited copies (issue 25).

Originals: ../shared/data/photos (public domain) and the photos bundled with wanwu (src/wanwu/photos: public
domain / CC0, see its README). Each gets the edits a photo library accumulates: resized, re-encoded at a low
quality, lightly cropped (one side, and all sides), brightened, converted to PNG and to WebP. An original and
its copies are one group: every pair inside a group is a true near/exact pair, every pair across groups is not.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageEnhance, ImageOps

import wanwu


def _jpeg(img: Image.Image, quality: int = 90) -> bytes:
    out = io.BytesIO()
    img.convert("RGB").save(out, "JPEG", quality=quality)
    return out.getvalue()


def _save(img: Image.Image, fmt: str, **params: object) -> bytes:
    out = io.BytesIO()
    img.convert("RGB").save(out, fmt, **params)
    return out.getvalue()


def _crop(img: Image.Image, left: float, top: float, right: float, bottom: float) -> Image.Image:
    w, h = img.size
    return img.crop((round(w * left), round(h * top), round(w * (1 - right)), round(h * (1 - bottom))))


def _resized(img: Image.Image, scale: float) -> Image.Image:
    return img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.Resampling.LANCZOS)


EDITS: dict[str, Callable[[Image.Image], tuple[str, bytes]]] = {
    "half": lambda img: ("jpg", _jpeg(_resized(img, 0.5))),
    "q35": lambda img: ("jpg", _jpeg(img, 35)),
    "crop_side": lambda img: ("jpg", _jpeg(_crop(img, 0.08, 0, 0, 0))),
    "crop_all": lambda img: ("jpg", _jpeg(_crop(img, 0.04, 0.04, 0.04, 0.04))),
    "bright": lambda img: ("jpg", _jpeg(ImageEnhance.Brightness(img).enhance(1.3))),
    "png": lambda img: ("png", _save(_resized(img, 0.6), "PNG")),
    "webp": lambda img: ("webp", _save(img, "WEBP", quality=75)),
}


def originals(photos_dir: Path) -> list[Path]:
    bundled = Path(wanwu.__file__).parent / "photos"
    return sorted(photos_dir.glob("*.jpg")) + sorted(bundled.glob("*.jpg"))


def build(photos_dir: Path, out: Path, exact_copy: bool = True) -> dict[str, str]:
    """Write every original, its edited copies (and one byte-identical copy each) under ``out``;
    returns {relative path: group (the original's stem)}."""
    groups: dict[str, str] = {}
    for path in originals(photos_dir):
        stem = path.stem
        folder = out / stem
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, folder / path.name)
        groups[f"{stem}/{path.name}"] = stem
        if exact_copy:
            shutil.copy(path, folder / f"copy-{path.name}")
            groups[f"{stem}/copy-{path.name}"] = stem
        with Image.open(path) as opened:
            img = ImageOps.exif_transpose(opened).convert("RGB")
        for name, edit in EDITS.items():
            suffix, data = edit(img)
            (folder / f"{stem}-{name}.{suffix}").write_bytes(data)
            groups[f"{stem}/{stem}-{name}.{suffix}"] = stem
    return groups


def add_distractors(samples_dir: Path, lib: Path, labels: dict[str, str]) -> dict[str, str]:
    """The ImageNet samples under ``lib/imagenet``, each its own group: different photos (two dogs among them)."""
    (lib / "imagenet").mkdir()
    for path in sorted(samples_dir.glob("*.JPEG")):
        shutil.copy(path, lib / "imagenet" / path.name)
        labels[f"imagenet/{path.name}"] = path.name
    return labels


def true_pairs(groups: dict[str, str]) -> set[frozenset[str]]:
    paths = sorted(groups)
    return {frozenset((a, b)) for i, a in enumerate(paths) for b in paths[i + 1:] if groups[a] == groups[b]}
