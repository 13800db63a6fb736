"""What the CPU could do, to compare engines with: a large matmul's GFLOP/s, and a model's FLOPs per image."""

from __future__ import annotations

import statistics

from wanwu.benchmark import time_runs


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


def measure_peaks(threads: int) -> dict[str, dict]:
    # best over a few sizes: no single size is the fastest for both dtypes on every CPU
    return {
        dtype: max((matmul_peak(dtype, size, threads, runs=5) for size in (1024, 2048, 3072)), key=lambda p: p["gflops"])
        for dtype in ("fp32", "bf16")
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
