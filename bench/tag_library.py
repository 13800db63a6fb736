"""A synthetic photo library for bench/tag.py, made from the shared sample photos (never copied into the repo).

Image ``i`` is a deterministic function of ``i``: a random crop (50-100 % of each side) of one of the
source photos, mirrored half of the time, resized to 480-1600 px on its longer side, or to 12 MP
(4000×3000) for a share of them, and re-encoded as JPEG (quality 70-95), with a few PNG and WebP.
Files go to ``<root>/<i // 1000>/<i>.<ext>``, so the first N images of a larger set are the N-image set,
and a file already there is kept (the library is made once and reused).
"""

from __future__ import annotations

import multiprocessing
import random
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from PIL import Image, ImageOps


def _source(path: Path) -> Image.Image:
    with Image.open(path) as img:
        return ImageOps.exif_transpose(img).convert("RGB")


def file_for(root: Path, i: int, share_12mp: float) -> tuple[Path, bool, str]:
    rng = random.Random(i)
    big = rng.random() < share_12mp
    roll = rng.random()
    ext = "jpg" if big or roll < 0.9 else ("png" if roll < 0.95 else "webp")
    return root / f"{i // 1000:03d}" / f"{i:05d}.{ext}", big, ext


def make_one(job: tuple[int, str, str, float]) -> int:
    i, source, root, share = job
    path, big, ext = file_for(Path(root), i, share)
    if path.exists():
        return path.stat().st_size
    rng = random.Random(i * 7919 + 1)
    img = _source(Path(source))
    w, h = img.size
    cw, ch = int(w * rng.uniform(0.5, 1.0)), int(h * rng.uniform(0.5, 1.0))
    x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
    img = img.crop((x, y, x + cw, y + ch))
    if rng.random() < 0.5:
        img = ImageOps.mirror(img)
    if big:
        size = (4000, 3000) if cw >= ch else (3000, 4000)
    else:
        scale = rng.uniform(480, 1600) / max(cw, ch)
        size = (max(64, round(cw * scale)), max(64, round(ch * scale)))
    img = img.resize(size, Image.Resampling.BILINEAR)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    if ext == "jpg":
        img.save(tmp, "JPEG", quality=rng.randint(70, 95))
    elif ext == "png":
        img.save(tmp, "PNG", compress_level=3)
    else:
        img.save(tmp, "WEBP", quality=80)
    tmp.rename(path)
    return path.stat().st_size


def make_library(root: Path, count: int, sources: list[Path], share_12mp: float = 0.1, workers: int = 2,
                 log=print) -> list[Path]:  # type: ignore[no-untyped-def]
    """The first ``count`` images of the library at ``root`` (made where missing); returns their paths."""
    if not sources:
        raise FileNotFoundError("no source photos to make the library from")
    jobs = [(i, str(sources[i % len(sources)]), str(root), share_12mp) for i in range(count)]
    missing = [job for job in jobs if not file_for(root, job[0], share_12mp)[0].exists()]
    if missing:
        log(f"making {len(missing):,} images in {root} ({share_12mp:.0%} of them 12 MP) ...")
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            for n, _ in enumerate(pool.map(make_one, missing, chunksize=8), 1):
                if n % 1000 == 0:
                    log(f"  {n:,} / {len(missing):,}")
    return [file_for(root, i, share_12mp)[0] for i in range(count)]


def folders_for(root: Path, count: int) -> list[Path]:
    """The thousand-image folders that hold exactly the first ``count`` images (``count`` a multiple of 1000)."""
    if count % 1000:
        raise ValueError("counts are whole thousands, so a set is a list of folders")
    return [root / f"{k:03d}" for k in range(count // 1000)]
