#!/usr/bin/env python3
"""End-to-end HTTP benchmark: the seed service (as written, tuned) against `wanwu serve`, same run.

The measuring is wanwu.benchsuite.http (also the HTTP part of `wanwu bench --all`); this script
picks configurations and workloads and prints the HTTP and cold-start rows with the ceilings.

    .venv/bin/python bench/serve.py [--seconds 12] [--rounds 3] [--concurrency 16] [--large] [--configs ...]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from rich.console import Console

from wanwu.benchsuite.http import SEEDS, VARIANTS, Workload, measure_http
from wanwu.benchsuite.preprocess import make_large
from wanwu.benchsuite.report import build_table

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("WANWU_SHARED", REPO.parent / "shared"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=12)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[16])
    ap.add_argument("--configs", nargs="+", default=["seed as written", "seed tuned", "wanwu"],
                    help=f"any of: {', '.join((*SEEDS, *VARIANTS))}")
    ap.add_argument("--wanwu-args", default="", help="extra flags for every wanwu variant")
    ap.add_argument("--tool", choices=("aiohttp", "wrk"), default="wrk" if Path("/usr/bin/wrk").exists() else "aiohttp")
    ap.add_argument("--large", action="store_true", help="also 12 MP photos at concurrency 4")
    ap.add_argument("--json-out", type=Path)
    args = ap.parse_args()
    bench = SHARED / "bench"
    if not bench.is_dir():
        sys.exit(f"seed bench not found at {bench}")
    scratch = Path(tempfile.mkdtemp(prefix="wanwu-bench-"))
    workloads = [Workload(c, SHARED / "data" / "imagenet-samples") for c in args.concurrency]
    if args.large:
        large = make_large(sorted((SHARED / "data" / "photos").glob("*.jpg")), scratch / "large")
        workloads.append(Workload(4, large[0].parent))
    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    result = measure_http(bench, workloads, args.configs, scratch, args.seconds, args.rounds, args.tool,
                          args.wanwu_args.split(), log=log)
    Console(width=200).print(build_table({"http": result}, f"medians of {args.rounds} rounds × {args.seconds:g} s, tool {args.tool}"))
    for key, ceiling in result["ceilings"].items():
        print(f"ceiling {key}: decode {ceiling['decode_core_ms']:.1f} + engine {ceiling['engine_core_ms']:.1f} core-ms "
              f"-> {ceiling['rps']:.1f} req/s")
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
