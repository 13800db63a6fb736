"""Engines × precisions × batch sizes: ms/image and images/s (medians), and the CPU's peak to compare with.

The peak is a large square matmul in torch, fp32 and bf16, timed in the same run; effective
GFLOP/s = model FLOPs (2 × conv/linear MACs, counted by forward hooks) / time. INT8 models are
made first with ``wanwu.quantize`` on the calibration folders given. The ratio to torch eager at
the same batch is the report's (``report.engine_rows``), derived from the torch rows.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from wanwu.artifacts import ModelSource, open_source
from wanwu.benchmark import matmul_peak, model_flops, time_engine
from wanwu.benchsuite.checkpoint import synthesize_resnet18
from wanwu.engines import ENGINES, create_engine
from wanwu.errors import WanwuError
from wanwu.models import get_model_spec
from wanwu.quantize import int8_artifacts, quantize


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


def measure_engines(
    sources: list[ModelSource],
    threads: int,
    batches: list[int],
    runs: int = 20,
    warmup: int = 5,
    calib: list[Path] | None = None,
    log: Callable[[str], None] = print,
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
        crop = spec.preprocessing.crop_size
        for engine, info in ENGINES.items():
            for precision in info.precisions:
                try:
                    runner = create_engine(engine, source, threads=threads, precision=precision)
                except WanwuError as err:
                    log(f"skip {spec.name} {engine}/{precision}: {err}")
                    continue
                for size in batches:
                    # Pixels, as the service sends them (OpenVINO normalises in its graph, the others in numpy).
                    batch = np.random.default_rng(0).integers(0, 256, (size, crop, crop, 3), dtype=np.uint8)
                    row = time_engine(runner.run, batch, warmup, runs)
                    gflops = flops / (row["ms_per_image"] / 1e3) / 1e9
                    peak = peaks["bf16" if precision == "bf16" else "fp32"]["gflops"]
                    rows.append({"model": spec.name, "gflop_per_image": flops / 1e9, "engine": engine,
                                 "precision": precision, "threads": threads, **row,
                                 "effective_gflops": gflops, "fraction_of_peak": gflops / peak})
                    log(f"  {spec.name:18} {engine:11} {precision:5} b{size}: {row['ms_per_image']:7.2f} ms/image")
                del runner
    return {"threads": threads, "runs": runs, "peaks": peaks, "rows": rows}
