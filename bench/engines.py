#!/usr/bin/env python3
"""Engines × precisions × batch sizes: ms/image and images/s (medians), against torch eager fp32 and the CPU's peak.

    .venv/bin/python bench/engines.py [--runs 20] [--threads N] [--model M] [--images DIR] [--json-out results.json]

The timing is `wanwu bench`'s (wanwu.benchmark.time_engines: the crop's uint8 pixels, as the service
sends them); bench.suite.engines adds the models, the INT8 and bf16-guard preparation and the peak
(also the engine part of bench/all.py). Models: efficientnet_lite0 and resnet18 with a synthesized
checkpoint, in a temporary store; INT8 models are made first on --calib folders (default:
../shared/data/photos, not the samples: they are the evaluation set), and the bf16 guard's margin too.
Timing runs on --images (default: the sample photos where ../shared is present; a guarded bf16
engine's cost depends on the images), else on random pixels.
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
from bench.suite.engines import bench_source, measure_engines  # noqa: E402
from bench.suite.report import build_table  # noqa: E402
from bench.suite.suite import jpegs  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="timed runs per cell (median reported)")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--batch-size", "--batch", dest="batch", type=int, action="append", help="repeatable (default: 1 and 8)")
    parser.add_argument("--model", action="append", help="default: efficientnet_lite0 and resnet18")
    parser.add_argument("--calib", type=Path, action="append", help="calibration folders for the INT8 models")
    parser.add_argument("--images", type=Path, help="JPEGs to time on (default: ../shared/data/imagenet-samples)")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    calib = args.calib or [SHARED / "data" / "photos"]
    image_dir = args.images or SHARED / "data" / "imagenet-samples"
    samples = jpegs(image_dir) if image_dir.is_dir() else None
    with tempfile.TemporaryDirectory(prefix="wanwu-bench-") as tmp:
        sources = [bench_source(m, Path(tmp) / "home", Path(tmp)) for m in args.model or ["efficientnet_lite0", "resnet18"]]
        result = measure_engines(sources, args.threads, args.batch or [1, 8], args.runs, args.warmup, calib,
                                 log=log, samples=samples)
    load = os.getloadavg()
    what = (f"{args.threads} threads, median of {args.runs} runs after {args.warmup} warm-up, {result['images']}; "
            f"load average {load[0]:.2f}")
    Console(width=200).print(build_table({"engines": result}, title(what)))
    if args.json_out:
        write_json(args.json_out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
