"""Preprocessing cost per image, exact decode vs fast decode (JPEG DCT-domain downscaling), and agreement.

Timed: bytes -> the crop's uint8 pixels, what the service does per image (the normalisation runs in
the OpenVINO graph, see ``wanwu.engines``).

Images: typical ~500×375 JPEGs (the ImageNet samples) and 12-megapixel JPEGs (4000×3000, quality 90,
made from everyday photos the way ../shared/bench/make_large.py does). Agreement: top-1 of the
model on OpenVINO fp32, exact vs fast decode, on the typical images.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from wanwu.loader import open_runner
from wanwu.preprocess import preprocess_pixels
from wanwu.sources import ModelSource


def make_large(photos: list[Path], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for p in photos:
        path = out / f"{p.stem}_12mp.jpg"
        Image.open(p).convert("RGB").resize((4000, 3000), Image.Resampling.BICUBIC).save(path, quality=90)
        paths.append(path)
    return paths


def per_image_ms(datas: list[bytes], pre, fast: bool, runs: int) -> float:  # type: ignore[no-untyped-def]
    """Median over runs of the mean time per image over the set (one warm-up pass first)."""
    for data in datas:
        preprocess_pixels(data, pre, fast_decode=fast)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        for data in datas:
            preprocess_pixels(data, pre, fast_decode=fast)
        times.append((time.perf_counter() - started) / len(datas))
    return statistics.median(times) * 1e3


def measure_preprocess(
    source: ModelSource, sets: dict[str, list[Path]], runs: int = 15, threads: int = 1, log: Callable[[str], None] = print
) -> dict:
    """``sets``: name -> JPEG files; the first set is also where exact and fast decode are compared."""
    pre = source.spec.preprocessing
    results: dict = {"model": source.spec.name, "resize": pre.resize_size, "runs": runs, "sets": {}}
    for name, paths in sets.items():
        datas = [p.read_bytes() for p in paths]
        exact, fast = per_image_ms(datas, pre, False, runs), per_image_ms(datas, pre, True, runs)
        results["sets"][name] = {"images": len(paths), "exact_ms": exact, "fast_ms": fast, "speedup": exact / fast}
        log(f"{name:30} {len(paths):3} images  exact {exact:7.2f} ms  fast {fast:7.2f} ms  ×{exact / fast:.2f}")
    samples = next(iter(sets.values()))
    engine = open_runner(source, "openvino", threads=threads)
    top1 = {}
    for fast in (False, True):
        batch = np.stack([preprocess_pixels(p.read_bytes(), pre, fast_decode=fast) for p in samples])
        top1[fast] = np.concatenate([engine.run(batch[i : i + 8]) for i in range(0, len(batch), 8)]).argmax(axis=1)
    agreement = float(np.mean(top1[False] == top1[True]))
    results["agreement"] = {"images": len(samples), "engine": "openvino", "top1_agreement_exact_vs_fast": agreement}
    log(f"top-1 agreement exact vs fast decode ({source.spec.name}, openvino, {len(samples)} images): {agreement:.1%}")
    return results
