"""One training run: folder -> embeddings (cached) -> head -> validation metrics -> a new version ``NAME@V``."""

from __future__ import annotations

import dataclasses
import functools
import time
from pathlib import Path

import numpy as np

from wanwu.errors import DatasetError, InvalidNameError, WanwuError
from wanwu.loader import ModelRequest, open_runner, open_source
from wanwu.models.registry import Preprocessing
from wanwu.sources import ModelSource
from wanwu.trained.companion import split_bases
from wanwu.trained.outofset import measure
from wanwu.trained.source import feature_source, pyramid_maps
from wanwu.trained.store import Version, check_name, is_trained_ref
from wanwu.training import Reporter, Silent, search
from wanwu.training.data import Sample, TrainingSet, drop_failed, prepare
from wanwu.training.embed import VIEWS, EmbeddingCache, GlobalPart, Job, Joined, Vectors, cache_folder, extract
from wanwu.training.finetune import finetune
from wanwu.training.head import HeadConfig, fit
from wanwu.training.metrics import metrics, unknown_threshold
from wanwu.training.run import NAMED_CROP, Run, TrainOptions
from wanwu.training.version import write_version

DEFAULT_BASE = "efficientnet_lite0"
AUTO = "auto"  # --base auto (head mode's default): chosen by cross-validation, ``wanwu.training.search``
SMALL_SET = 500  # below this many training images, ``--augment auto`` adds flipped and zoomed views
# Below this many training images ``--features auto`` is ``pyramid`` (+1.2 points on 300-3,000 Fashion-MNIST images);
# above, ``global``: pyramid vectors are 11.5x wider (Lite0: 14,720 floats), so the fit's time and memory grow with them.
PYRAMID_BELOW = 10_000
FEATURES = ("auto", "global", "pyramid")
AUGMENT = {"none": ("center",), "flip": ("center", "flip"), "all": VIEWS}
CROPS = ("auto", "full", "center", "pad")
MODES = ("head", "finetune")


def views_for(augment: str, train_images: int) -> tuple[str, ...]:
    if augment == "auto":
        return VIEWS if train_images < SMALL_SET else ("center",)
    if augment not in AUGMENT:
        raise DatasetError(f"--augment must be auto, {', '.join(AUGMENT)}; got {augment!r}")
    return AUGMENT[augment]


def features_for(features: str, train_images: int) -> str:
    if features not in FEATURES:
        raise DatasetError(f"--features must be one of {', '.join(FEATURES)}; got {features!r}")
    if features == "auto":
        return "pyramid" if train_images < PYRAMID_BELOW else "global"
    return features


def crop_for(crop: str, train: list[Sample]) -> tuple[str, str]:
    """``--crop`` resolved, and why: ``auto`` letterboxes (``pad``) a set whose training images are mostly cut-outs
    (with transparency: often trimmed to the object, which a square crop would cut), and crops ``full`` otherwise."""
    if crop not in CROPS:
        raise DatasetError(f"--crop must be one of {', '.join(CROPS)}; got {crop!r}")
    if crop != "auto":
        return crop, NAMED_CROP
    cutouts = sum(s.cutout for s in train)
    chosen = "pad" if 2 * cutouts >= len(train) else "full"
    return chosen, f"{cutouts} of {len(train)} training images are cut-outs with transparent pixels"


def training_preprocessing(pre: Preprocessing, crop: str) -> Preprocessing:
    """``full``: the shorter side resized straight to the crop size (the longer one is still cut to a square);
    ``pad``: the whole image letterboxed on white (nothing cut); ``center``: the base's own ImageNet crop."""
    if crop not in CROPS[1:]:
        raise DatasetError(f"a resolved crop is one of {', '.join(CROPS[1:])}; got {crop!r} (``crop_for`` resolves auto)")
    if crop == "center":
        return pre
    return dataclasses.replace(pre, resize_size=pre.crop_size, pad=crop == "pad")


def _base(name: str, home: Path) -> ModelSource:
    if is_trained_ref(name, home):
        raise InvalidNameError(f"--base must be an ImageNet model (wanwu models), not the trained model {name!r}")
    return open_source(ModelRequest(name, home=home))


def _embed(run: Run, home: Path, reporter: Reporter) -> EmbeddingCache:
    started = time.perf_counter()
    request = ModelRequest(engine=run.options.engine, threads=run.options.threads).resolved()
    engine_name, threads = request.engine, request.threads
    cache = EmbeddingCache(cache_folder(home, run.base, run.preprocessing, run.features))
    val_views = run.views if run.options.refit else ("center",)  # a refit trains on the validation images too
    jobs = [Job(s.path, s.sha256, run.views) for s in run.data.train] + [Job(s.path, s.sha256, val_views) for s in run.data.val]
    todo = sum(1 for j in jobs if j.sha256 not in cache.failures and any(cache.get(j.sha256, v) is None for v in j.views))
    run.extraction = {"images": len(jobs), "cached": len(jobs) - todo, "views": list(run.views), "engine": engine_name,
                      "features": run.features}
    reporter.stage(f"{run.features} embeddings of {_extraction_name(run)} ({engine_name}, {len(jobs) - todo} of {len(jobs)} "
                   "cached)", len(jobs))
    features = feature_source(run.base, run.features, run.preprocessing.crop_size)
    engine = open_runner(features, engine_name, threads=threads) if todo else None
    t0 = time.perf_counter()
    failed = extract(jobs, engine.run if engine else _no_engine, run.preprocessing, cache, workers=threads,
                     on_image=reporter.advance)
    cache.save()
    seconds = time.perf_counter() - t0
    run.extraction.update(extracted=todo, seconds=round(seconds, 2), images_per_s=round(todo / seconds, 1) if todo else None)
    drop_failed(run.data, failed)
    run.timings["embeddings"] = time.perf_counter() - started
    return cache


