"""The two stages of a local run: worker processes that decode, threads that infer.

Decoding is Pillow work that holds the GIL, so it runs in processes; their crops come back through a
bounded window (results in submission order), and batches wait in a bounded queue, so memory holds a
few batches of crops, never the library. Every worker is single-threaded (one OpenVINO stream or one
ONNX Runtime/torch thread per inference worker): when one stage is ahead, its queue fills, its workers
block, and the other stage gets the cores; nothing spins at an intra-op barrier.
"""

from __future__ import annotations

import functools
import multiprocessing
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from wanwu.tagging.decode import DecodeSettings, Loaded, Task, init_worker, load_file, worker_load
from wanwu.threadnames import name_os_thread, sigint_to_main_thread

CLOSE_WAIT_S = 5.0


class DecodeStage:
    """``workers`` processes; at most ``window`` files in flight; results handed out in submission order.

    A worker that dies (the OOM killer, a crash in a codec) breaks the pool: the files in flight are
    retried one at a time in a fresh pool, and the one that kills it again gets a ``worker_crashed`` error.
    """

    def __init__(self, settings: DecodeSettings, workers: int, window: int,
                 load: Callable[[Task], Loaded] = worker_load, in_threads: bool = False) -> None:
        self.settings = settings
        self.in_threads = in_threads  # threads of this process, for a caller that processes cannot start (mainguard)
        # a module-level function (pickled to the workers by name); threads share this process's settings
        self.load = functools.partial(load_file, settings=settings) if in_threads and load is worker_load else load
        self.workers = workers
        self.window = window
        self._pending: deque[tuple[Task, Future]] = deque()
        self._pool = self._new_pool()

    def _new_pool(self) -> Executor:
        if self.in_threads:
            return ThreadPoolExecutor(self.workers, thread_name_prefix="wanwu-decode", initializer=name_os_thread)
        # spawn, not fork: the parent holds engine threads (OpenVINO, ONNX Runtime) a fork would copy half-alive.
        context = multiprocessing.get_context("spawn")
        return ProcessPoolExecutor(self.workers, mp_context=context, initializer=init_worker, initargs=(self.settings,))

    def __len__(self) -> int:
        return len(self._pending)

    @property
    def full(self) -> bool:
        return len(self._pending) >= self.window

    def submit(self, task: Task) -> None:
        self._pending.append((task, self._pool.submit(self.load, task)))

    def next(self) -> tuple[Task, Loaded]:
        task, future = self._pending[0]
        try:
            loaded = future.result()
        except BrokenProcessPool:
            self._recover()
            task, future = self._pending[0]
            loaded = future.result()
        self._pending.popleft()
        return task, loaded

    def _recover(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        tasks = [task for task, _ in self._pending]
        self._pending.clear()
        self._pool = self._new_pool()
        for task in tasks:
            done: Future = Future()
            try:
                done.set_result(self._pool.submit(self.load, task).result())
            except BrokenProcessPool:
                done.set_result(Loaded(task.rel, size=task.size, error=(
                    "worker_crashed", f"the decoder process died on {task.rel} (out of memory, or a crash in its codec)")))
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = self._new_pool()
            self._pending.append((task, done))

    def close(self) -> None:
        """Stops the workers. A worker that will not finish (Ctrl-C reaches the whole process group, and one caught
        while reading its next task never answers) would make ``shutdown(wait=True)`` wait forever: each worker gets
        ``CLOSE_WAIT_S`` to leave, then is terminated."""
        processes = list((getattr(self._pool, "_processes", None) or {}).values())  # threads: none
        self._pool.shutdown(wait=not processes, cancel_futures=True)
        deadline = time.monotonic() + CLOSE_WAIT_S
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.terminate()
                process.join(1.0)


class InferStage:
    """One thread per engine replica, each taking whole batches from a bounded queue."""

    def __init__(self, engines: list, run_batch: Callable[[list[Loaded], object], None]) -> None:
        self._queue: queue.Queue[list[Loaded] | None] = queue.Queue(maxsize=len(engines))
        self._run_batch = run_batch
        self.error: BaseException | None = None
        self._threads = [
            threading.Thread(target=self._work, args=(engine,), name=f"wanwu-tag-infer-{i}", daemon=True)
            for i, engine in enumerate(engines)
        ]
        with sigint_to_main_thread():  # Ctrl-C must reach the main thread, not an engine inside its infer
            for thread in self._threads:
                thread.start()

    def _work(self, engine: object) -> None:
        name_os_thread()
        while (batch := self._queue.get()) is not None:
            try:
                self._run_batch(batch, engine)
            except BaseException as err:  # noqa: BLE001 - e.g. the disk is full: the run stops, the main thread re-raises
                self.error = err
                while self._queue.get() is not None:  # unblock the producer until it sends the stop
                    pass
                return

    def put(self, batch: list[Loaded]) -> None:
        while True:
            if self.error is not None:
                raise self.error
            try:
                self._queue.put(batch, timeout=0.5)
                return
            except queue.Full:
                continue

    def close(self) -> None:
        for _ in self._threads:
            self.put_stop()
        for thread in self._threads:
            thread.join()
        if self.error is not None:
            raise self.error

    def put_stop(self) -> None:
        while any(t.is_alive() for t in self._threads):
            try:
                self._queue.put(None, timeout=0.5)
                return
            except queue.Full:
                continue
