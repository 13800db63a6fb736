"""Engines × precisions × batch sizes: ms/image and images/s (medians), and the CPU's peak to compare with.

The peak is a large square matmul in torch, fp32 and bf16, timed in the same run; effective
GFLOP/s = model FLOPs (2 × conv/linear MACs, counted by forward hooks) / time. INT8 models are
made first with ``wanwu.precision.int8`` on the calibration folders given, and the bf16 guard's margin
with ``wanwu.precision.bf16``; bf16 is then timed twice, plain and guarded. A guarded engine's
cost depends on the images (it re-runs near-ties in fp32), so with ``samples`` every row is timed on
real photos, each run taking the next batch of them; without, on random pixels. The ratios to torch
eager and to the engine's own fp32 at the same batch are the report's (``report.engine_rows``).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import numpy as np

from wanwu.artifacts import ModelSource, open_source
from wanwu.benchmark import matmul_peak, model_flops, time_engine
from wanwu.benchsuite.checkpoint import synthesize_resnet18
from wanwu.engines import ENGINES
from wanwu.errors import WanwuError
from wanwu.models import get_model_spec
from wanwu.precision import open_engine
from wanwu.precision.bf16 import calibrate_bf16, latest_guard
from wanwu.precision.guard import GuardedEngine
from wanwu.precision.int8 import int8_artifacts, quantize
from wanwu.preprocess import preprocess_pixels


def measure_peaks(threads: int) -> dict[str, dict]:
    # best over a few sizes: no single size is the fastest for both dtypes on every CPU
    return {
        dtype: max((matmul_peak(dtype, size, threads, runs=5) for size in (1024, 2048, 3072)), key=lambda p: p["gflops"])
        for dtype in ("fp32", "bf16")
    }


def bench_source(model: str, home: Path, scratch: Path) -> ModelSource:
    """The model in ``home``; ResNet-18 from a synthesized checkpoint (the official one is not needed for speed)."""
    weights = synthesize_resnet18(scratch / "resnet18-synthetic.pth") if model == "resnet18" else None
    return open_source(get_model_spec(model), home, weights)


def _has_bf16() -> bool:
    try:
        from wanwu.engines.openvino_engine import cpu_has_bf16
    except ImportError:
        return False
    return cpu_has_bf16()


def _variants(engine: str, precision: str, source: ModelSource, threads: int):  # type: ignore[no-untyped-def]
    """(label, engine) pairs: bf16 plain, then guarded where the bundle has a guard calibration."""
    runner = open_engine(engine, source, threads=threads, precision=precision, guard=False)
    yield precision, runner
    if precision == "bf16" and latest_guard(source.bundle) is not None:
        del runner
        guarded = open_engine(engine, source, threads=threads, precision=precision)
        if isinstance(guarded, GuardedEngine):
            yield "bf16+guard", guarded


def _timed_batches(run, images: np.ndarray, size: int):  # type: ignore[no-untyped-def]
    """A run function that ignores its argument and runs the next ``size`` images of ``images`` each call."""
    starts = itertools.cycle(range(0, max(1, len(images) - size + 1), size))
    return lambda _batch: run(images[(start := next(starts)) : start + size])


def measure_engines(
    sources: list[ModelSource],
    threads: int,
    batches: list[int],
    runs: int = 20,
    warmup: int = 5,
    calib: list[Path] | None = None,
    log: Callable[[str], None] = print,
    samples: list[Path] | None = None,
) -> dict:
    peaks = measure_peaks(threads)
    for p in peaks.values():
        log(f"peak {p['dtype']}: torch.mm {p['size']}² on {p['threads']} threads: {p['gflops']:.0f} GFLOP/s")
    rows = []
    for source in sources:
        spec = source.spec
        flops = model_flops(source.torch_model(), spec.preprocessing.crop_size)
        if calib and all(d.is_dir() for d in calib) and not int8_artifacts(source.bundle, "openvino"):
            log(f"quantizing {spec.name} on {', '.join(map(str, calib))} ...")
            quantize(source, calib, subset=300, threads=threads)
        if calib and all(d.is_dir() for d in calib) and latest_guard(source.bundle) is None and _has_bf16():
            log(f"measuring the bf16 guard margin of {spec.name} on {', '.join(map(str, calib))} ...")
            calibrate_bf16(source, calib, subset=300, threads=threads)
        crop = spec.preprocessing.crop_size
        # Pixels, as the service sends them (OpenVINO normalises in its graph, the others in numpy).
        images = (np.stack([preprocess_pixels(p.read_bytes(), spec.preprocessing) for p in samples]) if samples
                  else np.random.default_rng(0).integers(0, 256, (max(batches), crop, crop, 3), dtype=np.uint8))
        for engine, info in ENGINES.items():
            for precision in info.precisions:
                try:
                    for label, runner in _variants(engine, precision, source, threads):
                        for size in batches:
                            before = runner.counts() if isinstance(runner, GuardedEngine) else None
                            row = time_engine(_timed_batches(runner.run, images, size), images[:size], warmup, runs)
                            gflops = flops / (row["ms_per_image"] / 1e3) / 1e9
                            peak = peaks["bf16" if precision == "bf16" else "fp32"]["gflops"]
                            rows.append({"model": spec.name, "gflop_per_image": flops / 1e9, "engine": engine,
                                         "precision": label, "threads": threads, **row,
                                         "effective_gflops": gflops, "fraction_of_peak": gflops / peak})
                            if before is not None:
                                images_run, rechecked = np.subtract(runner.counts(), before)
                                rows[-1]["rechecked_fraction"] = float(rechecked / max(1, images_run))
                            log(f"  {spec.name:18} {engine:11} {label:10} b{size}: {row['ms_per_image']:7.2f} ms/image")
                        del runner
                except WanwuError as err:
                    log(f"skip {spec.name} {engine}/{precision}: {err}")
    return {"threads": threads, "runs": runs, "peaks": peaks, "rows": rows,
            "images": f"{len(samples)} sample photos" if samples else "random pixels"}
