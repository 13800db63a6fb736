"""Everything the app holds between requests, and how it comes up and goes down."""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import numpy as np

from wanwu.classifier import Classifier
from wanwu.errors import UnknownModelError
from wanwu.loader import ModelRequest, load
from wanwu.service.batcher import MicroBatcher
from wanwu.service.cache import ResultCache, make_cache
from wanwu.service.errors import NotReadyError
from wanwu.service.memory import release_memory
from wanwu.service.metrics import Metrics
from wanwu.service.pipeline import Pipeline
from wanwu.service.settings import ServiceSettings
from wanwu.threadnames import name_os_thread

log = logging.getLogger("wanwu.service")


def model_request(settings: ServiceSettings, model: str | None = None) -> ModelRequest:
    """What the service asks the loader for: ``model`` (default: the settings' first) split into
    ``inference_workers`` streams of ``threads`` split between them, auto timed at the serving batch size."""
    workers = settings.inference_workers
    return ModelRequest(model or settings.model, settings.engine, settings.weights, settings.home, settings.precision,
                        max(1, settings.inference_threads // workers), settings.max_batch, workers, export_in_child=True)


def load_classifier(settings: ServiceSettings, model: str | None = None) -> Classifier:
    loaded = load(model_request(settings, model))
    if loaded.choice is not None:
        log.info("precision auto: %s (%s)", loaded.precision, loaded.choice.reason)
    return Classifier.from_loaded(loaded, settings.image_limits())


def warm_batch_sizes(max_batch: int) -> list[int]:
    """Every batch size the service warms: 1 to ``max_batch``, at most 16 (larger ones are rare; each costs memory)."""
    return sorted({1, max_batch, *range(2, min(max_batch, 16) + 1)})


def slot_name(model: str) -> str:
    """The name a loaded model answers to: ``shop`` for ``shop@3`` (a slot holds one version at a time)."""
    return model.partition("@")[0]


class ServiceState:
    def __init__(self, settings: ServiceSettings, classifier: Classifier | None = None) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.classifier = classifier  # the default model's (and ``pipeline`` its pipeline)
        self.pipeline: Pipeline | None = None
        self.pipelines: dict[str, Pipeline] = {}  # every loaded model by slot name, the default included
        self.error: str | None = None
        self.started = time.monotonic()
        self.ready_after_s: float | None = None
        self._shared: tuple[ThreadPoolExecutor, ResultCache] | None = None
        self._switching = asyncio.Lock()
        self._retiring: set[asyncio.Task] = set()

    @property
    def ready(self) -> bool:
        return self.pipeline is not None

    def require_ready(self) -> Pipeline:
        """The default pipeline, or a 503 ``not_ready`` that says whether the model is loading or failed to load."""
        if self.pipeline is None:
            # The load error names files in the store: the log has it whole, a client gets its kind only.
            kind = self.error and self.error.split(":", 1)[0]
            reason = f"the model failed to load ({kind}); the server log says why" if kind else "the model is still loading"
            raise NotReadyError(f"not ready: {reason}")
        return self.pipeline

    async def start(self) -> None:
        try:
            await asyncio.to_thread(self._start_blocking)
        except Exception as err:  # noqa: BLE001 - reported by /readyz and the log, not a crash loop
            self.error = f"{type(err).__name__}: {err}"
            log.error("model failed to load: %s", self.error)

    def _start_blocking(self) -> None:
        s = self.settings
        classifier = self.classifier or load_classifier(s)
        pool = ThreadPoolExecutor(s.decode_threads, thread_name_prefix="wanwu-decode", initializer=name_os_thread)
        self._shared = (pool, make_cache(s.redis_url, s.cache_size, s.cache_ttl_s))
        pipeline = self._build(classifier)
        self.pipelines[slot_name(classifier.model_name)] = pipeline
        for ref in s.extra_models:  # `serve --model A --model B@2`: each loaded once, picked per request
            extra = self._build(load_classifier(s, ref))
            self.pipelines[slot_name(extra.classifier.model_name)] = extra
        self.classifier, self.pipeline = classifier, pipeline
        self.ready_after_s = time.monotonic() - self.started
        self.metrics.ready.set(1)
        log.info(
            "ready in %.2f s: %s on %s (%s), batch ≤ %d%s",
            self.ready_after_s, classifier.model_name, classifier.engine.name, classifier.engine.precision, s.max_batch,
            f"; also {', '.join(p.classifier.model_name for p in self.pipelines.values() if p is not pipeline)}"
            if len(self.pipelines) > 1 else "",
        )

    def _build(self, classifier: Classifier) -> Pipeline:
        """The classifier warmed at every batch size and behind its own micro-batcher (decode pool and cache shared)."""
        s = self.settings
        assert self._shared is not None
        classifier.limits = s.image_limits()
        engines = [classifier.engine, *(classifier.engine.replica() for _ in range(s.inference_workers - 1))]
        runners = [partial(classifier.outputs, engine=engine) for engine in engines]
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
        pool, cache = self._shared
        return Pipeline(classifier, batcher, cache, self.metrics, s, pool)

    def pick(self, model: str | None) -> Pipeline | None:
        """The pipeline for ``model`` (a loaded name, or ``NAME@V`` of the loaded version); None: not ready yet."""
        if not model or self.pipeline is None:
            return self.pipeline
        pipeline = self.pipelines.get(slot_name(model))
        if pipeline is None or ("@" in model and pipeline.classifier.model_name != model):
            loaded = ", ".join(p.classifier.model_name for p in self.pipelines.values())
            raise UnknownModelError(f"model {model!r} is not loaded; loaded: {loaded} (POST /v1/models/NAME/activate loads one)")
        return pipeline

    async def activate(self, ref: str, make_default: bool = False) -> tuple[Classifier, str | None]:
        """Load ``ref`` beside what runs, warm it, then swap it into its slot; requests already holding the old
        version finish on it, then it stops and its memory goes. Returns the new classifier and the old version."""
        async with self._switching:
            classifier = await asyncio.to_thread(load_classifier, self.settings, ref)
            new = await asyncio.to_thread(self._build, classifier)
            slot = slot_name(classifier.model_name)
            old = self.pipelines.get(slot)
            self.pipelines[slot] = new
            if make_default or self.pipeline is old:
                self.classifier, self.pipeline = classifier, new
            if old is not None:
                task = asyncio.create_task(self._retire(old))
                self._retiring.add(task)
                task.add_done_callback(self._retiring.discard)
            log.info("activated %s%s", classifier.model_name, f" (was {old.classifier.model_name})" if old else "")
            return classifier, old.classifier.model_name if old else None

    async def _retire(self, pipeline: Pipeline) -> None:
        while pipeline.inflight:
            await asyncio.sleep(0.01)
        await asyncio.to_thread(pipeline.batcher.stop)
        del pipeline  # the last reference: the replaced engine is freed, and its pages returned
        await asyncio.to_thread(release_memory)

    async def stop(self) -> None:
        pipelines = list(self.pipelines.values())
        self.pipeline, self.pipelines = None, {}
        self.metrics.ready.set(0)
        for task in list(self._retiring):
            await task
        for pipeline in pipelines:
            await asyncio.to_thread(pipeline.batcher.stop)
        if self._shared is not None:
            pool, cache = self._shared
            pool.shutdown(wait=True)
            await cache.close()
