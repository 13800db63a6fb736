#!/usr/bin/env python3
"""Engines × precisions × batch sizes: ms/image and images/s (medians), against torch eager fp32 and the CPU's peak.

    .venv/bin/python bench/engines.py [--runs 20] [--threads N] [--json-out results.json]

The measuring is wanwu.benchsuite.engines (also the engine part of `wanwu bench --all`). Models:
efficientnet_lite0 and resnet18 with a synthesized checkpoint, in a temporary store; INT8 models are
made first on --calib folders (default: ../shared/data/photos, not the samples: they are the evaluation set),
and the bf16 guard's margin too. Timing runs on the sample photos where ../shared is present (a guarded
bf16 engine's cost depends on the images), else on random pixels.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from rich.console import Console

from wanwu.benchsuite.engines import bench_source, measure_engines
from wanwu.benchsuite.report import build_table

SHARED = Path(os.environ.get("WANWU_SHARED", Path(__file__).resolve().parents[2] / "shared"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="timed runs per cell (median reported)")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--batch", type=int, action="append", help="default: 1 and 8")
    parser.add_argument("--model", action="append", help="default: efficientnet_lite0 and resnet18")
    parser.add_argument("--calib", type=Path, action="append", help="calibration folders for the INT8 models")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    calib = args.calib or [SHARED / "data" / "photos"]
    sample_dir = SHARED / "data" / "imagenet-samples"
    samples = sorted(p for p in sample_dir.glob("*.JPEG")) if sample_dir.is_dir() else None
    with tempfile.TemporaryDirectory(prefix="wanwu-bench-") as tmp:
        sources = [bench_source(m, Path(tmp) / "home", Path(tmp)) for m in args.model or ["efficientnet_lite0", "resnet18"]]
        result = measure_engines(sources, args.threads, args.batch or [1, 8], args.runs, args.warmup, calib,
                                samples=samples)
    load = os.getloadavg()
    title = f"{args.threads} threads, median of {args.runs} runs after {args.warmup} warm-up; load average {load[0]:.2f}"
    Console(width=200).print(build_table({"engines": result}, title))
    if args.json_out:
        args.json_out.write_text(json.dumps(result | {"load_average": load}, indent=2) + "\n")
        print(f"wrote {args.json_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
