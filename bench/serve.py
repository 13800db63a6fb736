#!/usr/bin/env python3
"""End-to-end HTTP benchmark: the seed service, the LitServe + ONNX Runtime peer and `wanwu serve`, same run.

The measuring is bench.suite.http (also the HTTP part of bench/all.py); this script picks
configurations and workloads and prints the HTTP and cold-start rows with the ceilings, and the CPU.

    .venv/bin/python bench/serve.py [--seconds 12] [--rounds 3] [--concurrency 16] [--large] [--configs ...]
    .venv/bin/python bench/serve.py --seconds 3 --rounds 1 --configs "seed tuned" peer wanwu   # a smoke run
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from rich.console import Console

if __package__ in (None, ""):  # run as a file: bench/ and tests/ are not installed, import them from this checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.suite.common import SHARED, log, title, write_json  # noqa: E402
from bench.suite.http import Workload, measure_http  # noqa: E402
from bench.suite.preprocess import make_large  # noqa: E402
from bench.suite.report import build_table  # noqa: E402
from bench.suite.servers import CONFIGS  # noqa: E402
from bench.suite.suite import jpegs  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=12)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[16])
    ap.add_argument("--configs", nargs="+", default=["seed as written", "seed tuned", "peer", "wanwu"], choices=CONFIGS,
                    metavar="CONFIG", help=f"any of: {', '.join(CONFIGS)}")
    ap.add_argument("--wanwu-args", default="", help="extra flags for every wanwu variant")
    ap.add_argument("--tool", choices=("aiohttp", "wrk"), default="wrk" if shutil.which("wrk") else "aiohttp")
    ap.add_argument("--large", action="store_true", help="also 12 MP photos at concurrency 4")
    ap.add_argument("--json-out", type=Path)
    args = ap.parse_args()
    bench = SHARED / "bench"
    if not (bench / "load.py").is_file():
        sys.exit(f"seed bench not found at {bench} (set WANWU_SHARED to the folder with bench/ and data/)")
    with tempfile.TemporaryDirectory(prefix="wanwu-bench-") as tmp:
        workloads = [Workload(c, SHARED / "data" / "imagenet-samples") for c in args.concurrency]
        if args.large:
            large = make_large(jpegs(SHARED / "data" / "photos"), Path(tmp) / "large")
            workloads.append(Workload(4, large[0].parent))
        result = measure_http(bench, workloads, args.configs, Path(tmp), args.seconds, args.rounds, args.tool,
                              args.wanwu_args.split(), log=log)
    what = f"medians of {args.rounds} rounds × {args.seconds:g} s, tool {args.tool}"
    Console(width=200).print(build_table({"http": result}, title(what)))
    for key, ceiling in result["ceilings"].items():
        print(f"ceiling {key}: decode {ceiling['decode_core_ms']:.1f} + engine {ceiling['engine_core_ms']:.1f} core-ms "
              f"-> {ceiling['rps']:.1f} req/s")
    if args.json_out:
        write_json(args.json_out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
