"""``wanwu.tag(...)``: tag a library of images into a JSONL, CSV or Parquet file (resumable)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from wanwu.classifier import Classifier
from wanwu.cpu import usable_cores
from wanwu.engines import check_precision
from wanwu.errors import WanwuError
from wanwu.loader import ModelRequest, load, open_source
from wanwu.models.registry import Preprocessing
from wanwu.precision.auto import AUTO
from wanwu.tagging.batch import RankOptions, model_info, wanwu_version
from wanwu.tagging.decode import TAG_LIMITS, DecodeSettings
from wanwu.tagging.discover import Discovery, common_base, discover
from wanwu.tagging.ledger import Ledger, TagSummary
from wanwu.tagging.mainguard import spawn_reruns_caller
from wanwu.tagging.records import Existing, ModelInfo, RunKey, categories_version
from wanwu.tagging.runner import LocalRun
from wanwu.tagging.vectors import VectorFile, model_key, sidecar
from wanwu.tagging.writers import FORMATS, CsvFile, LineFile, OutputError, format_for, latest_only
from wanwu.tagging.xmp import LANGS, NAMINGS, SidecarSummary, write_sidecars
from wanwu.threadnames import sigint_to_main_thread

DECODE_MODES = ("auto", "processes", "threads")


@dataclass(frozen=True)
class TagOptions:
    top_k: int = 5
    min_score: float = 0.0
    fast_decode: bool = False
    # Small: EfficientNet-Lite0 on 2 single-threaded OpenVINO streams costs ~11.3 CPU ms/image at batch 1-2 and
    # ~12.9 at 16 (Zen 4); batch 4 keeps most of that and the per-batch Python cost low.
    batch_size: int = 4
    decode_workers: int | None = None  # processes (default: one per core)
    # processes, threads, or auto: processes, except for a script calling from its top level without an
    # ``if __name__ == "__main__":`` guard, which a spawned process would run again (wanwu.tagging.mainguard)
    decode: str = "auto"
    threads: int | None = None  # inference workers, one thread each (default: one per core)
    force: bool = False  # tag everything again, starting the output over
    fmt: str | None = None  # jsonl, csv or parquet (default: from the output's suffix, else jsonl)
    patterns: tuple[str, ...] = ()  # globs a file in a folder must match (default: image suffixes)
    follow_symlinks: bool = False
    max_bytes: int = TAG_LIMITS.max_bytes
    max_pixels: int = TAG_LIMITS.max_pixels
    xmp: bool = False  # write an XMP sidecar of keywords beside each image (wanwu.tagging.xmp)
    xmp_name: str = "full"  # photo.jpg.xmp (full: darktable, digiKam) or photo.xmp (stem: Lightroom)
    lang: str = "both"  # the sidecars' keywords: zh, en or both

    def __post_init__(self) -> None:
        for name, valid in (("decode", DECODE_MODES), ("xmp_name", NAMINGS), ("lang", LANGS)):
            if getattr(self, name) not in valid:
                raise ValueError(f"{name} must be one of {', '.join(valid)}, not {getattr(self, name)!r}")

    def decode_settings(self, preprocessing: Preprocessing) -> DecodeSettings:
        limits = type(TAG_LIMITS)(self.max_bytes, self.max_pixels, TAG_LIMITS.bytes_setting, TAG_LIMITS.pixels_setting)
        return DecodeSettings(preprocessing, limits, self.fast_decode)


def load_tagger(model: str | None = None, engine: str | None = None, weights: Path | None = None, home: Path | None = None,
                precision: str = "auto", workers: int | None = None, batch: int = 4) -> tuple[Classifier, list]:
    """A classifier and ``workers`` single-threaded engine replicas (OpenVINO: streams of one compiled model).

    ``auto`` resolves as for ``predict``, timed with one thread at ``batch``; records carry what it chose.
    """
    count = workers or usable_cores()
    classifier = Classifier.from_loaded(load(ModelRequest(model, engine, weights, home, precision, 1, batch, count)))
    first = classifier.engine
    return classifier, [first, *(first.replica() for _ in range(count - 1))]


def open_output(path: Path, fmt: str, force: bool = False) -> LineFile:
    """The output to append to (``force``: started over), a torn last line already repaired."""
    if fmt not in FORMATS:
        raise OutputError(f"unknown format {fmt!r}; valid: {', '.join(FORMATS)}")
    if fmt == "parquet":
        from wanwu.tagging.parquet import ParquetFile

        cls: type[LineFile] = ParquetFile
    else:
        cls = CsvFile if fmt == "csv" else LineFile
    if force:
        cls.remove(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return cls(path)


def tag(
    sources: Sequence[str | os.PathLike], out: str | os.PathLike, *, model: str | None = None, engine: str | None = None,
    weights: Path | None = None, home: Path | None = None, precision: str = "auto", options: TagOptions | None = None,
    progress: Callable[[int, int, int], None] | None = None, tagger: tuple[Classifier, list] | None = None,
    ray: str | None = None, ray_actors: int | None = None,
) -> TagSummary:
    """Tag every image under ``sources`` into ``out``; re-running resumes. ``progress(done, failed, total)``.

    Decoding runs in processes; a script that calls this from its top level without an ``if __name__ ==
    "__main__":`` guard (which every spawned process would run again) gets threads instead (``options.decode``).
    A run in which every image failed raises ``TagFailedError`` (its ``summary`` says why) once the records are saved.
    Ctrl-C (``KeyboardInterrupt``) stops it cleanly: what is decoded and queued is tagged and saved, then
    ``TagInterrupted`` (a ``KeyboardInterrupt`` whose ``summary`` counts what was saved) is raised; running the same
    call again resumes. ``options.xmp`` writes a sidecar per image once the records are saved (``summary.sidecars``).

    ``tagger``: a ``load_tagger(...)`` result to reuse (its model, engine and precision win). ``ray``: run on
    a Ray cluster (``"auto"`` or an address; ``pip install 'wanwu[ray]'``) with ``ray_actors`` engines of
    ``options.threads`` CPUs each (default: half the cluster's CPUs, one each).
    """
    options = options or TagOptions()
    sources = [Path(s).expanduser() for s in sources]
    found = discover(sources, options.patterns, options.follow_symlinks)
    if ray:
        info, make = _ray_runner(model, engine, weights, home, precision, options, ray, ray_actors)
    else:
        with sigint_to_main_thread():  # the engine's native threads are born blocking Ctrl-C (threadnames)
            tagger = tagger or load_tagger(model, engine, weights, home, precision, options.threads, options.batch_size)
        info, make = _local_runner(tagger, options, _decode_in_threads(options))
    out = Path(out).expanduser()
    fmt = format_for(out, options.fmt)
    output = open_output(out, fmt, options.force)
    report = None if progress is None else (lambda done, failed: progress(done, failed, len(found.files)))
    try:
        vectors = VectorFile(sidecar(out), model_key(info.model, info.weights_sha256), options.force)
        summary, runner, interrupted = _run(found, info, output, make, info.key_for(precision), report, vectors)
        if options.xmp and not interrupted:  # the records are saved first: a sidecar problem never loses them
            summary.sidecars = _sidecars(output, found, common_base(sources), options).as_dict()
    finally:
        output.close()
    summary.out, summary.symlinks_skipped, summary.torn_bytes = str(out), found.symlinks_skipped, output.dropped_bytes
    summary.settings = run_settings(sources, out, fmt, info, options, runner)
    if interrupted:
        raise TagInterrupted(summary)
    if summary.failed and not (summary.tagged or summary.reused or summary.skipped):
        raise TagFailedError(summary)
    return summary


def _run(found: Discovery, info: ModelInfo, output: LineFile, make: Callable, key: RunKey,
         report: Callable[[int, int], None] | None, vectors: VectorFile) -> tuple[TagSummary, object, bool]:
    """The run itself, stopped cleanly by Ctrl-C: what is queued is written, and the output compacted as at the end
    of a run. Each batch's embeddings and pHashes go to ``vectors`` before its records. Returns (summary, runner,
    interrupted)."""
    started, runner, interrupted = time.perf_counter(), None, False
    existing = Existing(key)
    for record in output.read():
        existing.add(record)
    ledger = Ledger(info, output, existing, report)
    try:
        runner = make(ledger)
        runner.vectors = vectors  # embeddings and pHashes beside the records (wanwu.tagging.vectors)
        runner.run(found.files)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        ledger.close()
        vectors.close()
    summary = ledger.summary
    if interrupted:
        summary.images = len(found.files)
        summary.elapsed_s = summary.elapsed_s or time.perf_counter() - started
    # one record per image: drop the ones replaced now, or left by a run that stopped before compacting
    output.finish(compact=summary.replaced > 0 or existing.duplicates)
    return summary, runner, interrupted


def _sidecars(output: LineFile, found: Discovery, base: str, options: TagOptions) -> SidecarSummary:
    """A sidecar for each image of this run, from its record (tagged now or earlier); images gone are passed over."""
    wanted = {f.rel for f in found.files if f.error is None}
    records = (r for r in latest_only(output.read) if r["path"] in wanted)
    return write_sidecars(records, base, options.xmp_name, options.lang, f"wanwu {wanwu_version()}")


def _decode_in_threads(options: TagOptions) -> bool:
    # the frame that called tag(): two up from here
    return options.decode == "threads" or (options.decode == "auto" and spawn_reruns_caller(sys._getframe(2)))


def _local_runner(tagger: tuple[Classifier, list], options: TagOptions, in_threads: bool) -> tuple[ModelInfo, Callable]:
    classifier, engines = tagger
    settings = options.decode_settings(classifier.spec.preprocessing)
    rank = RankOptions(options.top_k, options.min_score)
    info = model_info(classifier)  # names the category table too
    workers = options.decode_workers or usable_cores()
    return info, lambda ledger: LocalRun(ledger, classifier, engines, settings, rank, options.batch_size, workers,
                                         decode_in_threads=in_threads)


class TagInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped the run: ``summary`` counts the records saved; the same call again resumes."""

    def __init__(self, summary: TagSummary) -> None:
        super().__init__("interrupted")
        self.summary = summary


