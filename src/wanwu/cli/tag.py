"""``wanwu tag``: tag a photo library into JSONL / CSV / Parquet (resumable)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from wanwu.cli.common import OPTIONS_MODEL, add_options, err_line, home_of, print_json, progress


def add_parser(sub) -> argparse.ArgumentParser:  # type: ignore[no-untyped-def]
    tag = sub.add_parser(
        "tag", help="tag a photo library into JSONL / CSV / Parquet (resumable; --report for an HTML page)",
        description="One record per image (path, SHA-256, size, model, predictions or an error). Re-running the same "
        "command resumes: images already tagged with the same content, model, weights and category table are skipped; "
        "another model or table re-tags them and their records are replaced. Ctrl-C saves what is done.",
    )
    tag.add_argument("sources", nargs="+", type=Path, metavar="SRC", help="image files and folders (recursive)")
    tag.add_argument("--out", type=Path, default=Path("tags.jsonl"), metavar="FILE", help="output file (default tags.jsonl)")
    tag.add_argument("--format", choices=("jsonl", "csv", "parquet"), help="default: from --out's suffix, else jsonl")
    tag.add_argument("--glob", action="append", default=[], metavar="PATTERN",
                     help="only files matching (repeatable; default: image suffixes)")
    tag.add_argument("--follow-symlinks", action="store_true", help="follow symlinked files and folders (off by default)")
    tag.add_argument("--force", action="store_true", help="tag everything again, starting the output over")
    tag.add_argument("--top-k", type=int, default=5, metavar="K", help="labels per image (default 5)")
    tag.add_argument("--min-score", type=float, default=0.0, metavar="P", help="drop predictions below this probability")
    tag.add_argument("--fast-decode", action="store_true", help="JPEG DCT downscaling for large photos (measured agreement)")
    tag.add_argument("--decode-workers", type=int, metavar="N", help="decoding processes (default: one per core)")
    tag.add_argument("--report", type=Path, metavar="FILE",
                     help="also write an offline HTML report (thumbnails, filters, histogram)")
    tag.add_argument("--xmp", action="store_true", help="also write an XMP sidecar of keywords beside each image "
                     "(dc:subject, lr:hierarchicalSubject; merged into an existing one; the images are never touched)")
    tag.add_argument("--xmp-name", choices=("full", "stem"), default="full",
                     help="sidecar names: full = photo.jpg.xmp (darktable, digiKam; default), stem = photo.xmp (Lightroom)")
    tag.add_argument("--lang", choices=("zh", "en", "both"), default="both", help="the sidecars' keywords (default both)")
    tag.add_argument("--json", action="store_true", help="print the summary as JSON")
    tag.add_argument("--ray", metavar="auto|ADDRESS", help="run on a Ray cluster (pip install 'wanwu[ray]'); auto: the "
                     "running one (RAY_ADDRESS) or a local one; --threads is then each actor's CPUs (default 1)")
    tag.add_argument("--ray-actors", type=int, metavar="N", help="engine actors on the cluster (default: half its CPUs)")
    add_options(tag, (*OPTIONS_MODEL, "batch-size", "max-pixels", "max-bytes"), defaults={"batch-size": (4, "4")})
    tag.set_defaults(handler=run)
    return tag


def run(args: argparse.Namespace) -> int:
    from wanwu.tagging.api import TagFailedError, TagInterrupted, TagOptions, tag

    limits = {k: v for k, v in (("max_bytes", args.max_bytes), ("max_pixels", args.max_pixels)) if v}
    options = TagOptions(top_k=args.top_k, min_score=args.min_score, fast_decode=args.fast_decode, batch_size=args.batch_size,
                         decode_workers=args.decode_workers, threads=args.threads, force=args.force, fmt=args.format,
                         patterns=tuple(args.glob), follow_symlinks=args.follow_symlinks, xmp=args.xmp,
                         xmp_name=args.xmp_name, lang=args.lang, **limits)
    failure, interrupted = None, None
    with _Progress() as update:
        try:
            summary = tag(args.sources, args.out, model=args.model, engine=args.engine, weights=args.weights,
                          home=home_of(args), precision=args.precision or "auto", options=options, progress=update,
                          ray=args.ray, ray_actors=args.ray_actors)
        except TagFailedError as err:  # every image failed: the summary and report still say which and why
            summary, failure = err.summary, err
        except TagInterrupted as err:  # Ctrl-C: what is done is saved; the report covers it
            summary, interrupted = err.summary, err
    if args.report:
        from wanwu.tagging.report import write_report

        write_report(args.report, summary)
    for problem in summary.sidecars.get("problems", ()):
        err_line(f"wanwu: warning: {problem}")
    if interrupted is not None:
        err_line(f"wanwu: interrupted: {summary.saved:,} images saved to {summary.out} this run "
                 f"(tagged {summary.tagged:,}, reused {summary.reused:,}, failed {summary.failed:,}; "
                 f"{summary.skipped:,} were already tagged){'; the report covers them' if args.report else ''}. "
                 "Run the same command again to resume where it stopped.")
        return 130
    print_json(summary.as_dict()) if args.json else print(summary.line())
    if failure is not None:
        err_line(f"wanwu: error: {failure}")
    return 1 if summary.failed else 0


class _Progress:
    """Tagging's progress: a bar on a terminal; in a log, one plain line a minute at most."""

    LOG_EVERY_S = 60.0

    def __enter__(self):  # type: ignore[no-untyped-def]
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn

        columns = (TextColumn("tag"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]} images/s"),
                   TextColumn("ETA"), TimeRemainingColumn(), TextColumn("[red]{task.fields[failed]} failed"))
        self.bar = progress(*columns).__enter__()
        self.task = self.bar.add_task("tag", total=None, rate="–", failed=0)
        self.first: tuple[float, int] | None = None  # the rate counts from the first write, not from the model load
        self.logged = 0.0
        return self.update

    def update(self, done: int, failed: int, total: int) -> None:
        now = time.monotonic()
        if self.first is None:
            self.first = (now, done)
        elapsed = now - self.first[0]
        rate = f"{(done - self.first[1]) / elapsed:.1f}" if elapsed > 1 else "–"
        self.bar.update(self.task, completed=done, total=total, rate=rate, failed=failed)
        if self.bar.disable and now - self.logged >= self.LOG_EVERY_S:
            self.logged = now
            err_line(f"tag: {done}/{total} images, {failed} failed, {rate} images/s")

    def __exit__(self, *exc) -> None:  # type: ignore[no-untyped-def]
        self.bar.__exit__(*exc)