def _no_engine(batch: np.ndarray) -> np.ndarray:
    raise AssertionError("every embedding was cached")


def _matrix(samples: list[Sample], views: tuple[str, ...], cache: Vectors) -> tuple[np.ndarray, np.ndarray]:
    rows = [(cache.get(s.sha256, v), s.label) for s in samples for v in views]
    return np.stack([r for r, _ in rows]), np.array([y for _, y in rows], np.int64)


def _fit(run: Run, cache: Vectors, reporter: Reporter) -> None:
    """Fit on the training images and measure on the validation ones; then (``refit``) fit the stored head on
    both, so every labelled photo teaches the model and the metrics stay a held-out estimate."""
    started = time.perf_counter()
    x, y = _matrix(run.data.train, run.views, cache)
    reporter.stage(f"training the head on {len(x)} embeddings ({len(run.data.train)} images × {len(run.views)} views)")
    config = HeadConfig(l2=run.options.l2, max_iter=run.options.epochs or HeadConfig.max_iter)
    classes = len(run.data.folder.classes)
    run.head = fit(x, y, classes, config)
    if run.data.val:
        xv, yv = _matrix(run.data.val, ("center",), cache)
        run.val_logits = run.head.logits(xv)
        run.metrics = metrics(run.val_logits, yv, run.data.names)
        run.unknown = unknown_threshold(run.val_logits, yv)
        if run.options.refit:
            both = len(run.data.train) + len(run.data.val)
            reporter.stage(f"training the stored head on training + validation images ({both})")
            x, y = _matrix(run.data.train + run.data.val, run.views, cache)
            run.head = fit(x, y, classes, config, init=run.head)
            run.refitted = True
    _in_set(run, x)
    run.timings["head"] = time.perf_counter() - started


def _in_set(run: Run, x: np.ndarray) -> None:
    """Out-of-set evidence (``trained.outofset``) from the matrix the stored head was fitted on (every view of its
    images, image by image): the base's global embedding is all of a global vector, the first part of a pyramid one."""
    assert run.views[0] == "center"  # measure scores each image's plain view
    embeddings = x[:, : _global_width(run.base)] if run.features == "pyramid" or run.companion else x
    run.in_set, run.out_of_set = measure(embeddings, len(run.views), run.options.seed)


@functools.cache
def _global_width(base: ModelSource) -> int:
    """The base's embedding size: the channels of the last map its pyramid pools first (read once: the search asks
    for each global candidate and the out-of-set evidence again)."""
    return pyramid_maps(base)[0]["shape"][0]


def _named_base(options: TrainOptions) -> str:
    return DEFAULT_BASE if options.base in (None, AUTO) else options.base  # type: ignore[return-value]


def _new_run(options: TrainOptions, data: TrainingSet, base: ModelSource, features: str, crop: tuple[str, str]) -> Run:
    crop, why = crop  # decided once (``crop_for``), before any candidate's extraction drops unreadable files
    return Run(options, data, base, training_preprocessing(base.spec.preprocessing, crop),
               views_for(options.augment, len(data.train)), features, crop={"crop": crop, "why": why})


