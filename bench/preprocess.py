"""Preprocessing cost per image, exact decode vs --fast-decode (JPEG DCT-domain downscaling), and agreement.

    .venv/bin/python bench/preprocess.py [--runs 15] [--json-out results.json]

Images: the 100 ImageNet samples (~500×375 JPEGs) and 12-megapixel JPEGs (4000×3000, quality 90,
made from ../shared/data/photos the way ../shared/bench/make_large.py does, in a temporary folder).
Agreement: top-1 of efficientnet_lite0 on OpenVINO (fp32), exact vs fast decode, on the 100 samples.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from wanwu.models import get_model_spec
from wanwu.preprocess import preprocess

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("WANWU_SHARED", REPO.parent / "shared"))


def make_large(photos: list[Path], out: Path) -> list[Path]:
    paths = []
    for p in photos:
        img = Image.open(p).convert("RGB").resize((4000, 3000), Image.BICUBIC)
        path = out / f"{p.stem}_12mp.jpg"
        img.save(path, quality=90)
        paths.append(path)
    return paths


def per_image_ms(datas: list[bytes], pre, fast: bool, runs: int) -> float:  # type: ignore[no-untyped-def]
    """Median over runs of the mean time per image over the set (one warm-up pass first)."""
    for data in datas:
        preprocess(data, pre, fast_decode=fast)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        for data in datas:
            preprocess(data, pre, fast_decode=fast)
        times.append((time.perf_counter() - started) / len(datas))
    return statistics.median(times) * 1e3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    spec = get_model_spec(args.model)
    pre = spec.preprocessing
    samples = sorted((SHARED / "data" / "imagenet-samples").glob("*.JPEG"))
    photos = sorted((SHARED / "data" / "photos").glob("*.jpg"))
    results: dict = {"model": spec.name, "resize": pre.resize_size, "runs": args.runs, "sets": {}}
    with tempfile.TemporaryDirectory(prefix="wanwu-large-") as tmp:
        sets = {"imagenet-samples (~500×375)": samples, "12 MP (4000×3000, q90)": make_large(photos, Path(tmp))}
        for name, paths in sets.items():
            datas = [p.read_bytes() for p in paths]
            exact = per_image_ms(datas, pre, False, args.runs)
            fast = per_image_ms(datas, pre, True, args.runs)
            results["sets"][name] = {"images": len(paths), "exact_ms": exact, "fast_ms": fast, "speedup": exact / fast}
            print(f"{name:30} {len(paths):3} images  exact {exact:7.2f} ms  fast {fast:7.2f} ms  ×{exact / fast:.2f}")

    from wanwu.classifier import Classifier

    classifier = Classifier.load(spec.name, "openvino", threads=os.cpu_count() or 1, home=Path(tempfile.mkdtemp(prefix="wanwu-home-")))
    top1 = {}
    for fast in (False, True):
        batch = np.stack([preprocess(p.read_bytes(), pre, fast_decode=fast) for p in samples])
        top1[fast] = np.concatenate([classifier.logits(batch[i : i + 8]) for i in range(0, len(batch), 8)]).argmax(axis=1)
    agreement = float(np.mean(top1[False] == top1[True]))
    results["agreement"] = {"images": len(samples), "engine": "openvino", "top1_agreement_exact_vs_fast": agreement}
    print(f"top-1 agreement exact vs fast decode ({spec.name}, openvino, {len(samples)} samples): {agreement:.1%}")
    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
        print(f"wrote {args.json_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
