"""One image through the service: cache lookup, decode in a thread pool, micro-batched inference."""

from __future__ import annotations

import asyncio
import hashlib
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from wanwu.categories import category_table, summary
from wanwu.classifier import Classifier
from wanwu.preprocess import check_upload_size
from wanwu.ranking import label
from wanwu.service.batcher import BatchResult, MicroBatcher, QueueFullError
from wanwu.service.cache import Answer, ResultCache
from wanwu.service.errors import InferenceFailedError, OverloadedError
from wanwu.service.metrics import Metrics
from wanwu.service.settings import ServiceSettings
from wanwu.service.uploads import ClassifyOptions, Upload


@dataclass
class Pipeline:
    classifier: Classifier
    batcher: MicroBatcher
    cache: ResultCache
    metrics: Metrics
    settings: ServiceSettings
    decode_pool: ThreadPoolExecutor
    inflight: int = 0  # requests holding this pipeline: one replaced by a newer version stops at 0

    @property
    def cache_prefix(self) -> str:
        c = self.classifier
        return f"{c.model_name}:{c.weights_sha256[:16]}:{c.engine.precision}:{int(self.settings.fast_decode)}:"

    async def classify(self, upload: Upload, options: ClassifyOptions) -> dict:
        started = time.perf_counter()
        check_upload_size(upload.nbytes, self.settings.image_limits())
        digest = hashlib.sha256(upload.data).hexdigest()
        key = self.cache_prefix + digest
        answer = await self.cache.get(key)
        timings = {"decode": 0.0, "queue": 0.0, "inference": 0.0}
        cached = answer is not None
        if answer is None:
            self.metrics.cache_misses.inc()
            answer, timings = await self._infer(upload.data)
            await self.cache.put(key, answer)
        else:
            self.metrics.cache_hits.inc()
        timings["total"] = (time.perf_counter() - started) * 1000
        return {"filename": upload.filename, "sha256": digest, "cached": cached, **self._format(answer, options),
                "timings_ms": {k: round(v, 2) for k, v in timings.items()}}

    async def _infer(self, data: bytes) -> tuple[Answer, dict[str, float]]:
        loop = asyncio.get_running_loop()
        t0 = time.perf_counter()
        with self.batcher.expect():
            array = await loop.run_in_executor(
                self.decode_pool, self.classifier.preprocess, data, self.settings.fast_decode
            )
        decode_s = time.perf_counter() - t0
        self.metrics.decode.observe(decode_s)
        try:
            future = self.batcher.submit(array)
        except QueueFullError as err:
            raise OverloadedError(f"the service is busy ({err}); retry shortly") from None
        self.metrics.queue_depth.set(self.batcher.queue_depth)
        wrapped = asyncio.wrap_future(future)
        try:
            result: BatchResult = await asyncio.wait_for(wrapped, self.settings.request_timeout_s)
        except TimeoutError:
            future.cancel()
            raise OverloadedError(
                f"no answer within {self.settings.request_timeout_s:g} s (WANWU_REQUEST_TIMEOUT_S); retry shortly"
            ) from None
        except Exception as err:
            raise InferenceFailedError(f"inference failed: {err}") from err
        timings = {"decode": decode_s * 1000, "queue": result.queue_ms, "inference": result.inference_ms}
        return self.answer(result.logits), timings

    def answer(self, logits: np.ndarray) -> Answer:
        """One image's logits -> what the cache keeps: the classifier's result (the top classes, and the everyday
        categories and ``unknown`` from the full probabilities; a trained model: its own classes and threshold)."""
        result = self.classifier.results(logits[None], self.settings.max_top_k)[0]
        return Answer(ranked=[(p.index, p.score) for p in result], categories=[(c.id, c.score) for c in result.categories],
                      unknown=result.unknown, out_of_set=result.out_of_set)

    def _format(self, answer: Answer, options: ClassifyOptions) -> dict:
        top_k = options.top_k or self.settings.top_k
        predictions = label(answer["ranked"][:top_k], self.classifier.labels, options.min_score)
        table = category_table()
        categories = [table.category(table.ids.index(cid), score) for cid, score in answer["categories"]]
        unknown = bool(answer["unknown"])
        out: dict = {"summary": summary(categories, predictions, options.lang, unknown), "unknown": answer["unknown"]}
        if answer.get("out_of_set") is not None:  # only a trained version with the evidence says it
            out["out_of_set"] = answer["out_of_set"]
        if options.view != "classes":
            out["categories"] = [c.as_dict(options.lang, digits=6) for c in categories]
        if options.view != "categories":
            out["predictions"] = [p.as_dict(options.lang, digits=6) for p in predictions]
        return out
