"""Timing engines honestly: warm up, repeat, report medians; and the CPU's matmul peak to compare with."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np


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


def time_engine(run: Callable[[np.ndarray], np.ndarray], batch: np.ndarray, warmup: int = 3, runs: int = 20) -> dict:
    times = time_runs(lambda: run(batch), warmup, runs)
    median = statistics.median(times)
    n = batch.shape[0]
    return {
        "batch": n,
        "runs": runs,
        "ms_per_batch": median * 1e3,
        "ms_per_image": median * 1e3 / n,
        "images_per_s": n / median,
        "ms_per_image_min": min(times) * 1e3 / n,
    }


def matmul_peak(dtype: str = "fp32", size: int = 2048, threads: int = 1, runs: int = 10) -> dict:
    """GFLOP/s of a large square matmul in torch (oneDNN/MKL): a practical peak for this CPU."""
    import torch

    torch.set_num_threads(threads)
    torch_dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype]
    a = torch.randn(size, size).to(torch_dtype)
    b = torch.randn(size, size).to(torch_dtype)
    times = time_runs(lambda: torch.mm(a, b), warmup=2, runs=runs)
    best, median = min(times), statistics.median(times)
    # A peak is a best case: the fastest run, not the median (other processes only ever slow it down).
    return {
        "dtype": dtype,
        "size": size,
        "threads": threads,
        "ms_best": best * 1e3,
        "ms_median": median * 1e3,
        "gflops": 2 * size**3 / best / 1e9,
        "gflops_median": 2 * size**3 / median / 1e9,
    }


def model_flops(model, crop: int) -> int:  # type: ignore[no-untyped-def]
    """FLOPs of one image (2 × multiply-accumulates of every convolution and linear layer)."""
    import torch

    macs = 0

    def count(module, inputs, output) -> None:  # type: ignore[no-untyped-def]
        nonlocal macs
        if isinstance(module, torch.nn.Conv2d):
            kh, kw = module.kernel_size
            macs += output.numel() * (module.in_channels // module.groups) * kh * kw
        elif isinstance(module, torch.nn.Linear):
            macs += output.numel() * module.in_features

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)]
    try:
        with torch.inference_mode():
            model(torch.zeros(1, 3, crop, crop))
    finally:
        for hook in hooks:
            hook.remove()
    return 2 * macs
