"""``wanwu train``: teach it your own classes from a folder of labelled photos."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from wanwu.cli.common import add_options, command_name, err_line, home_of, pct, print_json, progress
from wanwu.trained.companion import bases_of

DESCRIPTION = ("Train a classifier for your own classes on a base ImageNet model's embeddings (or fine-tune its last "
               "block(s): --mode finetune), and store it as a new version NAME@V (predict/eval/serve it with --model "
               "NAME@V). Class folder names are the labels, in any language; 'english|中文' gives both.")


def add_parser(sub) -> argparse.ArgumentParser:  # type: ignore[no-untyped-def]
    train = sub.add_parser("train", help="teach it your own classes from a folder of labelled photos (DATA/<class>/*.jpg)",
                           description=DESCRIPTION)
    train.add_argument("data", type=Path, metavar="DATA", help="an ImageFolder: DATA/<class>/<images>")
    train.add_argument("--name", required=True, help="the model's name (letters, digits, - _ .)")
    train.add_argument("--base", metavar="MODEL", default="auto", help="base ImageNet model; auto (default; head mode): "
                       "efficientnet_lite0, efficientnet_lite2 or (up to 500 images) both joined, global or pyramid "
                       "features, whichever scores best in 5-fold cross-validation on the training images (up to "
                       "1,000; above, efficientnet_lite0); A+B: both bases' features joined, B reading A's input; "
                       "finetune: efficientnet_lite0")
    val = train.add_mutually_exclusive_group()
    val.add_argument("--val", type=Path, metavar="DIR", help="a validation ImageFolder with the same class folders")
    val.add_argument("--val-split", type=float, default=0.2, metavar="F",
                     help="share of each class held out to validate (default 0.2; 0: none)")
    train.add_argument("--mode", choices=("head", "finetune"), default="head",
                       help="head (default): a linear head on the base's embeddings, seconds; finetune: also trains the "
                       "base's last block(s) in PyTorch, minutes, more accurate on large sets")
    train.add_argument("--epochs", type=int, metavar="N", help="head: most L-BFGS iterations (default 500; it stops when "
                       "converged); finetune: most epochs (default 12; it stops early when 3 epochs in a row do not beat "
                       "the best on validation)")
    train.add_argument("--blocks", type=int, metavar="N", help="finetune: how many of the base's last blocks train "
                       "(default 1: Lite0's last MBConv block + its 1x1 head conv)")
    train.add_argument("--seed", type=int, default=0, help="seed of the validation split (default 0)")
    train.add_argument("--labels", type=Path, metavar="FILE", help="labels file: 'folder<TAB>english<TAB>中文' per line")
    train.add_argument("--augment", choices=("auto", "none", "flip", "all"), default="auto",
                       help="extra views of each training image: flip, all (flips and zoomed crops); auto: all below 500 images")
    train.add_argument("--crop", choices=("auto", "full", "center", "pad"), default="auto",
                       help="full: the shorter side whole, cropped square; pad: the whole image letterboxed on white; "
                            "center: the base model's ImageNet crop; auto (default): pad when at least half the training "
                            "images are cut-outs (with transparent pixels), else full")
    train.add_argument("--features", choices=("auto", "global", "pyramid"), default="auto",
                       help="head: what the head reads: global (the base's embedding), pyramid (also a 3x3 grid of "
                       "averages of its last two maps: where things are; 11.5x wider); auto: pyramid below 10,000 images")
    train.add_argument("--l2", type=float, default=0.03, help="L2 penalty of the head (default 0.03)")
    train.add_argument("--no-refit", dest="refit", action="store_false",
                       help="store the head fitted on the training images only (default: measure it on the "
                       "validation images, then fit the stored head on both)")
    add_options(train, ("engine", "threads"))
    train.add_argument("--json", action="store_true", help="print the version's summary as JSON")
    train.set_defaults(handler=run)
    return train


class _Bar:
    """Training's reporter: a rich progress bar on a terminal; in a log, one plain line per stage."""

    def __init__(self, bar) -> None:  # type: ignore[no-untyped-def]
        self.progress = bar
        self.task: int | None = None

    def stage(self, name: str, total: int | None = None) -> None:
        self.finish()
        if self.progress.disable:
            err_line(f"{name}: {total}" if total else name)
        self.task = self.progress.add_task(name, total=total or 1)  # a step without a count shows as one

    def finish(self) -> None:
        if self.task is not None:
            self.progress.update(self.task, completed=self.progress.tasks[self.task].total)

    def advance(self, n: int = 1) -> None:
        if self.task is not None:
            self.progress.advance(self.task, n)

    def note(self, message: str) -> None:
        if self.progress.disable:
            err_line(message)
        else:
            self.progress.console.print(message, soft_wrap=True)


