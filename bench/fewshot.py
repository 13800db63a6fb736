#!/usr/bin/env python3
"""Few-shot `wanwu train`: 6 classes × 16 training images of cut-outs with transparency, held-out top-1 per base choice.

    .venv/bin/python bench/fewshot.py [--set fashion|emoji] [--trim] [--draws 5] [--per-class 16]
                                      [--test-per-class 100] [--threads 2] [--json-out F]

Two proxies (issue 24's set of cut-out photos is not available here), chosen with --set:
  fashion (the default): Fashion-MNIST's first six classes (T-shirt, trouser, pullover, dress, coat, sandal). Its
    images *are* cut-outs: Zalando's product photos with the background removed, trimmed, made grey and negated.
    Each is written back as a cut-out with transparency: grey = 255 - pixel, alpha = the object's mask (pixel > 0,
    so the background is transparent), enlarged 4× (112 px, bicubic), RGBA PNG. --test-per-class held-out images
    per class.
  emoji: bench/emoji_set.py, six everyday classes (mammal, produce, ground vehicle, clothing and footwear, prepared
    food, sports equipment) of colour emojis rendered from the Noto Color Emoji font as 224 px RGBA cut-outs. Each
    class has 30-50 members: the ones not drawn for training are the held-out images (--test-per-class is ignored).
--trim crops every cut-out to its object's box (alpha > 0), as PNG cut-out sites ship them, and adds a run of the
default with `--crop full` (what `--crop auto` chose before it letterboxed cut-outs). wanwu composites the cut-outs
on white. Per draw (seeded picks of the training and the test images), in a fresh
store shared by the draws: `wanwu train` with the default (`--base auto`), `--base efficientnet_lite0` (the default
before: Lite0, pyramid features) and `--base efficientnet_lite2`, each then `wanwu eval` on the held-out images.
Prints one row per draw and the mean, with the CPU.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a file: bench/ and tests/ are not installed, import them from this checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests import fashion  # noqa: E402

from bench import emoji_set  # noqa: E402
from bench.train import wanwu  # noqa: E402

CLASSES = 6
SCALE = 4
RUNS = {"default (auto)": [], "lite0 (default before)": ["--base", "efficientnet_lite0"],
        "lite2": ["--base", "efficientnet_lite2"], "lite2+lite0": ["--base", "efficientnet_lite2+efficientnet_lite0"]}


def cutout(pixels: np.ndarray):  # type: ignore[no-untyped-def]
    """A Fashion-MNIST image (object bright on black) -> an RGBA cut-out: the object in grey, the background transparent."""
    from PIL import Image

    grey = Image.fromarray(255 - pixels, "L").convert("RGB")
    alpha = Image.fromarray(np.where(pixels > 0, 255, 0).astype(np.uint8), "L")
    size = (pixels.shape[1] * SCALE, pixels.shape[0] * SCALE)
    rgba = grey.resize(size, Image.Resampling.BICUBIC)
    rgba.putalpha(alpha.resize(size, Image.Resampling.BICUBIC))
    return rgba


def write(dst: Path, images: np.ndarray, labels: np.ndarray, indices: np.ndarray) -> None:
    for i in indices:
        folder = dst / fashion.CLASSES[labels[i]]
        folder.mkdir(parents=True, exist_ok=True)
        cutout(images[i]).save(folder / f"{i:05d}.png")


def pick(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.sort(np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in range(CLASSES)]))


def fashion_split(train: Path, test: Path, args: argparse.Namespace, seed: int) -> None:
    train_images, train_labels = fashion.load("train")
    test_images, test_labels = fashion.load("test")
    write(train, train_images, train_labels, pick(train_labels, args.per_class, seed))
    write(test, test_images, test_labels, pick(test_labels, args.test_per_class, seed))


def emoji_split(train: Path, test: Path, args: argparse.Namespace, seed: int) -> None:
    emoji_set.write_split(train, test, args.per_class, seed)


# --set -> (write a draw's training and test folders, whether its data is here, how to get it)
SETS = {"fashion": (fashion_split, fashion.available, "needs Fashion-MNIST: apt-get install dataset-fashion-mnist"),
        "emoji": (emoji_split, emoji_set.available, "needs the emoji font: apt-get install fonts-noto-color-emoji")}


def trim(folder: Path) -> None:
    """Every cut-out cropped to its object's box, in place."""
    from PIL import Image

    for path in folder.rglob("*.png"):
        with Image.open(path) as img:
            box = img.getchannel("A").getbbox()
            trimmed = img.crop(box) if box else img.copy()
        trimmed.save(path)


