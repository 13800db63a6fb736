"""``wanwu predict``: classify image files, as tables for people or JSON lines for tools."""

from __future__ import annotations

import argparse
from pathlib import Path

from wanwu.cli.common import LANGS, OPTIONS_MODEL, add_options, console, err_line, home_of, image_limits, print_json
from wanwu.errors import ImageError, WanwuError


def add_parser(sub) -> argparse.ArgumentParser:  # type: ignore[no-untyped-def]
    predict = sub.add_parser("predict", help="classify image files", description="Classify image files: the top labels "
                             "of each, in Chinese and English. One unreadable image is reported and the rest still run.")
    predict.add_argument("paths", nargs="+", type=Path, metavar="IMAGE", help="image files (JPEG, PNG, WebP, ...)")
    predict.add_argument("--top-k", type=int, default=5, metavar="K", help="labels per image (default 5)")
    predict.add_argument("--min-score", type=float, default=0.0, metavar="P",
                         help="drop predictions below this probability, 0-1 (default 0: keep all --top-k)")
    predict.add_argument("--lang", choices=LANGS, default="both", help="label language: zh, en or both (default both)")
    predict.add_argument("--json", action="store_true", help="one JSON object per image (path, model, predictions or error)")
    add_options(predict, (*OPTIONS_MODEL, "max-pixels", "max-bytes"))
    predict.set_defaults(handler=run)
    return predict


def load_classifier(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """The classifier the model options ask for, refusing images over ``--max-bytes`` / ``--max-pixels``."""
    from wanwu.classifier import Classifier

    return Classifier.load(args.model, args.engine, args.weights, home_of(args), args.threads, args.precision or "auto",
                           image_limits(args))


def _label(pred, lang: str) -> str:  # type: ignore[no-untyped-def]
    both = pred.label_zh if pred.label_zh == pred.label else f"{pred.label_zh} ({pred.label})"  # a trained class named once
    return {"zh": pred.label_zh, "en": pred.label, "both": both}[lang]


def run(args: argparse.Namespace) -> int:
    classifier = load_classifier(args)
    failures = 0
    for path in args.paths:
        record: dict = {"path": str(path), "model": classifier.model_name, "weights_sha256": classifier.weights_sha256}
        try:
            preds = classifier.predict(path.read_bytes(), top_k=args.top_k)
        except (ImageError, OSError) as err:
            failures += 1
            code = err.code if isinstance(err, WanwuError) else "unreadable_file"
            message = str(err) if isinstance(err, WanwuError) else f"cannot read {path}: {err.strerror}"
            if args.json:
                print_json({**record, "error": {"code": code, "message": message}})
            else:
                err_line(f"{path}: {message}", "red")
            continue
        kept = [p for p in preds if p.score >= args.min_score]  # unknown and categories come from all of them
        if args.json:
            evidence = {} if preds.out_of_set is None else {"out_of_set": preds.out_of_set}
            print_json({**record, "summary": preds.summary(args.lang), "unknown": preds.unknown, **evidence,
                        "categories": [c.as_dict() for c in preds.categories], "predictions": [p.as_dict() for p in kept]})
        else:
            _print_table(classifier, path, preds, kept, args.lang)
    return 1 if failures else 0


def _print_table(classifier, path: Path, result, kept: list, lang: str) -> None:  # type: ignore[no-untyped-def]
    """The answer in words people use first (the everyday category, or "not sure"), then the fine classes."""
    from rich.table import Table

    out = console()
    out.print(f"[bold]{path}[/bold]  ·  {classifier.model_name} / {classifier.engine.name} / {classifier.engine.precision}",
              soft_wrap=True)
    out.print(f"[{'yellow' if result.unknown else 'bold green'}]{result.summary(lang)}[/]", soft_wrap=True, highlight=False)
    if result.categories:
        names = [f"{_label(c, lang)} {c.score:.0%}" for c in result.categories[:6]]
        out.print("categories: " + " · ".join(names), soft_wrap=True, highlight=False)
    table = Table()
    table.add_column("#", justify="right")
    table.add_column("label")
    table.add_column("score", justify="right")
    for rank, pred in enumerate(kept, 1):
        table.add_row(str(rank), _label(pred, lang), f"{pred.score:.1%}")
    out.print(table)
    threshold = classifier.source.unknown_below
    if result.out_of_set:
        out.print("[yellow]unknown: this image is like none of the model's training images (out of set)[/yellow]",
                  soft_wrap=True)
    elif result.unknown and threshold is not None:
        out.print(f"[yellow]unknown: the top score is below this model's threshold ({threshold:.3f})[/yellow]", soft_wrap=True)
