"""Everything the app holds between requests, and how it comes up and goes down."""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import numpy as np

from wanwu.classifier import Classifier, open_model
from wanwu.engines import default_engine
from wanwu.precision import open_engine, resolve_precision
from wanwu.service.batcher import MicroBatcher
from wanwu.service.cache import make_cache
from wanwu.service.metrics import Metrics
from wanwu.service.pipeline import Pipeline
from wanwu.service.settings import ServiceSettings

log = logging.getLogger("wanwu.service")


def load_classifier(settings: ServiceSettings) -> Classifier:
    source = open_model(settings.model, settings.home, settings.weights)
    engine = settings.engine or default_engine()
    if engine != "torch":
        source.export_in_child_process()  # a fresh store is exported by a child process: the server never loads torch
    threads = max(1, settings.inference_threads // settings.inference_workers)  # split between workers
    precision, choice = resolve_precision(engine, source, threads, settings.precision, batch=settings.max_batch)
    if choice is not None:
        log.info("precision auto: %s (%s)", precision, choice.reason)
    runner = open_engine(engine, source, threads=threads, precision=precision, streams=settings.inference_workers)
    return Classifier(source, runner, settings.image_limits(), choice)


def warm_batch_sizes(max_batch: int) -> list[int]:
    """Every batch size the service warms: 1 to ``max_batch``, at most 16 (larger ones are rare; each costs memory)."""
    return sorted({1, max_batch, *range(2, min(max_batch, 16) + 1)})


class ServiceState:
    def __init__(self, settings: ServiceSettings, classifier: Classifier | None = None) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.classifier = classifier
        self.pipeline: Pipeline | None = None
        self.error: str | None = None
        self.started = time.monotonic()
        self.ready_after_s: float | None = None

    @property
    def ready(self) -> bool:
        return self.pipeline is not None

    async def start(self) -> None:
        try:
            await asyncio.to_thread(self._start_blocking)
        except Exception as err:  # noqa: BLE001 - reported by /readyz and the log, not a crash loop
            self.error = f"{type(err).__name__}: {err}"
            log.error("model failed to load: %s", self.error)

    def _start_blocking(self) -> None:
        s = self.settings
        classifier = self.classifier or load_classifier(s)
        classifier.limits = s.image_limits()
        engines = [classifier.engine, *(classifier.engine.replica() for _ in range(s.inference_workers - 1))]
        runners = [partial(classifier.logits, engine=engine) for engine in engines]
        size = classifier.spec.preprocessing.crop_size
        pixels = lambda n: np.zeros((n, size, size, 3), np.uint8)  # noqa: E731 - pixels, as the pipeline sends
        # OpenVINO builds and keeps kernels and buffers per input shape (~3.5 MB each for
        # EfficientNet-Lite0): sizes first met under load read as RSS growth for minutes. Sizes 1 and
        # the maximum are warmed before /readyz; the others (up to 16) by each inference thread just
        # after, before it takes requests (ResNet-18 fp32: ~0.5 s, which would otherwise delay readiness).
        first = sorted({1, s.max_batch})
        after = [pixels(n) for n in warm_batch_sizes(s.max_batch) if n not in first]
        batcher = MicroBatcher(
            runners, s.max_batch, s.max_wait_ms / 1000, s.max_queue, self.metrics.observe_batch, warm_batches=after
        )
        for run in runners:
            for n in first:
                run(pixels(n))
        batcher.start()
        pool = ThreadPoolExecutor(s.decode_threads, thread_name_prefix="wanwu-decode")
        self.classifier = classifier
        self.pipeline = Pipeline(classifier, batcher, make_cache(s.redis_url, s.cache_size, s.cache_ttl_s), self.metrics, s, pool)
        self.ready_after_s = time.monotonic() - self.started
        self.metrics.ready.set(1)
        log.info(
            "ready in %.2f s: %s on %s (%s), batch ≤ %d",
            self.ready_after_s, classifier.model_name, classifier.engine.name, classifier.engine.precision, s.max_batch,
        )

    async def stop(self) -> None:
        pipeline, self.pipeline = self.pipeline, None
        self.metrics.ready.set(0)
        if pipeline is None:
            return
        await asyncio.to_thread(pipeline.batcher.stop)
        pipeline.decode_pool.shutdown(wait=True)
        await pipeline.cache.close()