def run(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from wanwu.training.train import TrainOptions, train

    options = TrainOptions(
        data=args.data, name=args.name, base=args.base, val=args.val, val_split=args.val_split, seed=args.seed,
        labels=args.labels, augment=args.augment, crop=args.crop, mode=args.mode, epochs=args.epochs, blocks=args.blocks,
        features=args.features, l2=args.l2, refit=args.refit, engine=args.engine, threads=args.threads,
        command=("wanwu", *getattr(args, "argv", sys.argv[1:])),
    )
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    with progress(*columns, transient=False) as bar:
        reporter = _Bar(bar)
        version, run_ = train(options, home_of(args), reporter)
        reporter.finish()
    m = version.manifest
    if args.json:
        keys = ("model", "kind", "created_at", "base", "base_choice", "preprocessing", "head", "metrics", "unknown",
                "timings_s", "extraction")
        print_json({k: m.get(k) for k in keys}
                   | {"path": str(version.path), "report": str(version.path / "report.html"), "skipped": len(run_.data.skipped)})
        return 0
    _print_data_notes(m["data"])
    _print_summary(version)
    return 0


def _print_summary(version) -> None:  # type: ignore[no-untyped-def]
    from wanwu.training.run import NAMED_CROP

    m = version.manifest
    metrics = m.get("metrics")
    score = "no validation images" if not metrics else (
        f"validation top-1 {metrics['top1']:.1%}" + (f", top-5 {metrics['top5']:.1%}" if metrics["top5"] is not None else "")
        + f" on {metrics['images']} images")
    used = m["data"]["train_images"] + (m["data"]["val_images"] if m["head"]["fitted_on"] == "train+val" else 0)
    print(f"{version.ref}: {len(m['classes'])} classes from {used} images on {bases_of(m)}; {score}")
    if m.get("base_choice"):
        print(f"base: {m['base_choice']['summary']}")
    if m["preprocessing"].get("crop_why", NAMED_CROP) != NAMED_CROP:
        print(f"crop: {m['preprocessing']['crop']} ({m['preprocessing']['crop_why']})")
    if m.get("kind") == "finetune":
        h = m["head"]
        print(f"fine-tuned the last {h['blocks']} block(s): best epoch {h['best_epoch']} of {h['epochs_run']}"
              + (" (stopped early)" if h["stopped_early"] else ""))
    if m.get("unknown"):
        u = m["unknown"]
        print(f"unknown below {u['threshold']:.3f} ({u['rule']}; it flags {pct(u['wrong_flagged'])} of the wrong ones)")
    print(f"report: {version.path / 'report.html'}")
    print(f"use it: {command_name()} predict --model {version.ref} IMAGE")


_NOTES = (
    ("skipped", "skipped (not images or unreadable)"),
    ("conflicts", "identical files under different classes, left out"),
    ("duplicates", "duplicate files within a class, one kept"),
    ("val_overlap", "validation files identical to training files, left out"),
)


def _note_text(item: str | dict) -> str:
    if isinstance(item, str):
        return item
    if "why" in item:
        return f"{item['path']}: {item['why']}"
    if "classes" in item:
        return f"{', '.join(item['classes'])}: {', '.join(item['paths'])}"
    return f"{item['path']} = {item['same_as']}"


def _print_data_notes(data: dict) -> None:
    for key, title in _NOTES:
        items = data[key]
        if not items:
            continue
        err_line(f"{len(items)} {title}:", "yellow")
        for item in items[:10]:
            err_line(f"  {_note_text(item)}")
        if len(items) > 10:
            err_line(f"  … {len(items) - 10} more (in the version's version.json and report)")
