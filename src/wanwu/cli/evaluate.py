"""``wanwu eval``: top-1/top-5 of a model on a labelled folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from wanwu.cli.common import OPTIONS_MODEL, add_options, err_line, print_json, progress


def add_parser(sub) -> argparse.ArgumentParser:  # type: ignore[no-untyped-def]
    evaluate = sub.add_parser("eval", help="top-1/top-5 on a folder of <wnid>_*.JPEG images")
    evaluate.add_argument("folder", type=Path, metavar="FOLDER", help="labelled images, named <wnid>_*.JPEG")
    evaluate.add_argument("--fast-decode", action="store_true", help="JPEG DCT downscaling for large photos")
    evaluate.add_argument("--json", action="store_true", help="print the result as one JSON object")
    add_options(evaluate, (*OPTIONS_MODEL, "batch-size", "max-pixels", "max-bytes"))
    evaluate.set_defaults(handler=run)
    return evaluate


def run(args: argparse.Namespace) -> int:
    from wanwu.cli.predict import load_classifier
    from wanwu.evaluate import eval_items, evaluate

    classifier = load_classifier(args)
    total = len(eval_items(args.folder, classifier.labels))
    name = f"eval {classifier.model_name}/{classifier.engine.name}"
    with progress() as bar:
        if bar.disable:
            err_line(f"{name}: {total} images")
        task = bar.add_task(name, total=total)
        result = evaluate(classifier, args.folder, args.batch_size or 8, args.fast_decode, lambda n: bar.advance(task, n))
    if args.json:
        print_json(result.as_dict())
    else:
        category = "" if result.category_top1 is None else (
            f", everyday category top-1 {result.category_top1:.2%} (of {result.category_images})")
        print(
            f"{result.model} / {result.engine} ({result.precision}): {result.images} images, "
            f"top-1 {result.top1:.2%}, top-5 {result.top5:.2%}{category}, {result.images_per_s:.1f} images/s"
        )
    return 0
