#!/usr/bin/env python3
"""Every part of the benchmark in one run: engines, preprocessing, HTTP against the seed and the peer, cold start.

    .venv/bin/python bench/all.py [--parts engines preprocess http] [--json-out bench-results.json]

~35 min with the defaults; needs ../shared (or --shared DIR, or $WANWU_SHARED) for the images, the
seed service and the peer. Prints one table (the CPU model in its title); --json prints every number
instead, --json-out writes them to a file as well. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

from rich.console import Console

if __package__ in (None, ""):  # run as a file: bench/ and tests/ are not installed, import them from this checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.suite.common import SHARED, log, title, write_json  # noqa: E402
from bench.suite.report import build_table  # noqa: E402
from bench.suite.servers import CONFIGS  # noqa: E402
from bench.suite.suite import DEFAULT_CONFIGS, PARTS, SuiteOptions, run_suite  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS), help="only these parts")
    ap.add_argument("--shared", type=Path, default=SHARED, help="folder with data/imagenet-samples, data/photos and bench/")
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)), help="engine threads (default: all cores)")
    ap.add_argument("--runs", type=int, default=20, help="engines: timed runs per cell (median reported)")
    ap.add_argument("--batch-size", "--batch", dest="batch", type=int, action="append",
                    help="engines: batch size(s), repeatable (default: 1 and 8)")
    ap.add_argument("--seconds", type=float, default=12, help="HTTP: load per measurement")
    ap.add_argument("--rounds", type=int, default=3, help="HTTP: server restarts per configuration (medians)")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--configs", nargs="+", default=list(DEFAULT_CONFIGS), choices=CONFIGS, metavar="CONFIG",
                    help=f"HTTP: configurations to compare (default: {', '.join(DEFAULT_CONFIGS)}; any of: {', '.join(CONFIGS)})")
    ap.add_argument("--no-large", action="store_true", help="HTTP: skip the 12 MP photos at concurrency 4")
    ap.add_argument("--json", action="store_true", help="print every number as JSON instead of the table")
    ap.add_argument("--json-out", type=Path, help="write every number to this file")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    options = SuiteOptions(shared=args.shared.resolve(), threads=args.threads, parts=tuple(args.parts), runs=args.runs,
                           batches=tuple(args.batch or (1, 8)), seconds=args.seconds, rounds=args.rounds,
                           concurrency=tuple(args.concurrency), configs=tuple(args.configs), large=not args.no_large,
                           tool="wrk" if shutil.which("wrk") else "aiohttp")
    try:
        result = run_suite(options, log=log)
    except (FileNotFoundError, ValueError) as err:
        sys.exit(f"error: {err}")
    if args.json_out:
        write_json(args.json_out, result)
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False, default=str))
        return 0
    what = (f"bench/all.py: {options.threads} threads; engines: medians of {options.runs} runs; "
            f"HTTP: medians of {options.rounds} rounds × {options.seconds:g} s, {options.tool}")
    Console(width=200).print(build_table(result, title(what)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
