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
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from wanwu.errors import WanwuError

if TYPE_CHECKING:
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


class Timed(Protocol):
    """What is timed: an engine (``wanwu.engines.Engine``; declared here, since this module sits below the engines)."""

    def run(self, batch: np.ndarray) -> np.ndarray: ...

    def describe(self) -> dict: ...


class Opener(Protocol):
    """Opens an engine by name at a precision, bf16 guarded or not (``wanwu.precision.open_engine`` bound to a model)."""

    def __call__(self, name: str, precision: str, guard: bool) -> Timed: ...


def _variants(open_engine: Opener, engine: str, precision: str, guarded: bool) -> Iterator[tuple[str, Timed]]:
    """(label, engine) pairs: the plain engine, then bf16 with its guard where ``guarded`` and the model has a calibration."""
    yield precision, open_engine(engine, precision, guard=False)
    if guarded and precision == "bf16":
        runner = open_engine(engine, precision, guard=True)
        if "bf16_guard" in runner.describe():  # else the model has no guard calibration: the same plain engine again
            yield "bf16+guard", runner


def _time_variant(runner: Timed, images: np.ndarray, batch: int, runs: int, warmup: int) -> dict:
    before = runner.describe().get("bf16_guard")
    row = time_engine(runner.run, images, warmup, runs, batch)
    if before is not None:
        after = runner.describe()["bf16_guard"]
        images_run = after["images"] - before["images"]
        row["rechecked_fraction"] = (after["rechecked_in_fp32"] - before["rechecked_in_fp32"]) / max(1, images_run)
    return row


def time_engines(
    open_engine: Opener,
    pairs: Iterable[tuple[str, str]],
    batches: Sequence[int],
    images: np.ndarray,
    runs: int = 20,
    warmup: int = 3,
    guarded: bool = False,
    skip: Callable[[str], None] | None = None,
) -> Iterator[dict]:
    """One row per (engine, precision) of ``pairs`` (× guard) × batch, as each is timed.

    ``open_engine`` is given by the caller (this module sits below the engines and precisions it
    times). One that cannot run here (not installed, no INT8 artifact, no bf16 in the CPU) raises, or
    is reported to ``skip`` and left out where ``skip`` is given.
    """
    for engine, precision in pairs:
        try:
            for label, runner in _variants(open_engine, engine, precision, guarded):
                threads = runner.describe()["threads"]
                for size in batches:
                    yield {"engine": engine, "precision": label, "threads": threads,
                           **_time_variant(runner, images, size, runs, warmup)}
                del runner  # one compiled model in memory at a time
        except WanwuError as err:
            if skip is None:
                raise
            skip(f"skipping {engine}/{precision}: {err}")
