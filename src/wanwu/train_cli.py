"""``wanwu train`` and ``wanwu models rm | export | import``: argument parsing and printing over ``wanwu.training``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from wanwu.cli_options import add_model_options

if TYPE_CHECKING:
    from rich.progress import Progress


def _err():  # type: ignore[no-untyped-def]
    from rich.console import Console  # lazy: the parser is built at every start, rich only when printing

    return Console(stderr=True)


def _home(args: argparse.Namespace) -> Path:
    from wanwu.store import wanwu_home

    return args.home or wanwu_home()


def _print_json(obj: object) -> None:
    print(json.dumps(obj, ensure_ascii=False), flush=True)


def add_train_parser(sub) -> None:  # type: ignore[no-untyped-def]
    train = sub.add_parser(
        "train", help="teach it your own classes from a folder of labelled photos (DATA/<class>/*.jpg)",
        description="Train a classifier for your own classes on a base ImageNet model's embeddings (or fine-tune its last "
        "block(s): --mode finetune), and store it "
        "as a new version NAME@V (predict/eval/serve it with --model NAME@V). Class folder names are the labels, "
        "in any language; 'english|中文' gives both.",
    )
    train.add_argument("data", type=Path, help="an ImageFolder: DATA/<class>/<images>")
    train.add_argument("--name", required=True, help="the model's name (letters, digits, - _ .)")
    train.add_argument("--base", help="base ImageNet model (default efficientnet_lite0; efficientnet_lite2: more accurate "
                       "on ImageNet, ~2.5x slower to extract, 1 point worse on Fashion-MNIST)")
    val = train.add_mutually_exclusive_group()
    val.add_argument("--val", type=Path, help="a validation ImageFolder with the same class folders")
    val.add_argument("--val-split", type=float, default=0.2,
                     help="share of each class held out to validate (default 0.2; 0: none)")
    train.add_argument("--mode", choices=("head", "finetune"), default="head",
                       help="head (default): a linear head on the base's embeddings, seconds; finetune: also trains the "
                       "base's last block(s) in PyTorch, minutes, more accurate on large sets")
    train.add_argument("--epochs", type=int, help="head: most L-BFGS iterations (default 500; it stops when converged); "
                       "finetune: most epochs (default 12; it stops early when 3 epochs in a row do not beat the best on "
                       "validation)")
    train.add_argument("--blocks", type=int, help="finetune: how many of the base's last blocks train (default 1: "
                       "Lite0's last MBConv block + its 1x1 head conv)")
    train.add_argument("--seed", type=int, default=0, help="seed of the validation split (default 0)")
    train.add_argument("--labels", type=Path, help="labels file: 'folder<TAB>english<TAB>中文' per line")
    train.add_argument("--augment", choices=("auto", "none", "flip", "all"), default="auto",
                       help="extra views of each training image: flip, all (flips and zoomed crops); auto: all below 500 images")
    train.add_argument("--crop", choices=("full", "center"), default="full",
                       help="full: the whole shorter side (default); center: the base model's ImageNet crop")
    train.add_argument("--features", choices=("auto", "global", "pyramid"), default="auto",
                       help="head: what the head reads: global (the base's embedding), pyramid (also a 3x3 grid of "
                       "averages of its last two maps: where things are; 11.5x wider); auto: pyramid below 10,000 images")
    train.add_argument("--l2", type=float, default=0.03, help="L2 penalty of the head (default 0.03)")
    train.add_argument("--no-refit", dest="refit", action="store_false",
                       help="store the head fitted on the training images only (default: measure it on the "
                       "validation images, then fit the stored head on both)")
    add_model_options(train, ("engine", "threads"))
    train.add_argument("--json", action="store_true", help="print the version's summary as JSON")
    train.set_defaults(handler=cmd_train)


def add_models_actions(models: argparse.ArgumentParser) -> None:
    actions = models.add_subparsers(dest="action", metavar="{rm,export,import}")
    rm = actions.add_parser("rm", help="remove a trained version NAME@V")
    rm.add_argument("ref", metavar="NAME@V")
    export = actions.add_parser("export", help="write a trained version to one archive file (SHA-256 manifest inside)")
    export.add_argument("ref", metavar="NAME@V")
    export.add_argument("file", type=Path)
    imp = actions.add_parser("import", help="verify an archive and add its version to the store")
    imp.add_argument("file", type=Path)


class _Bar:
    """Training's reporter as a rich progress bar on stderr."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task: int | None = None

    def stage(self, name: str, total: int | None = None) -> None:
        if self.task is not None:
            self.progress.update(self.task, completed=self.progress.tasks[self.task].total)
        self.task = self.progress.add_task(name, total=total or 1)  # a step without a count shows as one

    def finish(self) -> None:
        if self.task is not None:
            self.progress.update(self.task, completed=self.progress.tasks[self.task].total)

    def advance(self, n: int = 1) -> None:
        if self.task is not None:
            self.progress.advance(self.task, n)

    def note(self, message: str) -> None:
        self.progress.console.print(message)


