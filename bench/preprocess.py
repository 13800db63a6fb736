#!/usr/bin/env python3
"""Preprocessing cost per image, exact decode vs --fast-decode (JPEG DCT-domain downscaling), and agreement.

    .venv/bin/python bench/preprocess.py [--runs 15] [--json-out results.json]

The measuring is wanwu.benchsuite.preprocess (also a part of `wanwu bench --all`): the 100 ImageNet
samples (~500×375) and 12 MP JPEGs made from ../shared/data/photos; agreement of efficientnet_lite0's
top-1 on OpenVINO, exact vs fast decode, on the samples.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from wanwu.benchsuite.engines import bench_source
from wanwu.benchsuite.preprocess import make_large, measure_preprocess

SHARED = Path(os.environ.get("WANWU_SHARED", Path(__file__).resolve().parents[2] / "shared"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wanwu-large-") as tmp:
        sets = {
            "imagenet-samples (~500×375)": sorted((SHARED / "data" / "imagenet-samples").glob("*.JPEG")),
            "12 MP (4000×3000, q90)": make_large(sorted((SHARED / "data" / "photos").glob("*.jpg")), Path(tmp) / "large"),
        }
        source = bench_source(args.model, Path(tmp) / "home", Path(tmp))
        results = measure_preprocess(source, sets, args.runs, threads=len(os.sched_getaffinity(0)))
    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
        print(f"wrote {args.json_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
