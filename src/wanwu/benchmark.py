"""The engine benchmark: engines × precisions × batch sizes on the pixels the service sends, as medians.

``wanwu bench`` and ``bench/engines.py`` both time with ``time_engines``, so there is one
measurement of engine speed. The input is what the service hands an engine: the crop's uint8
``(N, H, W, 3)`` pixels (OpenVINO normalises them in its graph, the others in numpy), decoded from
real images where they are given, else random. Each timed call runs the next ``batch`` of those
images, so a guarded bf16 engine (whose cost depends on the images: it re-runs near-ties in fp32)
is timed on a realistic mix; it is timed only on real images, since random ones are nearly all near-ties.
"""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from wanwu.errors import WanwuError

if TYPE_CHECKING:
    from wanwu.artifacts import ModelSource
    from wanwu.engines import Engine
    from wanwu.models.registry import Preprocessing


def time_runs(fn: Callable[[], object], warmup: int = 3, runs: int = 20) -> list[float]:
    """Wall-clock seconds of ``runs`` calls of ``fn`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return times


def time_engine(
    run: Callable[[np.ndarray], np.ndarray], images: np.ndarray, warmup: int = 3, runs: int = 20, batch: int | None = None
) -> dict:
    """Median time of ``run`` on batches of ``batch`` images (default: all), each call taking the next batch of ``images``."""
    size = batch or len(images)
    if len(images) < size:  # fewer images than a batch: repeat them, so that every batch is full
        images = np.resize(images, (size, *images.shape[1:]))
    starts = itertools.cycle(range(0, max(1, len(images) - size + 1), size))
    batches = (images[start : start + size] for start in starts)
    times = time_runs(lambda: run(next(batches)), warmup, runs)
    median = statistics.median(times)
    return {
        "batch": size,
        "runs": runs,
        "ms_per_batch": median * 1e3,
        "ms_per_image": median * 1e3 / size,
        "images_per_s": size / median,
        "ms_per_image_min": min(times) * 1e3 / size,
    }


def pixel_inputs(pre: Preprocessing, paths: Sequence[Path] = (), count: int = 8, seed: int = 0) -> np.ndarray:
    """The crops of ``paths`` as the service sends them (uint8 NHWC); ``count`` random crops where no path is given."""
    if paths:
        return np.stack([_pixels(path, pre) for path in paths])
    crop = pre.crop_size
    return np.random.default_rng(seed).integers(0, 256, (count, crop, crop, 3), dtype=np.uint8)


def _pixels(path: Path, pre: Preprocessing) -> np.ndarray:
    from wanwu.errors import ImageError
    from wanwu.preprocess import preprocess_pixels

    try:
        return preprocess_pixels(path.read_bytes(), pre)
    except OSError as err:
        raise WanwuError(f"{path}: cannot read it ({err.strerror or err})") from err
    except ImageError as err:
        raise type(err)(f"{path}: {err}") from err


def engine_variants(
    engine: str, precision: str, source: ModelSource, threads: int, guarded: bool
) -> Iterator[tuple[str, Engine]]:
    """(label, engine) pairs: the plain engine, then bf16 with its guard where ``guarded`` and the bundle has a calibration."""
    from wanwu.engines import create_engine
    from wanwu.engines.guard import GuardedEngine, latest_guard

    yield precision, create_engine(engine, source, threads=threads, precision=precision, guard=False)
    if guarded and precision == "bf16" and latest_guard(source.bundle) is not None:
        runner = create_engine(engine, source, threads=threads, precision=precision)
        if isinstance(runner, GuardedEngine):
            yield "bf16+guard", runner


def _time_variant(runner: Engine, images: np.ndarray, batch: int, runs: int, warmup: int) -> dict:
    from wanwu.engines.guard import GuardedEngine

    before = runner.counts() if isinstance(runner, GuardedEngine) else None
    row = time_engine(runner.run, images, warmup, runs, batch)
    if isinstance(runner, GuardedEngine) and before is not None:
        images_run, rechecked = np.subtract(runner.counts(), before)
        row["rechecked_fraction"] = float(rechecked / max(1, images_run))
    return row


def time_engines(
    source: ModelSource,
    engines: Sequence[str],
    precisions: Sequence[str] | None,
    batches: Sequence[int],
    images: np.ndarray,
    threads: int,
    runs: int = 20,
    warmup: int = 3,
    guarded: bool = False,
    skip: Callable[[str], None] | None = None,
) -> Iterator[dict]:
    """One row per engine × precision (× guard) × batch, as each is timed; ``precisions`` None: each engine's own list.

    An engine or precision that cannot run here (not installed, no INT8 artifact, no bf16 in the
    CPU) raises, or is reported to ``skip`` and left out when ``skip`` is given.
    """
    from wanwu.engines import ENGINES

    for engine in engines:
        for precision in precisions or ENGINES[engine].precisions:
            try:
                for label, runner in engine_variants(engine, precision, source, threads, guarded):
                    for size in batches:
                        row = _time_variant(runner, images, size, runs, warmup)
                        yield {"model": source.spec.name, "engine": engine, "precision": label, "threads": threads, **row}
                    del runner  # one compiled model in memory at a time
            except WanwuError as err:
                if skip is None:
                    raise
                skip(f"skipping {engine}/{precision}: {err}")
