"""End to end over HTTP: the seed service (as written, tuned) against ``wanwu serve``, in the same run.

Like with like: ResNet-18 on both sides (wanwu loads a checkpoint synthesized in the official
format, passed with --weights; the seed uses its fixed random weights: speed does not depend on the
values), the same images, the same load generator (``load.py`` of the seed bench). wanwu's result
cache is off, since the load cycles through 100 images and would otherwise be answered from cache.
Servers are restarted for every round and the configurations alternate; results are medians over
rounds. Every measured wanwu start is a second start (an unmeasured first one exported and compiled).
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wanwu.benchsuite.checkpoint import synthesize_resnet18


@dataclass(frozen=True)
class Variant:
    """A `wanwu serve` configuration (each also gets --model resnet18 --weights <synthetic> --cache-size 0)."""

    engine: str = "openvino"
    precision: str = "fp32"
    fast_decode: bool = False
    extra: tuple[str, ...] = ()

    @property
    def flags(self) -> list[str]:
        fast = ["--fast-decode"] if self.fast_decode else []
        return ["--engine", self.engine, "--precision", self.precision, *fast, *self.extra]


VARIANTS = {
    "wanwu": Variant(),
    "wanwu ort": Variant(engine="onnxruntime"),
    "wanwu w0": Variant(extra=("--max-wait-ms", "0")),
    "wanwu 2w": Variant(extra=("--inference-workers", "2")),
    "wanwu b16": Variant(extra=("--max-batch", "16")),
    "wanwu bf16": Variant(precision="bf16"),
    "wanwu int8": Variant(precision="int8"),
    "wanwu fast": Variant(fast_decode=True),
    "wanwu bf16 fast": Variant(precision="bf16", fast_decode=True),
    "wanwu int8 fast": Variant(precision="int8", fast_decode=True),
}
SEEDS = ("seed as written", "seed tuned")


@dataclass(frozen=True)
class Workload:
    concurrency: int
    images: Path


def wait_http(url: str, timeout: float = 120.0) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return time.perf_counter() - started
        except OSError:
            pass
        time.sleep(0.02)
    raise RuntimeError(f"{url} never answered 200")


def start_seed(seed_bench: Path, config: str, port: int) -> tuple[int, float]:
    env = {k: v for k, v in os.environ.items() if k not in ("SEED_THREADS", "OMP_WAIT_POLICY")}
    if config == "seed tuned":
        env["SEED_THREADS"] = "1"  # the seed README's tuning: one torch thread per gunicorn worker
    started = time.perf_counter()
    out = subprocess.run([str(seed_bench / "run_seed.sh"), str(port), "2"], env=env, capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1]), time.perf_counter() - started


def start_wanwu(port: int, weights: Path, home: Path, flags: list[str]) -> tuple[int, float]:
    cmd = [sys.executable, "-m", "wanwu.cli", "--home", str(home), "serve", "--port", str(port), "--model", "resnet18",
           "--weights", str(weights), "--cache-size", "0", *flags]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    wait_http(f"http://127.0.0.1:{port}/readyz")
    return proc.pid, time.perf_counter() - started


def stop(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    for _ in range(100):
        try:
            os.kill(pid, 0)
            time.sleep(0.1)
        except ProcessLookupError:
            return
    os.kill(pid, signal.SIGKILL)


def run_load(seed_bench: Path, python: str, url: str, workload: Workload, seconds: float, pid: int, tool: str) -> dict:
    cmd = [python, str(seed_bench / "load.py"), "--url", url, "--images", str(workload.images),
           "--concurrency", str(workload.concurrency), "--duration", str(seconds), "--warmup", str(2 * workload.concurrency),
           "--pid", str(pid), "--json", "--tool", tool]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure_ceilings(weights: Path, home: Path, variants: list[str], image_sets: list[Path], log: Callable[[str], None]) -> dict:
    """Requests/s the cores could serve doing nothing but decode and infer.

    Decode: bytes -> the crop's pixels (exact or fast, as the variant serves), single-threaded, timed
    like the preprocessing part (``per_image_ms``: mean per image over the set, median of 3 passes
    after a warm-up one). Engine: median single-thread ms/image at batch 8 in the variant's engine and precision.
    Both are core-milliseconds, measured here and now.
    """
    from wanwu.artifacts import open_source
    from wanwu.benchmark import time_engine
    from wanwu.benchsuite.preprocess import per_image_ms
    from wanwu.models import get_model_spec
    from wanwu.precision import open_engine

    spec = get_model_spec("resnet18")
    source = open_source(spec, home, weights)
    cores = len(os.sched_getaffinity(0))
    batch = np.random.default_rng(0).integers(0, 256, (8, 224, 224, 3), dtype=np.uint8)  # pixels, as served
    engine_ms: dict[tuple[str, str], float] = {}
    out = {}
    for variant in variants:
        variant_spec = VARIANTS[variant]
        key = (variant_spec.engine, variant_spec.precision)
        if key not in engine_ms:
            runner = open_engine(key[0], source, threads=1, precision=key[1])
            engine_ms[key] = time_engine(runner.run, batch, runs=8)["ms_per_image"]
        for images in image_sets:
            datas = [p.read_bytes() for p in sorted(p for p in images.iterdir() if p.is_file())[:20]]
            decode_ms = per_image_ms(datas, spec.preprocessing, variant_spec.fast_decode, runs=3)
            ceiling = cores * 1000 / (decode_ms + engine_ms[key])
            out[f"{variant}|{images.name}"] = {"decode_core_ms": decode_ms, "engine_core_ms": engine_ms[key], "rps": ceiling}
            log(f"ceiling {variant} {images.name}: decode {decode_ms:.1f} + engine {engine_ms[key]:.1f} core-ms/image "
                f"-> {ceiling:.1f} req/s")
    return out


def median_row(runs: list[dict]) -> dict:
    keys = ("rps", "p50_ms", "p99_ms", "errors", "rss_peak_mb", "cold_start_s", "server_cpu_ms_per_req")
    present = [k for k in keys if any(r.get(k) is not None for r in runs)]
    return {k: statistics.median(r[k] for r in runs if r.get(k) is not None) for k in present}


def measure_http(
    seed_bench: Path,
    workloads: list[Workload],
    configs: list[str],
    scratch: Path,
    seconds: float = 12,
    rounds: int = 3,
    tool: str = "wrk",
    wanwu_args: list[str] | None = None,
    log: Callable[[str], None] = print,
) -> dict:
    """Rows keyed ``config|concurrency|images`` (medians over rounds), ceilings, first starts and every run."""
    unknown = [c for c in configs if c not in VARIANTS and c not in SEEDS]
    if unknown:
        raise ValueError(f"unknown configuration(s) {unknown}; choose from {', '.join((*SEEDS, *VARIANTS))}")
    extra = wanwu_args or []
    setup = subprocess.run([str(seed_bench / "setup.sh")], capture_output=True, text=True, check=True)
    seed_python = setup.stdout.strip() + "/bin/python"
    weights = synthesize_resnet18(scratch / "resnet18-synthetic.pth")
    home = scratch / "home"
    variants = [c for c in configs if c in VARIANTS]
    if any(VARIANTS[v].precision == "int8" for v in variants):
        subprocess.run([sys.executable, "-m", "wanwu.cli", "--home", str(home), "quantize", "resnet18", "--weights", str(weights),
                        "--calib", str(workloads[0].images), "--subset", "64", "--no-augment"],
                       check=True, capture_output=True)
    first_start = {}
    for variant in variants:  # the unmeasured first start exports and compiles
        pid, first_start[variant] = start_wanwu(18190, weights, home, VARIANTS[variant].flags + extra)
        stop(pid)
        log(f"{variant} first start (export + compile): {first_start[variant]:.2f} s")
    ceilings = measure_ceilings(weights, home, variants, sorted({w.images for w in workloads}), log)

    runs: dict[str, list[dict]] = {}
    for round_no in range(rounds):
        for config in configs:
            port = 18100 + round_no
            if config in VARIANTS:
                pid, cold = start_wanwu(port, weights, home, VARIANTS[config].flags + extra)
                url = f"http://127.0.0.1:{port}/v1/classify"
            else:
                pid, cold = start_seed(seed_bench, config, port)
                url = f"http://127.0.0.1:{port}/"
            try:
                for workload in workloads:
                    result = run_load(seed_bench, seed_python, url, workload, seconds, pid, tool) | {"cold_start_s": cold}
                    runs.setdefault(f"{config}|{workload.concurrency}|{workload.images.name}", []).append(result)
                    log(f"round {round_no + 1} {config:15s} c={workload.concurrency:<3d} {workload.images.name}: "
                        f"{result['rps']:.1f} req/s p50 {result['p50_ms']} p99 {result['p99_ms']} errors {result['errors']}")
            finally:
                stop(pid)
                time.sleep(1)
    return {"seconds": seconds, "rounds": rounds, "tool": tool, "wanwu_args": extra,
            "medians": {key: median_row(rows) for key, rows in runs.items()},
            "ceilings": ceilings, "first_start_s": first_start, "runs": runs}
