"""``wanwu bench``: ms/image and images/s of engines and precisions (medians)."""

from __future__ import annotations

import argparse
from pathlib import Path

from wanwu.cli.common import add_options, console, dim, env_list, model_source, print_json, threads_of
from wanwu.errors import WanwuError

DESCRIPTION = ("Times engines and precisions (default: every installed engine at every precision it offers; --engine and "
               "--precision repeat) on the crop's pixels as the service sends them: decoded from --images, else random. "
               "(The whole benchmark, HTTP against other services included, is bench/all.py in a checkout.)")


def add_parser(sub) -> argparse.ArgumentParser:  # type: ignore[no-untyped-def]
    bench = sub.add_parser("bench", help="ms/image and images/s of engines and precisions (medians)", description=DESCRIPTION)
    add_options(bench, ("model", "weights", "engine", "precision", "threads", "batch-size"),
                repeatable=("engine", "precision", "batch-size"),
                defaults={"engine": (None, "every installed engine"), "precision": (None, "every precision it offers"),
                          "batch-size": (None, "1 and 8")})
    bench.add_argument("--batch", dest="batch_size", type=int, action="append", help=argparse.SUPPRESS)  # old name
    bench.add_argument("--runs", type=int, default=20, metavar="N", help="timed runs per row, after a warm-up (default 20)")
    bench.add_argument("--images", type=Path, metavar="DIR",
                       help="folder of images to time on (default: random pixels); bf16 also guarded")
    bench.add_argument("--json", action="store_true", help="one JSON object per row, with the CPU it ran on")
    bench.set_defaults(handler=run)
    return bench


def run(args: argparse.Namespace) -> int:
    from wanwu.benchmark import time_engines
    from wanwu.cpu import cpu_info
    from wanwu.engines import ENGINES, available_engines
    from wanwu.loader import open_runner

    source, threads = model_source(args), threads_of(args)
    batches = env_list("batch-size", args.batch_size, int) or [1, 8]
    engines, precisions = env_list("engine", args.engine), env_list("precision", args.precision)
    images, described = _bench_pixels(args.images, source.spec.preprocessing, max(batches))
    pairs = [(e, p) for e in engines or available_engines() for p in precisions or ENGINES[e].precisions]
    skip = None if precisions else dim
    # guarded bf16 only on real images: random ones are nearly all near-ties, which the guard re-runs in fp32
    rows = time_engines(lambda name, precision, guard: open_runner(source, name, precision, threads, guard=guard),
                        pairs, batches, images, runs=args.runs, guarded=args.images is not None, skip=skip)
    cpu = cpu_info()
    if args.json:
        for row in rows:
            print_json({"model": source.spec.name, **row, "images": described, "cpu": cpu.as_dict()})
        return 0
    _print_rows(rows, f"{source.spec.name}, {threads} threads, median of {args.runs} runs on {described}\n"
                f"CPU: {cpu.describe()}")
    return 0


def _print_rows(rows: list[dict], title: str) -> None:
    from rich.table import Table

    table = Table(title=title, title_justify="left", min_width=max(map(len, title.splitlines())))  # the title unwrapped
    for column in ("engine", "precision", "batch", "ms/image", "images/s"):
        table.add_column(column, justify="right")
    for row in rows:
        cells = (row["engine"], row["precision"], str(row["batch"]), f"{row['ms_per_image']:.2f}", f"{row['images_per_s']:.1f}")
        table.add_row(*cells)
    console().print(table)


def _bench_pixels(folder: Path | None, pre, count: int):  # type: ignore[no-untyped-def]
    """The crops to time on, as the service sends them: of the images in ``folder``, else ``count`` random ones."""
    from wanwu.benchmark import pixel_inputs
    from wanwu.datasets import image_files

    if folder is None:
        return pixel_inputs(pre, count=count), "random pixels"
    try:
        paths = image_files([folder], "--images folder")
    except FileNotFoundError as err:
        raise WanwuError(str(err)) from err
    return pixel_inputs(pre, paths), f"{len(paths)} images of {folder}"