class TagFailedError(WanwuError, code="all_failed"):
    """Every image of a run failed: the records (errors) are written, but nothing was tagged."""

    def __init__(self, summary: TagSummary) -> None:
        code, count = summary.errors.most_common(1)[0] if summary.errors else ("unknown", summary.failed)
        super().__init__(f"every one of the {summary.failed:,} images failed ({count:,} {code}); "
                         f"the errors are recorded in {summary.out}")
        self.summary = summary


def _ray_runner(model: str | None, engine: str | None, weights: Path | None, home: Path | None, precision: str,
                options: TagOptions, address: str, actors: int | None) -> tuple[ModelInfo, Callable]:
    from wanwu.tagging.ray_run import RayRun

    request = ModelRequest(model, engine, weights, home, precision, options.threads or 1, options.batch_size).resolved()
    source = open_source(request)
    if precision != AUTO:
        check_precision(request.engine, precision)  # type: ignore[arg-type]  # here, not as an actor's traceback
    # auto is resolved by each actor on its own node's CPU kind (wanwu.loader), and each record names what ran;
    # the run's own precision stays "auto", which any precision's records of these weights are current for
    info = ModelInfo(source.spec.name, source.weights_sha256, precision, request.engine, wanwu_version(),  # type: ignore[arg-type]
                     categories_version(source))
    settings = options.decode_settings(source.spec.preprocessing)
    tagger = {"model": source.spec.name, "engine": request.engine, "weights": str(weights) if weights else None,
              "home": str(home) if home else None, "precision": precision, "top_k": options.top_k,
              "min_score": options.min_score, "fast_decode": options.fast_decode, "max_pixels": options.max_pixels,
              "batch": options.batch_size}
    return info, lambda ledger: RayRun(ledger, settings, tagger, options.batch_size, address, actors, options.threads or 1)


def run_settings(sources: Sequence[str | os.PathLike], out: Path, fmt: str, info: ModelInfo, options: TagOptions,
                 runner: object) -> dict:
    """What a run was asked to do and with what: part of the summary and of the report."""
    chosen = {k: v for k, v in asdict(options).items() if k not in ("fmt", "decode_workers", "threads", "decode")}
    settings = {"sources": [str(s) for s in sources], "base": common_base([Path(s) for s in sources]), "out": str(out),
                "format": fmt, **info.as_dict(), **chosen, "cores": usable_cores()}
    if isinstance(runner, LocalRun):
        return {**settings, "runner": "local", "decode_workers": f"{runner.decode_workers} "
                f"{'threads' if runner.decode_in_threads else 'processes'}",
                "inference_workers": len(runner.engines)}
    cluster = getattr(runner, "cluster", {})
    return {**settings, "runner": f"ray ({cluster.get('address')}, {cluster.get('cluster_cpus')} CPUs)",
            "decode_workers": "Ray tasks", "ray": cluster,
            "inference_workers": f"{cluster.get('actors')} actors × {cluster.get('actor_cpus')} CPU"}