def cmd_train(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from wanwu.training.train import TrainOptions, train

    options = TrainOptions(
        data=args.data, name=args.name, base=args.base, val=args.val, val_split=args.val_split, seed=args.seed,
        labels=args.labels, augment=args.augment, crop=args.crop, mode=args.mode, epochs=args.epochs, blocks=args.blocks,
        features=args.features, l2=args.l2, refit=args.refit, engine=args.engine, threads=args.threads,
        command=("wanwu", *getattr(args, "argv", sys.argv[1:])),
    )
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=_err(), transient=False) as progress:
        bar = _Bar(progress)
        version, run = train(options, _home(args), bar)
        bar.finish()
    m = version.manifest
    if args.json:
        keys = ("model", "kind", "created_at", "base", "head", "metrics", "unknown", "timings_s", "extraction")
        _print_json({k: m[k] for k in keys}
                   | {"path": str(version.path), "report": str(version.path / "report.html"), "skipped": len(run.data.skipped)})
        return 0
    _print_data_notes(m["data"])
    metrics = m.get("metrics")
    score = "no validation images" if not metrics else (
        f"validation top-1 {metrics['top1']:.1%}" + (f", top-5 {metrics['top5']:.1%}" if metrics["top5"] is not None else "")
        + f" on {metrics['images']} images")
    used = m["data"]["train_images"] + (m["data"]["val_images"] if m["head"]["fitted_on"] == "train+val" else 0)
    print(f"{version.ref}: {len(m['classes'])} classes from {used} images on {m['base']['model']}; {score}")
    if m.get("kind") == "finetune":
        h = m["head"]
        print(f"fine-tuned the last {h['blocks']} block(s): best epoch {h['best_epoch']} of {h['epochs_run']}"
              + (" (stopped early)" if h["stopped_early"] else ""))
    if m.get("unknown"):
        u = m["unknown"]
        print(f"unknown below {u['threshold']:.3f} ({u['rule']}; it flags {_pct(u['wrong_flagged'])} of the wrong ones)")
    print(f"report: {version.path / 'report.html'}")
    print(f"use it: wanwu predict --model {version.ref} IMAGE")
    return 0


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


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
    err = _err()
    for key, title in _NOTES:
        items = data[key]
        if not items:
            continue
        err.print(f"[yellow]{len(items)} {title}:[/yellow]")
        for item in items[:10]:
            err.print(f"  {_note_text(item)}", markup=False, highlight=False)
        if len(items) > 10:
            err.print(f"  … {len(items) - 10} more (in the version's version.json and report)")


def trained_rows(home: Path) -> list[dict]:
    from wanwu.trained.store import versions

    rows = []
    for v in versions(home):
        m = v.manifest
        metrics = m.get("metrics") or {}
        rows.append({
            "model": v.ref, "kind": "trained", "base": m["base"]["model"], "classes": len(m["classes"]),
            "train_images": m["data"]["train_images"], "val_top1": metrics.get("top1"), "val_top5": metrics.get("top5"),
            "unknown_below": (m.get("unknown") or {}).get("threshold"), "created_at": m["created_at"],
            "head_sha256": m["files"]["head.npz"], "path": str(v.path),
        })
    return rows


def print_trained(home: Path, as_json: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    rows = trained_rows(home)
    if as_json:
        for row in rows:
            _print_json(row)
        return
    if not rows:
        return
    table = Table(title="trained models", title_justify="left")
    for column in ("model", "base", "classes", "images", "val top-1", "unknown below", "created"):
        table.add_column(column, overflow="fold")
    for r in rows:
        table.add_row(r["model"], r["base"], str(r["classes"]), str(r["train_images"]), _pct(r["val_top1"]),
                      "—" if r["unknown_below"] is None else f"{r['unknown_below']:.3f}", r["created_at"])
    Console().print(table)


def models_action(args: argparse.Namespace) -> int:
    from wanwu.trained.archive import export_version, import_archive
    from wanwu.trained.store import remove

    home = _home(args)
    if args.action == "rm":
        print(f"removed {remove(home, args.ref).ref}")
    elif args.action == "export":
        version = export_version(home, args.ref, args.file)
        print(f"{version.ref} -> {args.file} ({args.file.stat().st_size / 1e6:.1f} MB)")
    else:
        version, new = import_archive(home, args.file)
        print(f"imported {version.ref} ({version.path})" if new else f"{version.ref} is already in the store, unchanged")
    return 0
