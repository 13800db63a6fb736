"""Engines × precisions × batch sizes, timed as ``wanwu bench`` times them, with the CPU's peak to compare with.

The timing is ``wanwu.benchmark.time_engines`` (the one engine benchmark): the crop's uint8 pixels
as the service sends them, from real photos where ``samples`` are given (a guarded bf16 engine's
cost depends on the images), else random. Added here: INT8 models are made first with
``wanwu.precision.int8`` on the calibration folders given, and the bf16 guard's margin with
``wanwu.precision.bf16``, so bf16 is timed plain and guarded; and the peak: a large square matmul
in torch, fp32 and bf16, timed in the same run, against effective GFLOP/s = model FLOPs (2 ×
conv/linear MACs) / time. The ratios to torch eager and to the engine's own fp32 at the same batch
are the report's (``report.engine_rows``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.checkpoints import synthesize_resnet18

from bench.suite.peak import measure_peaks, model_flops
from wanwu.benchmark import Opener, pixel_inputs, time_engines
from wanwu.engines import ENGINES
from wanwu.loader import open_runner
from wanwu.models import get_model_spec
from wanwu.precision.bf16 import calibrate_bf16, latest_guard
from wanwu.precision.int8 import int8_artifacts, quantize
from wanwu.sources import ModelSource, open_source


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


def _opener(source: ModelSource, threads: int) -> Opener:
    return lambda name, precision, guard: open_runner(source, name, precision, threads, guard=guard)


def prepare_precisions(source: ModelSource, calib: list[Path], threads: int, log: Callable[[str], None]) -> None:
    """The INT8 model and the bf16 guard's margin, made on ``calib`` where the store has none yet."""
    if not calib or not all(d.is_dir() for d in calib):
        return
    folders = ", ".join(map(str, calib))
    if not int8_artifacts(source.bundle, "openvino"):
        log(f"quantizing {source.spec.name} on {folders} ...")
        quantize(source, calib, subset=300, threads=threads)
    if latest_guard(source.bundle) is None and _has_bf16():
        log(f"measuring the bf16 guard margin of {source.spec.name} on {folders} ...")
        calibrate_bf16(source, calib, subset=300, threads=threads)


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
        prepare_precisions(source, calib or [], threads, log)
        images = pixel_inputs(spec.preprocessing, samples or (), count=max(batches))
        pairs = [(engine, precision) for engine, info in ENGINES.items() for precision in info.precisions]
        for timed in time_engines(_opener(source, threads), pairs, batches, images, runs, warmup, guarded=bool(samples), skip=log):
            row = {"model": spec.name, **timed}
            gflops = flops / (row["ms_per_image"] / 1e3) / 1e9
            peak = peaks["bf16" if row["precision"].startswith("bf16") else "fp32"]["gflops"]
            rows.append(row | {"gflop_per_image": flops / 1e9, "effective_gflops": gflops, "fraction_of_peak": gflops / peak})
            log(f"  {spec.name:18} {row['engine']:11} {row['precision']:10} b{row['batch']}: {row['ms_per_image']:7.2f} ms/image")
    return {"threads": threads, "runs": runs, "peaks": peaks, "rows": rows,
            "images": f"{len(samples)} sample photos" if samples else "random pixels"}
