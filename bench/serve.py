#!/usr/bin/env python3
"""End-to-end HTTP benchmark: the seed service (as written, tuned) against `wanwu serve`, same run.

Like with like: ResNet-18 on both sides (wanwu loads a checkpoint synthesized in the official
format, passed with --weights; the seed uses its fixed random weights: speed does not depend on
the values), the same images (../shared/data/imagenet-samples), the same load generator
(../shared/bench/load.py). wanwu's result cache is turned off here, since the load cycles
through 100 images and would otherwise be answered from cache. Servers are restarted for every
round and the configurations alternate; the table shows medians over rounds.

    .venv/bin/python bench/serve.py [--seconds 15] [--rounds 3] [--concurrency 16] [--large]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("WANWU_SHARED", REPO.parent / "shared"))
BENCH = SHARED / "bench"
SAMPLES = SHARED / "data" / "imagenet-samples"
sys.path.insert(0, str(REPO))


# wanwu variants: flags for `wanwu serve` (each also gets --model resnet18 --weights <synthetic>).
VARIANTS = {
    "wanwu": ["--engine", "openvino"],
    "wanwu ort": ["--engine", "onnxruntime"],
    "wanwu w0": ["--engine", "openvino", "--max-wait-ms", "0"],
    "wanwu 2w": ["--engine", "openvino", "--inference-workers", "2"],
    "wanwu b16": ["--engine", "openvino", "--max-batch", "16"],
    "wanwu 2w b4": ["--engine", "openvino", "--inference-workers", "2", "--max-batch", "4"],
    "wanwu ort 2w": ["--engine", "onnxruntime", "--inference-workers", "2"],
    "wanwu bf16": ["--engine", "openvino", "--precision", "bf16"],
    "wanwu int8": ["--engine", "openvino", "--precision", "int8"],
    "wanwu fast": ["--engine", "openvino", "--fast-decode"],
    "wanwu bf16 fast": ["--engine", "openvino", "--precision", "bf16", "--fast-decode"],
    "wanwu int8 fast": ["--engine", "openvino", "--precision", "int8", "--fast-decode"],
}


def _wait_http(url: str, timeout: float = 120.0) -> float:
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


def start_seed(config: str, port: int) -> tuple[int, float]:
    env = {k: v for k, v in os.environ.items() if k not in ("SEED_THREADS", "OMP_WAIT_POLICY")}
    if config == "seed tuned":
        env["SEED_THREADS"] = "1"
    started = time.perf_counter()
    out = subprocess.run([str(BENCH / "run_seed.sh"), str(port), "2"], env=env, capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1]), time.perf_counter() - started


def start_wanwu(port: int, weights: Path, home: Path, extra: list[str]) -> tuple[int, float]:
    cmd = [sys.executable, "-m", "wanwu.cli", "--home", str(home), "serve", "--port", str(port), "--model", "resnet18",
           "--weights", str(weights), "--cache-size", "0", *extra]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    _wait_http(f"http://127.0.0.1:{port}/readyz")
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


def load(python: str, url: str, images: Path, concurrency: int, seconds: float, pid: int, tool: str) -> dict:
    cmd = [python, str(BENCH / "load.py"), "--url", url, "--images", str(images), "--concurrency", str(concurrency),
           "--duration", str(seconds), "--warmup", str(2 * concurrency), "--pid", str(pid), "--json", "--tool", tool]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure_ceilings(weights: Path, home: Path, variants: list[str], workloads: list[tuple[int, Path]]) -> dict:
    """Requests/s the two cores could serve if they did nothing but decode and infer.

    Decode: median single-thread preprocess time of the workload's images (exact or fast decode,
    as the variant serves). Engine: median single-thread ms/image at batch 8 in the variant's
    precision. Both are core-milliseconds, measured here, now, on this machine.
    """
    from wanwu.artifacts import open_source
    from wanwu.benchmark import time_engine
    from wanwu.engines import create_engine
    from wanwu.models import get_model_spec
    from wanwu.preprocess import preprocess

    spec = get_model_spec("resnet18")
    source = open_source(spec, home, weights)
    cores = len(os.sched_getaffinity(0))
    batch = np.random.default_rng(0).standard_normal((8, 3, 224, 224), dtype=np.float32)
    engine_ms: dict[tuple[str, str], float] = {}
    out = {}
    for variant in variants:
        flags = VARIANTS[variant]
        engine = flags[flags.index("--engine") + 1]
        precision = flags[flags.index("--precision") + 1] if "--precision" in flags else "fp32"
        if (engine, precision) not in engine_ms:
            runner = create_engine(engine, source, threads=1, precision=precision)
            engine_ms[(engine, precision)] = time_engine(runner.run, batch, runs=8)["ms_per_image"]
        for _, images in workloads:
            files = sorted(p for p in images.iterdir() if p.is_file())[:20]
            datas = [p.read_bytes() for p in files]
            fast = "--fast-decode" in flags
            times = []
            for data in datas:
                started = time.perf_counter()
                preprocess(data, spec.preprocessing, fast_decode=fast)
                times.append((time.perf_counter() - started) * 1000)
            decode_ms = statistics.median(times)
            out[(variant, images.name)] = cores * 1000 / (decode_ms + engine_ms[(engine, precision)])
            print(f"ceiling {variant} {images.name}: decode {decode_ms:.1f} + engine {engine_ms[(engine, precision)]:.1f} "
                  f"core-ms/image -> {out[(variant, images.name)]:.1f} req/s", file=sys.stderr)
    return out


def median_row(runs: list[dict]) -> dict:
    keys = ("rps", "p50_ms", "p99_ms", "errors", "rss_peak_mb", "cold_start_s")
    return {k: statistics.median(r[k] for r in runs if r.get(k) is not None) for k in keys if any(r.get(k) is not None for r in runs)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[16])
    ap.add_argument("--configs", nargs="+", default=["seed as written", "seed tuned", "wanwu"],
                    help=f"seed as written, seed tuned, and any of: {', '.join(VARIANTS)}")
    ap.add_argument("--wanwu-args", default="", help="extra flags for every wanwu variant")
    ap.add_argument("--tool", choices=("aiohttp", "wrk"), default="wrk" if Path("/usr/bin/wrk").exists() else "aiohttp")
    ap.add_argument("--large", action="store_true", help="also 12 MP photos at concurrency 4")
    ap.add_argument("--json-out", type=Path)
    args = ap.parse_args()
    if not BENCH.is_dir():
        sys.exit(f"seed bench not found at {BENCH}")

    from tests.helpers import synthesize_resnet18

    seed_python = subprocess.run([str(BENCH / "setup.sh")], capture_output=True, text=True, check=True).stdout.strip() + "/bin/python"
    work = Path(tempfile.mkdtemp(prefix="wanwu-bench-"))
    weights = synthesize_resnet18(work / "resnet18-synthetic.pth")
    home = work / "home"
    workloads = [(c, SAMPLES) for c in args.concurrency]
    if args.large:
        large = work / "large"
        subprocess.run([seed_python, str(BENCH / "make_large.py"), str(large)], check=True, capture_output=True)
        workloads.append((4, large))
    variants = [c for c in args.configs if c.startswith("wanwu")]
    if any("int8" in v for v in variants):
        subprocess.run([sys.executable, "-m", "wanwu.cli", "--home", str(home), "quantize", "resnet18", "--weights", str(weights),
                        "--calib", str(SAMPLES), "--subset", "64", "--no-augment"], check=True, capture_output=True)
    # One unmeasured start per variant converts and compiles, so every measured start is a warm-cache start.
    for variant in variants:
        pid, first = start_wanwu(18190, weights, home, VARIANTS[variant] + args.wanwu_args.split())
        stop(pid)
        print(f"{variant} first start (export + compile): {first:.2f} s", file=sys.stderr)
    ceilings = measure_ceilings(weights, home, variants, workloads)

    runs: dict[tuple[str, int, str], list[dict]] = {}
    for round_no in range(args.rounds):
        for config in args.configs:
            port = 18100 + round_no
            if config.startswith("wanwu"):
                pid, cold = start_wanwu(port, weights, home, VARIANTS[config] + args.wanwu_args.split())
                url = f"http://127.0.0.1:{port}/v1/classify"
            else:
                pid, cold = start_seed(config, port)
                url = f"http://127.0.0.1:{port}/"
            try:
                for concurrency, images in workloads:
                    result = load(seed_python, url, images, concurrency, args.seconds, pid, args.tool)
                    result["cold_start_s"] = cold
                    runs.setdefault((config, concurrency, images.name), []).append(result)
                    print(f"round {round_no + 1} {config:15s} c={concurrency:<3d} {images.name}: {result['rps']:.1f} req/s "
                          f"p50 {result['p50_ms']} p99 {result['p99_ms']} errors {result['errors']}", file=sys.stderr)
            finally:
                stop(pid)
                time.sleep(1)

    table = {f"{c}|{n}|{i}": median_row(r) for (c, n, i), r in runs.items()}
    print(f"\nmedians of {args.rounds} rounds, {args.seconds:g} s each, tool {args.tool}, wanwu {args.wanwu_args}")
    print(f"{'config':16s} {'c':>3s} {'images':17s} {'req/s':>6s} {'p50 ms':>7s} {'p99 ms':>7s} {'err':>4s} {'RSS MB':>7s} "
          f"{'cold s':>6s} {'×tuned':>7s} {'×as-wr':>7s} {'ceiling':>8s}")
    for key, row in table.items():
        config, c, images = key.split("|")
        tuned = table.get(f"seed tuned|{c}|{images}", {}).get("rps")
        written = table.get(f"seed as written|{c}|{images}", {}).get("rps")
        ceiling = ceilings.get((config, images))
        ratio = lambda base, rps=row["rps"]: f"{rps / base:6.2f}×" if base else "      -"  # noqa: E731
        frac = f"{row['rps'] / ceiling:7.0%}" if ceiling else "       -"
        print(f"{config:16s} {c:>3s} {images:17s} {row['rps']:6.1f} {row['p50_ms']:7.0f} {row['p99_ms']:7.0f} "
              f"{row['errors']:4.0f} {row.get('rss_peak_mb', 0):7.0f} {row['cold_start_s']:6.2f} {ratio(tuned)} {ratio(written)} {frac}")
    print("ceiling = 2 cores ÷ (decode core-ms + engine core-ms per image), measured in this run:")
    for (variant, images), value in sorted(ceilings.items()):
        print(f"  {variant:16s} {images:17s} {value:6.1f} req/s")
    if args.json_out:
        args.json_out.write_text(json.dumps({"args": vars(args) | {"json_out": str(args.json_out)}, "medians": table,
                                             "ceilings": {f"{v}|{i}": c for (v, i), c in ceilings.items()},
                                             "runs": {"|".join(map(str, k)): v for k, v in runs.items()}}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
