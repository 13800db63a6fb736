"""The ``wanwu`` command line: a thin layer over the core (argument parsing and output only)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from wanwu.cli_options import LANGS, add_model_options
from wanwu.errors import WanwuError
from wanwu.train_cli import add_models_actions, add_train_parser


def _add_precision_parsers(sub) -> None:  # type: ignore[no-untyped-def]
    quantize = sub.add_parser(
        "quantize",
        help="make an INT8 model (or measure the bf16 guard's margin) on your images",
        description="Calibrate INT8 activation ranges on a few hundred images like the ones you will classify "
        "(NNCF, OpenVINO). The artifact is cached in the store, keyed by the weights and the calibration set, "
        "with an accuracy report beside it. (Dynamic quantization of the final Linear layer alone, the old "
        "recipe, leaves every convolution in fp32: it is not INT8 for a CNN.) With --precision bf16: measure "
        "on the same views the top-1/top-2 gap below which --precision bf16 re-runs an image in fp32.",
    )
    quantize.add_argument("model")
    quantize.add_argument("--precision", default="int8", choices=("int8", "bf16"), help="int8 (default) or bf16 (the guard)")
    quantize.add_argument(
        "--target", type=float, default=0.995, help="bf16: top-1 agreement with fp32 the guard aims for on the views (0.995)"
    )
    quantize.add_argument(
        "--calib", type=Path, action="append",
        help="folder of calibration images like the ones you will classify (repeatable; default: the five photos wanwu ships)",
    )
    quantize.add_argument("--engine", default="openvino", choices=("openvino",))
    add_model_options(quantize, ("weights", "threads"))
    quantize.add_argument("--subset", type=int, default=300, help="at most this many calibration images (default 300)")
    quantize.add_argument(
        "--no-augment", dest="augment", action="store_false", help="calibrate on the images only (no mirrored/cropped views)"
    )
    quantize.add_argument(
        "--accuracy-control",
        action="store_true",
        help="NNCF accuracy-aware search: revert layers to fp32 until top-1 agreement drops ≤ 1 point (slow, ~10 min)",
    )
    quantize.add_argument("--eval", type=Path, help="labelled folder (<wnid>_*.JPEG) for the accuracy report")
    quantize.add_argument("--json", action="store_true", help="print the accuracy report as JSON")

    bench = sub.add_parser(
        "bench",
        help="ms/image and images/s of engines and precisions (medians)",
        description="Times engines and precisions (default: every installed engine at every precision it offers; "
        "--engine and --precision repeat) on the crop's pixels as the service sends them: decoded from --images, "
        "else random. (The whole benchmark, HTTP against other services included, is bench/all.py in a checkout.)",
    )
    add_model_options(bench, ("model", "weights", "engine", "precision", "threads"), repeatable=("engine", "precision"))
    bench.add_argument("--batch", type=int, action="append", help="batch size(s) (default: 1 and 8)")
    bench.add_argument("--runs", type=int, default=20)
    bench.add_argument("--images", type=Path, help="folder of images to time on (default: random pixels); bf16 also guarded")
    bench.add_argument("--json", action="store_true", help="one JSON object per row, with the CPU it ran on")


def _add_tag_parser(sub) -> None:  # type: ignore[no-untyped-def]
    tag = sub.add_parser(
        "tag", help="tag a photo library into JSONL / CSV / Parquet (resumable; --report for an HTML page)",
        description="One record per image (path, SHA-256, size, model, predictions or an error). Re-running the same "
        "command resumes: images already tagged with the same content, model, weights and precision are skipped.",
    )
    tag.add_argument("sources", nargs="+", type=Path, metavar="SRC", help="image files and folders (recursive)")
    tag.add_argument("--out", type=Path, default=Path("tags.jsonl"), help="output file (default tags.jsonl)")
    tag.add_argument("--format", choices=("jsonl", "csv", "parquet"), help="default: from --out's suffix, else jsonl")
    tag.add_argument("--glob", action="append", default=[], help="only files matching (repeatable; default: image suffixes)")
    tag.add_argument("--follow-symlinks", action="store_true", help="follow symlinked files and folders (off by default)")
    tag.add_argument("--force", action="store_true", help="tag everything again, starting the output over")
    tag.add_argument("--top-k", type=int, default=5)
    tag.add_argument("--min-score", type=float, default=0.0, help="drop predictions below this probability")
    tag.add_argument("--fast-decode", action="store_true", help="JPEG DCT downscaling for large photos (measured agreement)")
    tag.add_argument("--batch-size", type=int, default=4, help="images per engine call (default 4)")
    tag.add_argument("--decode-workers", type=int, help="decoding processes (default: one per core)")
    tag.add_argument("--max-bytes", type=int, help="larger files are refused (default 256 MiB)")
    tag.add_argument("--max-pixels", type=int, help="images with more pixels are refused from the header (default 64 M)")
    tag.add_argument("--report", type=Path, help="also write an offline HTML report (thumbnails, filters, histogram)")
    tag.add_argument("--json", action="store_true", help="print the summary as JSON")
    tag.add_argument("--ray", metavar="auto|ADDRESS", help="run on a Ray cluster (pip install 'wanwu[ray]'); auto: the "
                     "running one (RAY_ADDRESS) or a local one; --threads is then each actor's CPUs (default 1)")
    tag.add_argument("--ray-actors", type=int, help="engine actors on the cluster (default: half its CPUs)")
    add_model_options(tag)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wanwu", description="万物识别 — offline ImageNet-1k recognition")
    parser.add_argument("--home", type=Path, help="weight store and caches (default: $WANWU_HOME or ~/.cache/wanwu)")
    sub = parser.add_subparsers(dest="command", required=True)

    predict = sub.add_parser("predict", help="classify image files")
    predict.add_argument("paths", nargs="+", type=Path)
    predict.add_argument("--top-k", type=int, default=5)
    predict.add_argument("--lang", choices=LANGS, default="both")
    predict.add_argument("--json", action="store_true", help="one JSON object per image")
    add_model_options(predict)

    models = sub.add_parser("models", help="list models (ImageNet and trained versions); rm, export or import a trained one")
    models.add_argument("--json", action="store_true")
    add_models_actions(models)

    fetch = sub.add_parser("fetch", help="download and verify a model's official weights")
    fetch.add_argument("model")
    fetch.add_argument("--url", help="a mirror to download from (the official hash is still checked)")
    fetch.add_argument(
        "--no-int8", dest="int8", action="store_false",
        help="do not also make the INT8 version (from the shipped photos) that --precision auto can pick",
    )

    evaluate = sub.add_parser("eval", help="top-1/top-5 on a folder of <wnid>_*.JPEG images")
    evaluate.add_argument("folder", type=Path)
    evaluate.add_argument("--batch-size", type=int, default=8)
    evaluate.add_argument("--fast-decode", action="store_true")
    evaluate.add_argument("--json", action="store_true")
    add_model_options(evaluate)

    export = sub.add_parser("export", help="convert a model for the fast engines and cache it in the store")
    export.add_argument("model", nargs="?")
    add_model_options(export, ("weights", "engine"), repeatable=("engine",))

    _add_precision_parsers(sub)
    add_train_parser(sub)
    _add_tag_parser(sub)

    from wanwu.service.cli import add_serve_parser

    add_serve_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # recorded by `train` as the command that made a version
    from wanwu import commands

    handler = getattr(args, "handler", None) or getattr(commands, f"cmd_{args.command}")
    try:
        return int(handler(args) or 0)
    except WanwuError as err:
        print(f"wanwu: error: {err}", file=sys.stderr)
        return 1
    except OSError as err:  # a file or folder the command could not read or write: one line, no traceback
        print(f"wanwu: error: {_os_error_line(err, args.home)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _os_error_line(err: OSError, home: Path | None) -> str:
    from wanwu.store import wanwu_home

    if not err.filename:
        return str(err)
    line = f"{err.strerror or err}: {err.filename}"
    store = (home or wanwu_home()).resolve()
    if store == Path(err.filename).resolve() or store in Path(err.filename).resolve().parents:
        line += " (the store: --home / WANWU_HOME)"
    return line


if __name__ == "__main__":
    sys.exit(main())
