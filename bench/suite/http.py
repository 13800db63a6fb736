"""End to end over HTTP: the seed service, the LitServe + ONNX Runtime peer and ``wanwu serve``, in the same run.

Like with like: ResNet-18 on every side (wanwu loads a checkpoint synthesized in the official
format, passed with --weights; the seed and the peer use the seed's fixed random weights: speed does
not depend on the values), the same images, the same load generator (``load.py`` of the seed bench).
wanwu's result cache is off, since the load cycles through 100 images and would otherwise be
answered from cache. Servers are restarted for every round and the configurations alternate; results
are medians over rounds. Every measured start is a second start: an unmeasured first one exported
and compiled wanwu's model, or made the peer's venv and ONNX model. Each server is stopped, every
process of it gone, before the next one starts (``servers.stop``).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.checkpoints import synthesize_resnet18

from bench.suite.servers import CONFIGS, PEERS, VARIANTS, start, stop


@dataclass(frozen=True)
class Workload:
    concurrency: int
    images: Path


def prepare_resnet18(scratch: Path, calib: Path, int8: bool) -> tuple[Path, Path]:
    """A ResNet-18 checkpoint synthesized in the official format and a fresh store; with ``int8``, its INT8 model
    (auto picks int8 only where one is ready)."""
    weights = synthesize_resnet18(scratch / "resnet18-synthetic.pth")
    home = scratch / "home"
    if int8:
        subprocess.run([sys.executable, "-m", "wanwu.cli", "--home", str(home), "quantize", "resnet18", "--weights", str(weights),
                        "--calib", str(calib), "--subset", "64", "--no-augment"],
                       check=True, capture_output=True)
    return weights, home


def load_python(seed_bench: Path) -> str:
    """The Python of the seed bench's virtualenv (made by its ``setup.sh`` on first use), which runs ``load.py``."""
    setup = subprocess.run([str(seed_bench / "setup.sh")], capture_output=True, text=True, check=True)
    return setup.stdout.strip() + "/bin/python"


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
    after a warm-up one). Engine: median single-thread ms/image at batch 8 in the variant's engine
    and precision, on the pixels of the same images (``wanwu.benchmark.time_engine``, as ``wanwu
    bench`` times). Both are core-milliseconds, measured here and now.
    """
    from bench.suite.preprocess import per_image_ms
    from wanwu.benchmark import pixel_inputs, time_engine
    from wanwu.loader import ModelRequest, load, open_runner
    from wanwu.models import get_model_spec
    from wanwu.sources import open_source

    spec = get_model_spec("resnet18")
    source = open_source(spec, home, weights)
    cores = len(os.sched_getaffinity(0))
    out = {}
    for images in image_sets:
        paths = sorted(p for p in images.iterdir() if p.is_file())[:20]
        datas, pixels = [p.read_bytes() for p in paths], pixel_inputs(spec.preprocessing, paths)
        engine_ms: dict[tuple[str, str], float] = {}
        for variant in variants:
            config = VARIANTS[variant]
            precision = config.precision
            if precision == "auto":  # what the server picked (cached at its first start: 2 threads, batch 8)
                precision = load(ModelRequest(engine=config.engine, threads=cores), source).precision
                log(f"{variant}: auto picks {precision} on this CPU")
            key = (config.engine, precision)
            if key not in engine_ms:
                runner = open_runner(source, key[0], key[1], threads=1)
                engine_ms[key] = time_engine(runner.run, pixels, runs=8, batch=8)["ms_per_image"]
                del runner
            decode_ms = per_image_ms(datas, spec.preprocessing, config.fast_decode, runs=3)
            ceiling = cores * 1000 / (decode_ms + engine_ms[key])
            out[f"{variant}|{images.name}"] = {"decode_core_ms": decode_ms, "engine_core_ms": engine_ms[key], "rps": ceiling}
            log(f"ceiling {variant} {images.name}: decode {decode_ms:.1f} + engine {engine_ms[key]:.1f} core-ms/image "
                f"-> {ceiling:.1f} req/s")
    return out


def median_row(runs: list[dict]) -> dict:
    keys = ("rps", "p50_ms", "p99_ms", "errors", "rss_peak_mb", "cold_start_s", "server_cpu_ms_per_req")
    present = [k for k in keys if any(r.get(k) is not None for r in runs)]
    return {k: statistics.median(r[k] for r in runs if r.get(k) is not None) for k in present}


def _first_starts(configs: list[str], seed_bench: Path, weights: Path, home: Path, extra: list[str],
                  log: Callable[[str], None]) -> dict[str, float]:
    """Start each wanwu variant and peer once, unmeasured: the first start exports and compiles, or installs."""
    first_start = {}
    for config in (c for c in configs if c in VARIANTS or c in PEERS):
        server = start(config, 18190, seed_bench, weights, home, extra)
        first_start[config] = server.seconds
        log(f"{config} first start: {server.seconds:.2f} s; stopped: {stop(server.pid)}")
    return first_start


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
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown:
        raise ValueError(f"unknown configuration(s) {unknown}; choose from {', '.join(CONFIGS)}")
    extra = wanwu_args or []
    seed_python = load_python(seed_bench)
    variants = [c for c in configs if c in VARIANTS]
    weights, home = prepare_resnet18(scratch, workloads[0].images, int8=any(VARIANTS[v].precision in ("int8", "auto") for v in variants))
    first_start = _first_starts(configs, seed_bench, weights, home, extra, log)
    ceilings = measure_ceilings(weights, home, variants, sorted({w.images for w in workloads}), log)

    runs: dict[str, list[dict]] = {}
    for round_no in range(rounds):
        for config in configs:
            server = start(config, 18100 + round_no, seed_bench, weights, home, extra)
            try:
                for workload in workloads:
                    result = run_load(seed_bench, seed_python, server.url, workload, seconds, server.pid, tool)
                    result["cold_start_s"] = server.seconds
                    runs.setdefault(f"{config}|{workload.concurrency}|{workload.images.name}", []).append(result)
                    log(f"round {round_no + 1} {config:15s} c={workload.concurrency:<3d} {workload.images.name}: "
                        f"{result['rps']:.1f} req/s p50 {result['p50_ms']} p99 {result['p99_ms']} errors {result['errors']}")
            finally:
                log(f"stopped {config}: {stop(server.pid)}")
                time.sleep(1)  # let the load generator's and the server's last sockets close
    return {"seconds": seconds, "rounds": rounds, "tool": tool, "wanwu_args": extra,
            "medians": {key: median_row(rows) for key, rows in runs.items()},
            "ceilings": ceilings, "first_start_s": first_start, "runs": runs}
