"""Handlers for the ``wanwu`` subcommands: call the core, format its answers for people or tools."""

from __future__ import annotations

import argparse
import importlib.util
import json
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn
from rich.table import Table

from wanwu.cpu import usable_cores
from wanwu.errors import ImageError, WanwuError

_err = Console(stderr=True)


def print_json(obj: object) -> None:
    print(json.dumps(obj, ensure_ascii=False), flush=True)


def home_of(args: argparse.Namespace) -> Path:
    from wanwu.store import wanwu_home

    return args.home or wanwu_home()


def load_classifier(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from wanwu.classifier import Classifier

    return Classifier.load(args.model, args.engine, args.weights, home_of(args), args.threads, args.precision or "auto")


def _label(pred, lang: str) -> str:  # type: ignore[no-untyped-def]
    both = pred.label_zh if pred.label_zh == pred.label else f"{pred.label_zh} ({pred.label})"  # a trained class named once
    return {"zh": pred.label_zh, "en": pred.label, "both": both}[lang]


def cmd_predict(args: argparse.Namespace) -> int:
    classifier = load_classifier(args)
    out = Console()
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
                _err.print(f"[red]{path}: {message}[/red]")
            continue
        unknown = classifier.unknown(preds)  # None: the model has no threshold (ImageNet models)
        if args.json:
            extra = {} if unknown is None else {"unknown": unknown}
            print_json({**record, "predictions": [p.as_dict() for p in preds], **extra})
            continue
        out.print(f"[bold]{path}[/bold]  ·  {classifier.model_name} / {classifier.engine.name} / {classifier.engine.precision}")
        table = Table()
        table.add_column("#", justify="right")
        table.add_column("label")
        table.add_column("score", justify="right")
        for rank, pred in enumerate(preds, 1):
            table.add_row(str(rank), _label(pred, args.lang), f"{pred.score:.1%}")
        out.print(table)
        if unknown:
            threshold = classifier.source.unknown_below
            out.print(f"[yellow]unknown: the top score is below this model's threshold ({threshold:.3f})[/yellow]")
    return 1 if failures else 0


def model_rows(home: Path) -> list[dict]:
    from wanwu.models import list_models
    from wanwu.sources import find_bundles
    from wanwu.weights import find_weights

    rows = []
    for spec in list_models():
        try:
            found = find_weights(spec, home)
            status, digest = (found.source, found.sha256) if found else ("missing", None)
        except WanwuError as err:
            status, digest = f"invalid: {err}", None
        pre = spec.preprocessing
        rows.append(
            {
                "model": spec.name,
                "weights": status,
                "sha256": digest,
                "bytes": spec.weights.num_bytes,
                "top1": spec.accuracy.top1,
                "top5": spec.accuracy.top5,
                "preprocessing": f"resize {pre.resize_size}, crop {pre.crop_size}, mean {pre.mean}, std {pre.std}",
                "converted": [b.name for b, _ in find_bundles(home, spec)],
                "reports": _precision_reports(home, spec),
                "precision_auto": _auto_choices(home, spec),
            }
        )
    return rows


def _precision_reports(home: Path, spec) -> list[dict]:  # type: ignore[no-untyped-def]
    from wanwu.precision import reports
    from wanwu.sources import find_bundles

    return [{"bundle": b.name, **r} for b, _ in find_bundles(home, spec) for r in reports(b)]


def _auto_choices(home: Path, spec) -> list[dict]:  # type: ignore[no-untyped-def]
    from wanwu.precision.auto import cached_choices
    from wanwu.sources import find_bundles

    return [{"bundle": b.name, **c} for b, _ in find_bundles(home, spec) for c in cached_choices(b)]


def _report_summary(reports: list[dict]) -> str:
    return "; ".join(
        f"{r['precision']} {r['artifact']}: agree {r.get('top1_agreement', float('nan')):.0%}"
        + (f" ({r['top1_agreement_unguarded']:.0%} unguarded, {r['rechecked_fraction']:.0%} re-run in fp32)"
           if "top1_agreement_unguarded" in r else "")
        + (f", top-1 {r['top1_int8']:.0%} vs {r['top1_fp32']:.0%}" if "top1_int8" in r else "")
        for r in reports
    )


def cmd_models(args: argparse.Namespace) -> int:
    from wanwu.train_cli import models_action, print_trained

    if getattr(args, "action", None):
        return models_action(args)
    rows = model_rows(home_of(args))
    if args.json:
        for row in rows:
            print_json(row)
        print_trained(home_of(args), as_json=True)
        return 0
    table = Table(title=f"store: {home_of(args)}", title_justify="left")
    for column in ("model", "weights", "sha256", "MB", "top-1", "top-5", "converted", "int8 / bf16 guard; auto"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            row["model"],
            row["weights"],
            (row["sha256"] or "—")[:12],
            f"{row['bytes'] / 1e6:.1f}",
            f"{row['top1']:.3f}",
            "—" if row["top5"] is None else f"{row['top5']:.3f}",
            ", ".join(row["converted"]) or "—",
            "; ".join([_report_summary(row["reports"]), *(f"auto: {c['precision']} ({c['reason']})"
                                                          for c in row["precision_auto"])]).strip("; ") or "—",
        )
    Console().print(table)
    print_trained(home_of(args), as_json=False)
    return 0


def _download_progress(progress: Progress):  # type: ignore[no-untyped-def]
    def start(total: int | None, name: str):  # type: ignore[no-untyped-def]
        task = progress.add_task(name, total=total)
        return lambda n: progress.advance(task, n)

    return start


def cmd_fetch(args: argparse.Namespace) -> int:
    from wanwu.models import get_model_spec
    from wanwu.weights import download_weights, find_weights

    spec = get_model_spec(args.model)
    home = home_of(args)
    found = find_weights(spec, home)
    if found is None:
        columns = (*Progress.get_default_columns()[:1], BarColumn(), DownloadColumn(), TransferSpeedColumn())
        with Progress(*columns, console=_err, transient=False) as progress:
            found = download_weights(spec, home, url=args.url, progress=_download_progress(progress))
    print(f"{spec.name}: {found.path} (sha256 {found.sha256}, {found.source})")
    return _make_ready_int8(args, spec.name) if args.int8 else 0


def _make_ready_int8(args: argparse.Namespace, model: str) -> int:
    """What `make setup` does for the bundled model: an INT8 version calibrated on the shipped photos, so
    `--precision auto` has it to pick where it is faster and agrees with fp32 (else auto keeps fp32)."""
    missing = [name for name in ("openvino", "nncf") if importlib.util.find_spec(name) is None]
    if missing:
        _err.print(f"no INT8 version made: it needs {' and '.join(missing)} (pip install 'wanwu[quantize]'); "
                   f"--precision auto runs fp32 until `wanwu quantize {model}`", markup=False, soft_wrap=True)
        return 0
    from wanwu.loader import ModelRequest, open_source
    from wanwu.precision.calibration import shipped_photos
    from wanwu.precision.int8 import quantize

    _err.print(f"making {model}'s INT8 version from the shipped photos (once; --no-int8 skips it)")
    source = open_source(ModelRequest(model, weights=None, home=home_of(args)))
    artifact = quantize(source, [shipped_photos()], threads=usable_cores(), log=_dim)  # quantize's own defaults
    _print_int8(artifact, source.spec.name, "openvino")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from wanwu.evaluate import eval_items, evaluate

    classifier = load_classifier(args)
    total = len(eval_items(args.folder, classifier.labels))
    with Progress(console=_err, transient=True) as progress:
        task = progress.add_task(f"eval {classifier.model_name}/{classifier.engine.name}", total=total)
        result = evaluate(classifier, args.folder, args.batch_size, args.fast_decode, lambda n: progress.advance(task, n))
    if args.json:
        print_json(result.as_dict())
    else:
        print(
            f"{result.model} / {result.engine} ({result.precision}): {result.images} images, "
            f"top-1 {result.top1:.2%}, top-5 {result.top5:.2%}, {result.images_per_s:.1f} images/s"
        )
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from wanwu.loader import ModelRequest, open_runner, open_source

    source = open_source(ModelRequest(args.model, weights=args.weights, home=home_of(args)))
    for engine in args.engine or ["openvino"]:
        open_runner(source, engine)
    print(source.bundle)
    return 0


def cmd_quantize(args: argparse.Namespace) -> int:
    from wanwu.loader import ModelRequest, open_source
    from wanwu.precision.calibration import shipped_photos

    source = open_source(ModelRequest(args.model, weights=args.weights, home=home_of(args)))
    threads = args.threads or usable_cores()
    args.calib = args.calib or [shipped_photos()]
    if args.precision == "bf16":
        return _calibrate_bf16(args, source, threads, _dim)
    from wanwu.precision.int8 import quantize

    artifact = quantize(source, args.calib, engine=args.engine, subset=args.subset, augment=args.augment,
                        accuracy_control=args.accuracy_control, eval_dir=args.eval, threads=threads, log=_dim)
    if args.json:
        print_json({"artifact": str(artifact.path), "reused": artifact.reused, **(artifact.report or {})})
    else:
        _print_int8(artifact, source.spec.name, args.engine)
    return 0


def _dim(message: str) -> None:
    _err.print(f"[dim]{message}[/dim]")


def _print_int8(artifact, model: str, engine: str) -> None:  # type: ignore[no-untyped-def]
    """An INT8 artifact for people: where it is, how it agrees with fp32, what auto will do with it."""
    from wanwu.precision.validated import FOLDER_PREFIX

    report = artifact.report or {}
    print(artifact.path)
    if report:
        folder = report.get("folder") or ""
        what = "images" if folder else "calibration views (no --eval folder)"
        if folder.startswith(FOLDER_PREFIX):
            what = "labelled photos (the wanwu project's measurement of this exact model; see report.json)"
        line = (
            f"int8 vs fp32 on {report['images']} {what}: top-1 agreement {report['top1_agreement']:.1%}, "
            f"top-5 overlap {report['top5_overlap']:.1%}"
        )
        if "top1_int8" in report:
            line += f", top-1 {report['top1_int8']:.1%} (fp32 {report['top1_fp32']:.1%})"
        if report.get("images_in_calibration_set"):
            line += f"; {report['images_in_calibration_set']} of them were in the calibration set"
        print(line)
        print(_auto_verdict(report["top1_agreement"]))
    print(f"use it: wanwu predict --model {model} --engine {engine} --precision int8 IMAGE")


def _auto_verdict(agreement: float) -> str:
    from wanwu.precision.auto import TARGET_AGREEMENT

    if agreement >= TARGET_AGREEMENT:
        return f"--precision auto (the default) runs it wherever it times faster than fp32 (agreement ≥ {TARGET_AGREEMENT:.0%})"
    return (f"below --precision auto's {TARGET_AGREEMENT:.0%} agreement target: auto keeps fp32 (--eval LABELLED_DIR "
            "measures on real photos; --precision int8 uses it anyway)")


def _calibrate_bf16(args: argparse.Namespace, source, threads: int, log) -> int:  # type: ignore[no-untyped-def]
    from wanwu.precision.bf16 import calibrate_bf16

    guard = calibrate_bf16(source, args.calib, subset=args.subset, target=args.target, eval_dir=args.eval,
                           threads=threads, log=log)
    report = guard.report or {}
    if args.json:
        print_json({"artifact": str(guard.path), "reused": guard.reused, **report})
        return 0
    print(guard.path)
    what = "images" if report.get("folder") else "calibration views (no --eval folder)"
    line = (f"bf16 guard margin {guard.margin:.4f}; on {report['images']} {what}: top-1 agreement with fp32 "
            f"{report['top1_agreement']:.1%} guarded ({report['top1_agreement_unguarded']:.1%} unguarded), "
            f"{report['rechecked_fraction']:.1%} re-run in fp32")
    if "top1_bf16" in report:
        line += f", top-1 {report['top1_bf16']:.1%} (fp32 {report['top1_fp32']:.1%})"
    print(line)
    print(f"use it: wanwu predict --model {source.spec.name} --engine openvino --precision bf16 IMAGE")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from wanwu.benchmark import time_engines
    from wanwu.cpu import cpu_info
    from wanwu.engines import ENGINES, available_engines
    from wanwu.loader import ModelRequest, open_runner, open_source

    source = open_source(ModelRequest(args.model, weights=args.weights, home=home_of(args)))
    threads = args.threads or usable_cores()
    batches = args.batch or [1, 8]
    images, described = _bench_pixels(args.images, source.spec.preprocessing, max(batches))
    pairs = [(e, p) for e in args.engine or available_engines() for p in args.precision or ENGINES[e].precisions]
    skip = None if args.precision else lambda message: _err.print(f"[dim]{message}[/dim]")
    # guarded bf16 only on real images: random ones are nearly all near-ties, which the guard re-runs in fp32
    rows = time_engines(lambda name, precision, guard: open_runner(source, name, precision, threads, guard=guard),
                        pairs, batches, images, runs=args.runs, guarded=args.images is not None, skip=skip)
    cpu = cpu_info()
    if args.json:
        for row in rows:
            print_json({"model": source.spec.name, **row, "images": described, "cpu": cpu.as_dict()})
        return 0
    title = f"{source.spec.name}, {threads} threads, median of {args.runs} runs on {described}\nCPU: {cpu.describe()}"
    table = Table(title=title, title_justify="left", min_width=max(map(len, title.splitlines())))  # the title unwrapped
    for column in ("engine", "precision", "batch", "ms/image", "images/s"):
        table.add_column(column, justify="right")
    for row in rows:
        cells = (row["engine"], row["precision"], str(row["batch"]), f"{row['ms_per_image']:.2f}", f"{row['images_per_s']:.1f}")
        table.add_row(*cells)
    Console().print(table)
    return 0


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


def cmd_serve(args: argparse.Namespace) -> int:
    from wanwu.service.cli import run_serve

    return run_serve(args)





def cmd_tag(args: argparse.Namespace) -> int:
    from rich.progress import MofNCompleteColumn, TextColumn, TimeRemainingColumn

    from wanwu.tagging.api import TagOptions, tag

    limits = {k: v for k, v in (("max_bytes", args.max_bytes), ("max_pixels", args.max_pixels)) if v}
    options = TagOptions(top_k=args.top_k, min_score=args.min_score, fast_decode=args.fast_decode, batch_size=args.batch_size,
                         decode_workers=args.decode_workers, threads=args.threads, force=args.force, fmt=args.format,
                         patterns=tuple(args.glob), follow_symlinks=args.follow_symlinks, **limits)
    columns = (TextColumn("tag"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]} images/s"),
               TextColumn("ETA"), TimeRemainingColumn(), TextColumn("[red]{task.fields[failed]} failed"))
    with Progress(*columns, console=_err, transient=True, disable=not _err.is_terminal) as progress:
        task = progress.add_task("tag", total=None, rate="–", failed=0)

        first: list[tuple[float, int]] = []  # the rate counts from the first write, not from the model load

        def update(done: int, failed: int, total: int) -> None:
            now = time.monotonic()
            if not first:
                first.append((now, done))
            elapsed = now - first[0][0]
            rate = f"{(done - first[0][1]) / elapsed:.1f}" if elapsed > 1 else "–"
            progress.update(task, completed=done, total=total, rate=rate, failed=failed)

        summary = tag(args.sources, args.out, model=args.model, engine=args.engine, weights=args.weights,
                      home=home_of(args), precision=args.precision or "auto", options=options, progress=update,
                      ray=args.ray, ray_actors=args.ray_actors)
    if args.report:
        from wanwu.tagging.report import write_report

        write_report(args.report, summary)
    print_json(summary.as_dict()) if args.json else print(summary.line())
    return 1 if summary.failed else 0