def _searched(options: TrainOptions, data: TrainingSet, home: Path, reporter: Reporter,
              crop: tuple[str, str]) -> tuple[Run, Vectors]:
    """``--base auto``: pyramid features of the training images with every candidate base (the global ones are their
    first columns), each (base, features) cross-validated, and (small sets) the joined pair; the chosen run and cache."""
    kinds = search.CANDIDATE_FEATURES if options.features == "auto" else (features_for(options.features, 0),)
    extracted = {}
    for name in search.CANDIDATE_BASES:
        run = _new_run(options, data, _base(name, home), "pyramid", crop)
        extracted[name] = (run, _embed(run, home, reporter))  # failed files are dropped from ``data`` (shared)
    candidates = [(search.Candidate(name, kind), run, _kind_of(cache, kind, run.base))
                  for name, (run, cache) in extracted.items() for kind in kinds]
    companion = None
    if len(data.train) <= search.JOINED_UP_TO and search.JOINED[0] in extracted:
        first, first_cache = extracted[search.JOINED[0]]
        companion = Run(options, data, _base(search.JOINED[1], home), first.preprocessing, first.views, "pyramid")
        companion_cache = _embed(companion, home, reporter)  # the companion reads the first base's input
        candidates += [(search.Candidate(search.JOINED[0], kind, search.JOINED[1]), first,
                        Joined(_kind_of(first_cache, kind, first.base), _kind_of(companion_cache, kind, companion.base)))
                       for kind in kinds]
    started = time.perf_counter()
    labels = [s.label for s in data.train]
    folds = search.fold_count(labels)
    fold = search.folds_of(labels, [s.sha256 for s in data.train], folds, options.seed)
    config = HeadConfig(l2=options.l2, max_iter=options.epochs or HeadConfig.max_iter)
    reporter.stage(f"choosing the base: {folds}-fold cross-validation on {len(labels)} training images", len(candidates))
    scores = []
    for candidate, run, vectors in candidates:
        x, _ = _matrix(data.train, run.views, vectors)
        scores.append(search.score(candidate, x, labels, len(run.views), fold, len(data.folder.classes), config))
        reporter.advance()
    chosen = search.best(scores)
    _, run, vectors = candidates[scores.index(chosen)]
    run.features = chosen.candidate.features
    run.companion = companion.base if chosen.candidate.companion and companion else None
    run.choice = search.record(chosen, scores, folds, time.perf_counter() - started)
    runs = [r for r, _ in extracted.values()] + ([companion] if companion else [])
    run.extraction = {**run.extraction, "bases": {_extraction_name(r): r.extraction for r in runs}}
    run.timings["embeddings"] = sum(r.timings["embeddings"] for r in runs)
    run.timings["search"] = time.perf_counter() - started
    reporter.note(f"base: {run.choice['summary']}")
    return run, vectors


def _kind_of(cache: EmbeddingCache, kind: str, base: ModelSource) -> Vectors:
    """A pyramid cache as ``kind``: itself, or its first columns (the global part)."""
    return GlobalPart(cache, _global_width(base)) if kind == "global" else cache


def _extraction_name(run: Run) -> str:
    size = run.preprocessing.crop_size
    return run.base.spec.name + ("" if size == run.base.spec.preprocessing.crop_size else f"@{size}")


def _explicit(options: TrainOptions, data: TrainingSet, home: Path, reporter: Reporter,
              crop: tuple[str, str]) -> tuple[Run, Vectors]:
    """``--base NAME`` or ``--base A+B`` (joined: B reads A's input), or the default base above the search's size."""
    features = features_for(options.features, len(data.train))
    first, second = split_bases(_named_base(options))
    run = _new_run(options, data, _base(first, home), features, crop)
    companion_base = _base(second, home) if second is not None else None  # a wrong name fails before any extraction
    run.choice = (search.skipped_record(DEFAULT_BASE, features, len(data.train)) if options.base in (None, AUTO)
                  else search.explicit_record(_named_base(options), features))
    vectors: Vectors = _embed(run, home, reporter)
    if companion_base is not None:
        companion = Run(options, data, companion_base, run.preprocessing, run.views, features)
        vectors = Joined(vectors, _embed(companion, home, reporter))
        run.companion = companion.base
        run.extraction = {**run.extraction, "bases": {_extraction_name(r): r.extraction for r in (run, companion)}}
        run.timings["embeddings"] += companion.timings["embeddings"]
    return run, vectors


def train(options: TrainOptions, home: Path, reporter: Reporter | None = None) -> tuple[Version, Run]:
    """The whole run; nothing is written to the store's models unless every step succeeds."""
    reporter = reporter or Silent()
    check_name(options.name)
    if options.mode not in MODES:
        raise WanwuError(f"--mode must be one of {', '.join(MODES)}; got {options.mode!r}")
    if options.blocks is not None and options.mode != "finetune":
        raise WanwuError("--blocks is for --mode finetune (head mode trains no block of the base)")
    if split_bases(_named_base(options))[1] is not None and options.mode != "head":
        raise WanwuError(f"--base {options.base} (two bases joined) is for --mode head: fine-tuning trains one base")
    if options.features != "auto" and options.mode != "head":
        raise WanwuError("--features is for --mode head (fine-tuning trains the base's own pooling)")
    started = time.perf_counter()
    data = prepare(options.data, options.labels, options.val, options.val_split, options.seed, reporter)
    prepared = time.perf_counter() - started
    crop = crop_for(options.crop, data.train)
    if options.mode == "finetune":
        run = _new_run(options, data, _base(_named_base(options), home), features_for(options.features, len(data.train)),
                       crop)
        run.timings["prepare"] = prepared
        finetune(run, home, reporter)
    elif options.base in (None, AUTO) and len(data.train) <= search.SEARCH_UP_TO:
        run, cache = _searched(options, data, home, reporter, crop)
        run.timings["prepare"] = prepared
        _fit(run, cache, reporter)
    else:
        run, vectors = _explicit(options, data, home, reporter, crop)
        run.timings["prepare"] = prepared
        _fit(run, vectors, reporter)
    t0 = time.perf_counter()
    reporter.stage("writing the version")
    version = write_version(run, home)
    run.timings["write"] = time.perf_counter() - t0
    run.timings["total"] = time.perf_counter() - started
    return version, run
