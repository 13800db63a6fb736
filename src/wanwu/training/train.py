"""One training run: folder -> embeddings (cached) -> head -> validation metrics -> a new version ``NAME@V``."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from wanwu.errors import DatasetError, InvalidNameError, WanwuError
from wanwu.loader import ModelRequest, open_runner, open_source
from wanwu.models.registry import Preprocessing
from wanwu.sources import ModelSource
from wanwu.trained.outofset import global_part, measure
from wanwu.trained.source import feature_source
from wanwu.trained.store import Version, check_name, is_trained_ref
from wanwu.training import Reporter, Silent
from wanwu.training.data import Sample, drop_failed, prepare
from wanwu.training.embed import VIEWS, EmbeddingCache, Job, cache_folder, extract
from wanwu.training.finetune import finetune
from wanwu.training.head import HeadConfig, fit
from wanwu.training.metrics import metrics, unknown_threshold
from wanwu.training.run import Run, TrainOptions
from wanwu.training.version import write_version

DEFAULT_BASE = "efficientnet_lite0"
SMALL_SET = 500  # below this many training images, ``--augment auto`` adds flipped and zoomed views
# Below this many training images ``--features auto`` is ``pyramid`` (+1.2 points on 300-3,000 Fashion-MNIST images);
# above, ``global``: pyramid vectors are 11.5x wider (Lite0: 14,720 floats), so the fit's time and memory grow with them.
PYRAMID_BELOW = 10_000
FEATURES = ("auto", "global", "pyramid")
AUGMENT = {"none": ("center",), "flip": ("center", "flip"), "all": VIEWS}
CROPS = ("full", "center")
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


def training_preprocessing(pre: Preprocessing, crop: str) -> Preprocessing:
    """``full`` resizes the shorter side straight to the crop size (nothing cut from it); ``center`` is the base's."""
    if crop not in CROPS:
        raise DatasetError(f"--crop must be one of {', '.join(CROPS)}; got {crop!r}")
    return dataclasses.replace(pre, resize_size=pre.crop_size) if crop == "full" else pre


def _base(options: TrainOptions, home: Path) -> ModelSource:
    name = options.base or DEFAULT_BASE
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
    reporter.stage(f"{run.features} embeddings ({engine_name}, {len(jobs) - todo} of {len(jobs)} cached)", len(jobs))
    engine = open_runner(feature_source(run.base, run.features), engine_name, threads=threads) if todo else None
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


def _matrix(samples: list[Sample], views: tuple[str, ...], cache: EmbeddingCache) -> tuple[np.ndarray, np.ndarray]:
    rows = [(cache.get(s.sha256, v), s.label) for s in samples for v in views]
    return np.stack([r for r, _ in rows]), np.array([y for _, y in rows], np.int64)


def _fit(run: Run, cache: EmbeddingCache, reporter: Reporter) -> None:
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
    _in_set(run, cache)
    run.timings["head"] = time.perf_counter() - started


def _in_set(run: Run, cache: EmbeddingCache) -> None:
    """Out-of-set evidence (``trained.outofset``) from the base's global embedding of the same cached vectors."""
    from wanwu.trained.graph import embedding_size, load_model

    width = embedding_size(load_model(run.base.onnx_path()))

    def part(samples: list[Sample], views: tuple[str, ...]) -> np.ndarray:
        return global_part(_matrix(samples, views, cache)[0], run.features, width)

    held_out = part(run.data.val, ("center",)) if run.data.val else None
    stored = run.data.train + run.data.val if run.refitted else run.data.train
    run.in_set, run.out_of_set = measure(part(run.data.train, run.views), held_out, part(stored, run.views), run.options.seed)


def train(options: TrainOptions, home: Path, reporter: Reporter | None = None) -> tuple[Version, Run]:
    """The whole run; nothing is written to the store's models unless every step succeeds."""
    reporter = reporter or Silent()
    check_name(options.name)
    if options.mode not in MODES:
        raise WanwuError(f"--mode must be one of {', '.join(MODES)}; got {options.mode!r}")
    if options.blocks is not None and options.mode != "finetune":
        raise WanwuError("--blocks is for --mode finetune (head mode trains no block of the base)")
    if options.features != "auto" and options.mode != "head":
        raise WanwuError("--features is for --mode head (fine-tuning trains the base's own pooling)")
    started = time.perf_counter()
    data = prepare(options.data, options.labels, options.val, options.val_split, options.seed, reporter)
    base = _base(options, home)
    run = Run(options, data, base, training_preprocessing(base.spec.preprocessing, options.crop),
              views_for(options.augment, len(data.train)), features_for(options.features, len(data.train)))
    run.timings["prepare"] = time.perf_counter() - started
    if options.mode == "finetune":
        finetune(run, home, reporter)
    else:
        _fit(run, _embed(run, home, reporter), reporter)
    t0 = time.perf_counter()
    reporter.stage("writing the version")
    version = write_version(run, home)
    run.timings["write"] = time.perf_counter() - t0
    run.timings["total"] = time.perf_counter() - started
    return version, run
