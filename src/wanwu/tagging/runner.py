"""The local run: found files -> decode stage (processes) -> batches -> infer stage (threads) -> records.

The main thread submits files to the decode stage and takes its results in order; what happens to
each (skip, reuse, error, decode, infer) is the ``Ledger``'s business, shared with the Ray path.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

from wanwu.classifier import Classifier
from wanwu.tagging.batch import RankOptions, record_for, tag_batch
from wanwu.tagging.decode import DecodeSettings, Loaded, Task, worker_load
from wanwu.tagging.discover import Found
from wanwu.tagging.ledger import Ledger, TagSummary, cpu_s
from wanwu.tagging.stages import DecodeStage, InferStage
from wanwu.tagging.vectors import VectorFile


class LocalRun:
    def __init__(self, ledger: Ledger, classifier: Classifier, engines: list, settings: DecodeSettings, rank: RankOptions,
                 batch_size: int, decode_workers: int, load: Callable[[Task], Loaded] = worker_load,
                 decode_in_threads: bool = False) -> None:
        self.ledger, self.classifier, self.engines, self.settings, self.rank = ledger, classifier, engines, settings, rank
        self.batch_size, self.decode_workers, self.load = batch_size, decode_workers, load
        self.decode_in_threads = decode_in_threads
        self._pending: list[Loaded] = []
        self.vectors: VectorFile | None = None  # the embeddings' sidecar (api.tag sets it)
        self._fill: set[str] = set()  # paths decoded again only for a vector their record's content lacks
        self._filling: set[str] = set()  # their hashes (identical files: one decode)

    def run(self, files: list[Found]) -> TagSummary:
        started, cpu = time.perf_counter(), cpu_s()
        summary, info, existing = self.ledger.summary, self.ledger.info, self.ledger.existing
        summary.images = len(files)
        sizes = Counter(f.size for f in files if f.error is None)
        window = max(4 * self.decode_workers, 2 * self.batch_size * len(self.engines))
        decode = DecodeStage(self.settings, self.decode_workers, window, self.load, self.decode_in_threads)
        infer = InferStage(self.engines, self._infer)
        try:
            for found in files:
                if found.error is not None:
                    self.ledger.write([record_for(info, Loaded(found.rel, error=found.error))])
                    continue
                # a file with a same-size twin is hashed first, so identical content is decoded once
                decode.submit(Task(found.path, found.rel, found.size, existing.known(found.size), sizes[found.size] > 1))
                while decode.full:
                    self._take(decode, infer)
            while len(decode):
                self._take(decode, infer)
            if self._pending:
                infer.put(self._pending)
        finally:
            # also on Ctrl-C: the inference workers finish the batches queued, and the decoders stop
            infer.close()
            decode.close()
            summary.elapsed_s, summary.cpu_s = time.perf_counter() - started, cpu_s() - cpu
        self.ledger.orphans()
        return summary

    def _take(self, decode: DecodeStage, infer: InferStage) -> None:
        task, item = decode.next()
        if item.error is not None and item.rel in self._fill:
            return  # decoded again only for its vector, and now unreadable: its record stays, still without one
        if item.error is not None:
            self.ledger.settle([(item, record_for(self.ledger.info, item))])
        elif item.known:
            self.ledger.known(item)
            self._backfill(decode, task, item)
        elif not item.decoded:
            if self.ledger.claim(item):
                decode.submit(Task(task.path, task.rel, task.size))
        else:
            self._pending.append(item)
            if len(self._pending) >= self.batch_size:
                infer.put(self._pending)
                self._pending = []

    def _backfill(self, decode: DecodeStage, task: Task, item: Loaded) -> None:
        """A file tagged before the sidecar existed (or after it was deleted): decode it again for its vector."""
        sha = item.sha256
        if self.vectors is None or sha is None or sha in self.vectors.known or sha in self._filling:
            return
        self._filling.add(sha)
        self._fill.add(item.rel)
        decode.submit(Task(task.path, task.rel, task.size))

    def _infer(self, batch: list[Loaded], engine: object) -> None:
        records = tag_batch(self.classifier, batch, self.ledger.info, self.rank, engine)  # type: ignore[arg-type]
        if self.vectors is not None:
            self.vectors.add_items(batch)  # durable before the batch's records are queued
        tagged = [(item, record) for item, record in zip(batch, records, strict=True) if item.rel not in self._fill]
        self.ledger.settle(tagged, decoded=len(batch))
        self.ledger.filled(len(batch) - len(tagged))