def runs(args: argparse.Namespace) -> dict[str, list[str]]:
    return {**RUNS, "auto, --crop full": ["--crop", "full"]} if args.trim else RUNS


def draw(home: Path, root: Path, seed: int, args: argparse.Namespace) -> dict:
    train, test = root / f"train-{seed}", root / f"test-{seed}"
    SETS[args.set][0](train, test, args, seed)
    if args.trim:
        trim(train)
        trim(test)
    test_images = sum(1 for _ in test.rglob("*.png"))
    print(f"  seed {seed}: {sum(1 for _ in train.rglob('*.png'))} training, {test_images} held-out images", flush=True)
    row: dict = {"seed": seed, "test_images": test_images}
    for i, (run, extra) in enumerate(runs(args).items()):
        name = f"d{seed}-{i}"
        seconds, done = wanwu(home, "train", str(train), "--name", name, "--json",
                              "--threads", str(args.threads), *extra)
        summary = json.loads(done.stdout)
        _, done = wanwu(home, "eval", "--json", "--model", summary["model"], "--threads", str(args.threads),
                        str(test))
        choice = summary.get("base_choice") or {}
        row[run] = {"test_top1": json.loads(done.stdout)["top1"], "train_wall_s": round(seconds, 1),
                    "chosen": choice.get("chosen"), "summary": choice.get("summary")}
        print(f"  seed {seed} {run}: test top-1 {row[run]['test_top1']:.4f}, train {seconds:.1f} s; {choice.get('summary')}",
              flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--set", choices=tuple(SETS), default="fashion", help="the proxy data set (default fashion)")
    parser.add_argument("--trim", action="store_true", help="cut-outs cropped to the object's box")
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument("--per-class", type=int, default=16)
    parser.add_argument("--test-per-class", type=int, default=100, help="fashion only (emoji: all the rest)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    _, available, missing = SETS[args.set]
    if not available():
        raise SystemExit(missing)
    from wanwu.cpu import cpu_info

    with tempfile.TemporaryDirectory(prefix="wanwu-fewshot-") as tmp:
        rows = [draw(Path(tmp) / "home", Path(tmp), seed, args) for seed in range(args.draws)]
    held_out = sorted({row["test_images"] for row in rows})
    columns = runs(args)
    print(f"\n{args.set}: {CLASSES} classes × {args.per_class} training images ({'trimmed ' if args.trim else ''}cut-outs), "
          f"{'/'.join(map(str, held_out))} held-out; "
          f"CPU: {cpu_info().describe()}, --threads {args.threads}")
    print("| draw | " + " | ".join(columns) + " | auto chose |")
    print("|---|" + "---|" * (len(columns) + 1))
    for row in rows:
        chosen = row["default (auto)"]["chosen"] or {}
        print(f"| {row['seed']} | " + " | ".join(f"{row[r]['test_top1']:.3f}" for r in columns)
              + f" | {chosen.get('base')}{'+' + chosen['companion'] if chosen.get('companion') else ''} "
              f"{chosen.get('features')} |")
    means = {r: float(np.mean([row[r]["test_top1"] for row in rows])) for r in columns}
    print("| mean | " + " | ".join(f"**{means[r]:.3f}**" for r in columns) + " | |")
    if args.json_out:
        out = {"set": args.set, "rows": rows, "means": means, "cpu": cpu_info().describe()}
        args.json_out.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
