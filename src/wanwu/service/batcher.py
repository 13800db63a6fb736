"""Micro-batching: concurrent requests share one engine call; a lone request never waits.

Each inference thread owns one engine (one by default; ``--inference-workers 2`` gives two
single-thread workers — on OpenVINO two infer requests of one compiled model). A thread takes the
first queued item, then whatever else is already queued (up to ``max_batch``). It waits up to
``max_wait_s`` for more only while other requests are still being decoded and so are known to be
on their way: with nothing in flight, a request runs at once. Each item has its own future; a
failing batch fails every future in it, and a batch whose output rows do not match its inputs is a
failure, not a silent mix-up.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from wanwu.threadnames import name_os_thread

log = logging.getLogger("wanwu.batcher")


class QueueFullError(Exception):
    pass


@dataclass(frozen=True)
class BatchResult:
    logits: np.ndarray
    queue_ms: float
    inference_ms: float
    batch_size: int


@dataclass
class _Item:
    array: np.ndarray
    future: Future = field(default_factory=Future)
    enqueued: float = field(default_factory=time.perf_counter)


_STOP = object()


class MicroBatcher:
    def __init__(
        self,
        run_batch: Callable[[np.ndarray], np.ndarray] | list[Callable[[np.ndarray], np.ndarray]],
        max_batch: int = 8,
        max_wait_s: float = 0.005,
        max_queue: int = 64,
        on_batch: Callable[[int, float], None] | None = None,
        warm_batches: Sequence[np.ndarray] = (),
    ) -> None:
        runners = run_batch if isinstance(run_batch, list) else [run_batch]
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self._queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self._on_batch = on_batch
        self._warm_batches = list(warm_batches)  # each thread runs these before it takes requests
        self._pending = 0
        self._pending_lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._loop, args=(run,), name=f"wanwu-inference-{i}", daemon=True)
            for i, run in enumerate(runners)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Finish what is queued, then end the inference threads."""
        alive = [t for t in self._threads if t.is_alive()]
        for _ in alive:
            self._queue.put(_STOP)  # blocks while the queue is full: everything queued still runs
        for thread in alive:
            thread.join(timeout)

    @property
    def queue_depth(self) -> int:
        return self._queue.qsize()

    @contextmanager
    def expect(self) -> Iterator[None]:
        """Marks a request that is decoding now and will be submitted soon (worth waiting for)."""
        with self._pending_lock:
            self._pending += 1
        try:
            yield
        finally:
            with self._pending_lock:
                self._pending -= 1

    def submit(self, array: np.ndarray) -> Future:
        item = _Item(array)
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            raise QueueFullError(f"inference queue is full ({self._queue.maxsize} waiting)") from None
        return item.future

    def _loop(self, run: Callable[[np.ndarray], np.ndarray]) -> None:
        name_os_thread()
        for batch in self._warm_batches:
            try:
                run(batch)
            except Exception:  # noqa: BLE001 - a warm-up failure must not stop the worker; requests will report it
                log.exception("warm-up batch of %d failed", len(batch))
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is _STOP:
                return
            batch, stopping = self._gather(first)
            self._execute(batch, run)

    def _gather(self, first: _Item) -> tuple[list[_Item], bool]:
        batch = [first]
        deadline = time.perf_counter() + self.max_wait_s
        while len(batch) < self.max_batch:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                remaining = deadline - time.perf_counter()
                if self._pending <= 0 or remaining <= 0:
                    break
                try:
                    item = self._queue.get(timeout=remaining)
                except queue.Empty:
                    break
            if item is _STOP:
                return batch, True
            batch.append(item)
        return batch, False

    def _execute(self, batch: list[_Item], run: Callable[[np.ndarray], np.ndarray]) -> None:
        live = [item for item in batch if item.future.set_running_or_notify_cancel()]
        if not live:
            return
        started = time.perf_counter()
        try:
            logits = run(np.stack([item.array for item in live]))
            if logits.shape[0] != len(live):
                raise RuntimeError(f"engine returned {logits.shape[0]} rows for a batch of {len(live)}")
        except Exception as err:  # noqa: BLE001 - the error goes to every request in the batch
            log.exception("batch of %d failed", len(live))
            for item in live:
                item.future.set_exception(err)
            return
        inference_ms = (time.perf_counter() - started) * 1000
        if self._on_batch:
            self._on_batch(len(live), inference_ms / 1000)
        for item, row in zip(live, logits, strict=True):
            queue_ms = (started - item.enqueued) * 1000
            item.future.set_result(BatchResult(row, queue_ms, inference_ms, len(live)))
