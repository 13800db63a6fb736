#!/usr/bin/env python3
"""`wanwu train` on Fashion-MNIST: accuracy on the full 10,000-image test set, time per stage, vs published anchors.

    .venv/bin/python bench/train.py [--per-class 100] [--full] [--threads 2] [--json-out train.json]
    .venv/bin/python bench/train.py --mode finetune --full-only --epochs 8 --no-refit --json-out finetune.json

Data: `apt-get install dataset-fashion-mnist` (/usr/share/datasets/fashion-mnist, MIT). Writes PNG
ImageFolders into a temporary folder (not timed), then, in a fresh store:
  1. exports the base model once (timed apart: a one-time cost per store),
  2. `wanwu train` as a user runs it (a subprocess; wall time, and the stages from version.json),
  3. `wanwu eval` of the version on all 10,000 test images (images/s, top-1),
  4. adds 10 images and trains again (the embedding cache: only those 10 are extracted),
  5. with --full: the same on all 60,000 training images (--full-only: only this run, not 2-4).
--mode finetune fine-tunes the base's last block(s) (--blocks, --epochs: most epochs, --no-refit: store the
model measured on the validation split instead of training again on training + validation images).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file: bench/ and tests/ are not installed, import them from this checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests import fashion  # noqa: E402

from wanwu.training.search import CANDIDATE_BASES  # noqa: E402

ANCHORS = [
    ("Fashion-MNIST benchmark, best classical (SVC, C=10, RBF), 60,000 images", "89.7 %"),
    ("small CNNs trained from scratch, 60,000 images (published reports)", "~91-93 %"),
    ("logistic regression on Lite0 embeddings, 1,000 images, no augmentation (issue 14, 2,000-image test subset)", "85.5 %"),
]


def wanwu(home: Path, *args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    # stderr passes through: a long run's progress notes (finetune: one line per epoch) show as it goes
    done = subprocess.run([sys.executable, "-m", "wanwu.cli", "--home", str(home), *args], stdout=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise SystemExit(f"wanwu {' '.join(args)} failed (exit {done.returncode}; its stderr is above)")
    return time.perf_counter() - started, done


def train_and_eval(home: Path, data: Path, test: Path, name: str, threads: int, extra: list[str]) -> dict:
    seconds, done = wanwu(home, "train", str(data), "--name", name, "--threads", str(threads), "--json", *extra)
    summary = json.loads(done.stdout)
    eval_s, done = wanwu(home, "eval", "--json", "--model", summary["model"], "--threads", str(threads), str(test))
    result = json.loads(done.stdout)
    return {"model": summary["model"], "train_wall_s": round(seconds, 1), "stages_s": summary["timings_s"],
            "extraction": summary["extraction"], "val_top1": (summary["metrics"] or {}).get("top1"),
            "trained": {k: v for k, v in summary["head"].items() if k not in ("file", "sha256", "node")},
            "unknown": summary["unknown"], "test_images": result["images"], "test_top1": result["top1"],
            "test_top5": result["top5"], "eval_images_per_s": round(result["images_per_s"], 1), "eval_wall_s": round(eval_s, 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-class", type=int, default=100, help="training images per class (default 100: 1,000 in all)")
    ap.add_argument("--full", action="store_true", help="also train on all 60,000 training images")
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--base", default="efficientnet_lite0", help="passed to wanwu train (auto: the default, a search)")
    ap.add_argument("--val-split", default="0.2")
    ap.add_argument("--augment", default="auto", choices=("auto", "none", "flip", "all"))
    ap.add_argument("--mode", default="head", choices=("head", "finetune"))
    ap.add_argument("--features", default="auto", choices=("auto", "global", "pyramid"), help="head mode: passed to wanwu train")
    ap.add_argument("--epochs", help="passed to wanwu train (head: L-BFGS iterations; finetune: most epochs)")
    ap.add_argument("--blocks", help="finetune: how many of the base's last blocks train")
    ap.add_argument("--no-refit", action="store_true", help="passed to wanwu train")
    ap.add_argument("--full-only", action="store_true", help="only the run on all 60,000 training images")
    ap.add_argument("--json-out", type=Path)
    args = ap.parse_args()
    args.full = args.full or args.full_only
    if not fashion.available():
        raise SystemExit(f"Fashion-MNIST not found at {fashion.FASHION_DIR}: apt-get install dataset-fashion-mnist")
    work = Path(tempfile.mkdtemp(prefix="wanwu-bench-train-"))
    home, data, test = work / "home", work / "train", work / "test"
    images, labels = fashion.load("train")
    test_images, test_labels = fashion.load("test")
    t0 = time.perf_counter()
    picked = fashion.pick(labels, args.per_class, seed=0)
    fashion.write_imagefolder(data, images, labels, picked)
    fashion.write_imagefolder(test, test_images, test_labels, fashion.pick(test_labels, None))
    print(f"wrote {len(picked)} training and 10,000 test PNGs in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    bases = CANDIDATE_BASES if args.base == "auto" else (args.base,)  # auto: every base its search extracts with
    export_s = sum(wanwu(home, "export", base, "--engine", "openvino")[0] for base in bases)
    extra = ["--base", args.base, "--val-split", args.val_split, "--augment", args.augment, "--mode", args.mode]
    extra += ["--features", args.features] if args.mode == "head" else []
    extra += [*(["--epochs", args.epochs] if args.epochs else []), *(["--blocks", args.blocks] if args.blocks else []),
              *(["--no-refit"] if args.no_refit else [])]
    out: dict = {"threads": args.threads, "base": args.base, "augment": args.augment, "mode": args.mode,
                 "features": args.features, "train_args": extra,
                 "load_average_before": os.getloadavg(), "cpu": _cpu(), "base_export_s": round(export_s, 1), "runs": {}}
    if not args.full_only:
        _subset_runs(out, args, home, data, (images, labels), test, extra, len(picked))
    if args.full:
        full = work / "full"
        fashion.write_imagefolder(full, images, labels, fashion.pick(labels, None))
        out["runs"]["full"] = run = train_and_eval(home, full, test, "fashion-full", args.threads, extra)
        _print("60,000 images", run)
    out["anchors"] = ANCHORS
    out["load_average_after"] = os.getloadavg()
    if args.json_out:
        args.json_out.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(out, ensure_ascii=False))
    return 0


def _subset_runs(out: dict, args: argparse.Namespace, home: Path, data: Path, train: tuple, test: Path, extra: list[str],
                 picked: int) -> None:
    """The subset, then 10 more images and a re-train (the embedding cache)."""
    out["runs"]["subset"] = run = train_and_eval(home, data, test, "fashion", args.threads, extra)
    _print(f"{picked} images", run)
    images, labels = train
    more = fashion.pick(labels, 1, seed=1, skip=args.per_class)  # 10 images not in the subset
    fashion.write_imagefolder(data, images, labels, more, prefix="added-")
    seconds, done = wanwu(home, "train", str(data), "--name", "fashion", "--threads", str(args.threads), "--json", *extra)
    again = json.loads(done.stdout)
    out["runs"]["retrain_plus_10"] = {"train_wall_s": round(seconds, 1), "stages_s": again["timings_s"], "extraction": again["extraction"]}
    print(f"re-train after adding 10 images: {seconds:.1f} s ({again['extraction']['extracted']} extracted)", file=sys.stderr)


def _print(what: str, run: dict) -> None:
    ex = run["extraction"]
    print(f"{what}: train {run['train_wall_s']} s (embeddings {ex['images_per_s']} images/s; stages {run['stages_s']}); "
          f"test top-1 {run['test_top1']:.2%} on {run['test_images']} images ({run['eval_images_per_s']} images/s)", file=sys.stderr)


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


if __name__ == "__main__":
    sys.exit(main())
