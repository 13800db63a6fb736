"""A labelled same-scene set for the ``similar`` tier of ``wanwu dupes`` (issue 25).

The "second shots" a library holds of one scene (a burst, a bracketed series, a re-framed shot): from each
public-domain original (tests/dupes_set.py: ../shared/data/photos and src/wanwu/photos), heavy crops of
different regions (30-60 % of the frame), a mirrored crop, a zoomed detail, a few degrees of rotation with a
crop, and a strong exposure/colour change on a shifted frame. Every pair inside a scene should be ``similar``
and never ``near`` (each shot is re-framed, so none is an edited copy of another); every pair across scenes is
a different photo.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageEnhance, ImageOps

from tests.dupes_set import _crop, _jpeg, originals


def _exposed(img: Image.Image) -> Image.Image:
    darker = ImageEnhance.Brightness(img).enhance(0.55)
    return ImageEnhance.Color(ImageEnhance.Contrast(darker).enhance(1.4)).enhance(0.4)


def _rotated(img: Image.Image) -> Image.Image:
    return _crop(img.rotate(6, resample=Image.Resampling.BICUBIC), 0.2, 0.2, 0.1, 0.1)


SHOTS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "left": lambda img: _crop(img, 0, 0.1, 0.4, 0.1),  # 48 % of the frame, its left side
    "right": lambda img: _crop(img, 0.35, 0.1, 0, 0.15),  # 49 %, the right side
    "mirror": lambda img: ImageOps.mirror(_crop(img, 0.1, 0.2, 0.2, 0.05)),  # 53 %, mirrored
    "detail": lambda img: _crop(img, 0.05, 0.05, 0.4, 0.4),  # 30 %: the top-left detail, zoomed
    "rotated": _rotated,  # 6 degrees, 49 % of the frame, lower right
    "exposure": lambda img: _exposed(_crop(img, 0, 0.25, 0.25, 0)),  # 56 %, lower left, darker, desaturated
}


def build(photos_dir: Path, out: Path) -> dict[str, str]:
    """Write every original and its second shots under ``out``; returns {relative path: scene}."""
    scenes: dict[str, str] = {}
    for path in originals(photos_dir):
        stem = path.stem
        (out / stem).mkdir(parents=True, exist_ok=True)
        with Image.open(path) as opened:
            img = ImageOps.exif_transpose(opened).convert("RGB")
        (out / stem / f"{stem}.jpg").write_bytes(_jpeg(img))
        scenes[f"{stem}/{stem}.jpg"] = stem
        for name, shot in SHOTS.items():
            (out / stem / f"{stem}-{name}.jpg").write_bytes(_jpeg(shot(img)))
            scenes[f"{stem}/{stem}-{name}.jpg"] = stem
    return scenes
