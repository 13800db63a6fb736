"""``--mode finetune``: the base's last block(s) and a new classifier trained in PyTorch on cached trunk activations.

1. The trunk (the base up to the trained blocks, ``wanwu.trained.finetuned``) runs once per image and view on
   the fast engines, like head mode's extraction; its activations are kept in memory as float16
   (Lite0, last block: 192 × 7 × 7 values, 18 KB per image; 1.1 GB for 60,000), so an epoch runs only the tail.
2. The tail trains with early stopping on the validation images (``wanwu.training.tail``); the best epoch's
   tail gives the metrics and the ``unknown`` threshold.
3. ``refit``: a fresh tail is trained on training + validation images for the best epoch count, on the same
   schedule, and stored (the metrics stay a held-out estimate, as in head mode).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from wanwu.cpu import usable_cores
from wanwu.loader import ModelRequest, open_runner
from wanwu.trained.finetuned import trunk_source
from wanwu.training import Reporter
from wanwu.training.data import Sample, drop_failed
from wanwu.training.embed import EmbeddingCache, Job, extract
from wanwu.training.metrics import metrics, unknown_threshold
from wanwu.training.run import Run
from wanwu.training.tail import TailConfig, TailFit, fit_tail, predict

DEFAULT_BLOCKS = 1  # Lite0: its last MBConv block (192 -> 320 channels at 7 × 7) + the 1×1 head conv + a new Linear


class Activations:
    """``extract``'s cache interface, in memory: one float16 row per (image SHA-256, view), allocated at the first."""

    def __init__(self, keys: list[str]) -> None:
        self.row = {k: i for i, k in enumerate(keys)}
        self.filled = np.zeros(len(keys), bool)
        self.array: np.ndarray | None = None
        self.failures: dict[str, str] = {}
        self.unsaved = 0  # nothing to save: ``extract`` never flushes

    def get(self, sha256: str, view: str) -> np.ndarray | None:
        i = self.row.get(EmbeddingCache.key(sha256, view))
        return None if i is None or not self.filled[i] or self.array is None else self.array[i]

    def put(self, sha256: str, view: str, vector: np.ndarray) -> None:
        if self.array is None:
            self.array = np.zeros((len(self.row), *vector.shape), np.float16)
        i = self.row[EmbeddingCache.key(sha256, view)]
        self.array[i], self.filled[i] = vector, True

    def fail(self, sha256: str, why: str) -> None:
        self.failures[sha256] = why

    def save(self) -> None:
        pass

    def rows(self, samples: list[Sample], views: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
        assert self.array is not None
        index = [self.row[EmbeddingCache.key(s.sha256, v)] for s in samples for v in views]
        return self.array[index], np.array([s.label for s in samples for _ in views], np.int64)


def blocks_of(run: Run) -> int:
    return DEFAULT_BLOCKS if run.options.blocks is None else run.options.blocks


def _activations(run: Run, reporter: Reporter) -> Activations:
    started = time.perf_counter()
    request = ModelRequest(engine=run.options.engine, threads=run.options.threads).resolved()
    engine_name, threads = request.engine, request.threads
    val_views = run.views if run.options.refit else ("center",)
    jobs = [Job(s.path, s.sha256, run.views) for s in run.data.train] + [Job(s.path, s.sha256, val_views) for s in run.data.val]
    store = Activations([EmbeddingCache.key(j.sha256, v) for j in jobs for v in j.views])
    reporter.stage(f"activations of the frozen part ({engine_name}, {blocks_of(run)} block(s) trained)", len(jobs))
    engine = open_runner(trunk_source(run.base, blocks_of(run)), engine_name, threads=threads)  # type: ignore[arg-type]
    t0 = time.perf_counter()
    failed = extract(jobs, engine.run, run.preprocessing, store, workers=threads, on_image=reporter.advance)  # type: ignore[arg-type]
    seconds = time.perf_counter() - t0
    row = store.array[0] if store.array is not None else None
    run.extraction = {"images": len(jobs), "cached": 0, "extracted": len(jobs), "views": list(run.views), "engine": engine_name,
                      "seconds": round(seconds, 2), "images_per_s": round(len(jobs) / seconds, 1) if seconds else None,
                      "activations": None if row is None else f"float16 {' × '.join(map(str, row.shape))}",
                      "activations_mb": 0 if row is None else round(len(store.row) * row.nbytes / 1e6, 1)}
    drop_failed(run.data, failed)
    run.timings["activations"] = time.perf_counter() - started
    return store


def _new_tail(run: Run):  # type: ignore[no-untyped-def]
    from wanwu.models.split import Tail

    return Tail(run.base.torch_model(), blocks_of(run), len(run.data.folder.classes))


def _note_epoch(reporter: Reporter, what: str):  # type: ignore[no-untyped-def]
    def note(record: dict) -> None:
        score = f", validation top-1 {record['val_top1']:.2%} (loss {record['val_loss']:.3f})" if "val_top1" in record else ""
        reporter.note(f"{what} epoch {record['epoch']}: training loss {record['train_loss']:.3f}{score}")
    return note


def _fit(run: Run, store: Activations, config: TailConfig, reporter: Reporter) -> TailFit:
    """Train on the training images, keep the best epoch on the validation ones, measure it."""
    started = time.perf_counter()
    x, y = store.rows(run.data.train, run.views)
    val = store.rows(run.data.val, ("center",)) if run.data.val else None
    tail = _new_tail(run)
    reporter.stage(f"fine-tuning on {len(x)} activations (at most {config.max_epochs} epochs)", None)
    fit = fit_tail(tail, x, y, config, val, on_epoch=_note_epoch(reporter, "fine-tuning"))
    run.tail = tail
    if val is not None:
        run.val_logits = predict(tail, val[0])
        run.metrics = metrics(run.val_logits, val[1], run.data.names)
        run.unknown = unknown_threshold(run.val_logits, val[1])
    run.timings["finetune"] = time.perf_counter() - started
    return fit


def _refit(run: Run, store: Activations, config: TailConfig, epochs: int, reporter: Reporter) -> None:
    started = time.perf_counter()
    x, y = store.rows(run.data.train + run.data.val, run.views)
    reporter.stage(f"fine-tuning the stored model on training + validation images ({len(x)} activations, {epochs} epochs)")
    tail = _new_tail(run)
    fit_tail(tail, x, y, config, None, epochs=epochs, on_epoch=_note_epoch(reporter, "refit"))
    run.tail, run.refitted = tail, True
    run.timings["refit"] = time.perf_counter() - started


def finetune(run: Run, home: Path, reporter: Reporter) -> None:
    """Activations, then the tail: ``run.tail``, ``run.finetune`` (what was trained, epoch by epoch), metrics."""
    import torch

    _new_tail(run)  # a --blocks the base does not have fails here, before any image is read
    store = _activations(run, reporter)
    config = TailConfig(max_epochs=run.options.epochs or TailConfig.max_epochs, seed=run.options.seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(run.options.threads or usable_cores())
    try:
        fit = _fit(run, store, config, reporter)
        if run.options.refit and run.data.val:
            _refit(run, store, config, fit.best_epoch, reporter)
    finally:
        torch.set_num_threads(threads)
    run.finetune = {
        "blocks": blocks_of(run), "epochs_run": fit.epochs, "best_epoch": fit.best_epoch, "stopped_early": fit.stopped_early,
        "max_epochs": config.max_epochs, "patience": config.patience, "lr": config.lr, "weight_decay": config.weight_decay,
        "label_smoothing": config.label_smoothing, "batch_size": fit.batch_size, "history": fit.history,
        "trained_parameters": sum(p.numel() for p in run.tail.parameters()),
    }
