#!/usr/bin/env python3
"""Preprocessing cost per image, exact decode vs --fast-decode (JPEG DCT-domain downscaling), and agreement.

    .venv/bin/python bench/preprocess.py [--runs 15] [--json-out results.json]

The measuring is bench.suite.preprocess (also a part of bench/all.py): the 100 ImageNet samples
(~500×375) and 12 MP JPEGs made from ../shared/data/photos; agreement of efficientnet_lite0's top-1
on OpenVINO, exact vs fast decode, on the samples.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from rich.console import Console

if __package__ in (None, ""):  # run as a file: bench/ and tests/ are not installed, import them from this checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.suite.common import SHARED, log, title, write_json  # noqa: E402
from bench.suite.engines import bench_source  # noqa: E402
from bench.suite.preprocess import make_large, measure_preprocess  # noqa: E402
from bench.suite.report import build_table  # noqa: E402
from bench.suite.suite import jpegs  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    threads = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory(prefix="wanwu-large-") as tmp:
        sets = {
            "imagenet-samples (~500×375)": jpegs(SHARED / "data" / "imagenet-samples"),
            "12 MP (4000×3000, q90)": make_large(jpegs(SHARED / "data" / "photos"), Path(tmp) / "large"),
        }
        source = bench_source(args.model, Path(tmp) / "home", Path(tmp))
        result = measure_preprocess(source, sets, args.runs, threads=threads, log=log)
    Console(width=200).print(build_table({"preprocess": result}, title(f"median of {args.runs} passes, one thread")))
    if args.json_out:
        write_json(args.json_out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
