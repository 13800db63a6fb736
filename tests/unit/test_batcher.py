"""The micro-batcher: outputs go to the right requests, batches stay bounded, failures stay contained."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from wanwu.service.batcher import MicroBatcher, QueueFullError


def _echo(batch: np.ndarray) -> np.ndarray:
    """Row i of the output carries input i's marker, so any mix-up is visible."""
    return batch.reshape(len(batch), -1)[:, :1] * 10


def _marked(i: int) -> np.ndarray:
    return np.full((1, 2, 2), float(i), np.float32)


def test_each_request_gets_its_own_output_and_batches_stay_bounded() -> None:
    sizes: list[int] = []
    gate = threading.Event()

    def run(batch: np.ndarray) -> np.ndarray:
        gate.wait(5)
        sizes.append(len(batch))
        return _echo(batch)

    batcher = MicroBatcher(run, max_batch=4, max_wait_s=0.05, max_queue=64)
    batcher.start()
    try:
        futures = [batcher.submit(_marked(i)) for i in range(11)]
        gate.set()
        results = [f.result(5) for f in futures]
    finally:
        batcher.stop()
    assert [float(r.logits[0]) for r in results] == [10.0 * i for i in range(11)]
    assert max(sizes) <= 4 and sum(sizes) == 11 and len(sizes) >= 3
    assert all(r.batch_size <= 4 for r in results)


def test_a_lone_request_runs_at_once_even_with_a_long_max_wait() -> None:
    batcher = MicroBatcher(_echo, max_batch=8, max_wait_s=2.0)
    batcher.start()
    try:
        started = time.perf_counter()
        result = batcher.submit(_marked(3)).result(5)
        elapsed = time.perf_counter() - started
    finally:
        batcher.stop()
    assert result.batch_size == 1 and elapsed < 0.5


def test_waits_for_requests_that_are_still_decoding() -> None:
    batcher = MicroBatcher(_echo, max_batch=8, max_wait_s=1.0)
    batcher.start()
    try:
        with batcher.expect():  # a second request is decoding
            first = batcher.submit(_marked(1))
            time.sleep(0.05)
            second = batcher.submit(_marked(2))
        assert first.result(5).batch_size == second.result(5).batch_size == 2
    finally:
        batcher.stop()


def test_a_failing_batch_fails_each_request_and_the_next_batch_still_runs() -> None:
    calls = {"n": 0}
    gate = threading.Event()

    def run(batch: np.ndarray) -> np.ndarray:
        gate.wait(5)
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("engine exploded")
        return _echo(batch)

    batcher = MicroBatcher(run, max_batch=8, max_wait_s=0.0)
    batcher.start()
    try:
        doomed = [batcher.submit(_marked(i)) for i in range(3)]
        gate.set()
        for future in doomed:
            with pytest.raises(RuntimeError, match="engine exploded"):
                future.result(5)
        assert float(batcher.submit(_marked(7)).result(5).logits[0]) == 70.0
    finally:
        batcher.stop()


def test_output_rows_that_do_not_match_inputs_are_an_error() -> None:
    batcher = MicroBatcher(lambda batch: np.zeros((len(batch) + 1, 1)), max_batch=4, max_wait_s=0)
    batcher.start()
    try:
        with pytest.raises(RuntimeError, match="returned 2 rows for a batch of 1"):
            batcher.submit(_marked(0)).result(5)
    finally:
        batcher.stop()


def test_a_full_queue_refuses_at_once() -> None:
    gate = threading.Event()
    batcher = MicroBatcher(lambda b: (gate.wait(5), _echo(b))[1], max_batch=1, max_wait_s=0, max_queue=2)
    batcher.start()
    try:
        running = batcher.submit(_marked(0))
        time.sleep(0.05)  # the first item is now inside the engine
        queued = [batcher.submit(_marked(i)) for i in (1, 2)]
        with pytest.raises(QueueFullError, match="queue is full"):
            batcher.submit(_marked(3))
        gate.set()
        assert [float(f.result(5).logits[0]) for f in (running, *queued)] == [0.0, 10.0, 20.0]
    finally:
        batcher.stop()


def test_cancelled_requests_are_skipped() -> None:
    gate = threading.Event()
    seen: list[int] = []

    def run(batch: np.ndarray) -> np.ndarray:
        gate.wait(5)
        seen.extend(int(v) for v in batch.reshape(len(batch), -1)[:, 0])
        return _echo(batch)

    batcher = MicroBatcher(run, max_batch=1, max_wait_s=0)
    batcher.start()
    try:
        first = batcher.submit(_marked(0))
        time.sleep(0.05)
        abandoned = batcher.submit(_marked(1))
        assert abandoned.cancel()
        last = batcher.submit(_marked(2))
        gate.set()
        first.result(5), last.result(5)
    finally:
        batcher.stop()
    assert seen == [0, 2]


def test_several_workers_share_one_queue_and_each_output_stays_with_its_input() -> None:
    seen_threads: set[str] = set()
    gate = threading.Event()

    def run(batch: np.ndarray) -> np.ndarray:
        gate.wait(5)
        seen_threads.add(threading.current_thread().name)
        time.sleep(0.01)
        return _echo(batch)

    batcher = MicroBatcher([run, run], max_batch=2, max_wait_s=0)
    batcher.start()
    try:
        futures = [batcher.submit(_marked(i)) for i in range(12)]
        gate.set()
        assert [float(f.result(5).logits[0]) for f in futures] == [10.0 * i for i in range(12)]
    finally:
        batcher.stop()
    assert seen_threads == {"wanwu-inference-0", "wanwu-inference-1"}


def test_warm_batches_run_before_requests_and_a_failing_one_is_contained() -> None:
    seen: list[int] = []

    def run(batch: np.ndarray) -> np.ndarray:
        seen.append(len(batch))
        if len(batch) == 3:
            raise RuntimeError("warm-up shape failed")
        return _echo(batch)

    warm = [np.zeros((n, 2, 2), np.float32) for n in (2, 3, 5)]
    batcher = MicroBatcher(run, max_batch=8, max_wait_s=0.0, warm_batches=warm)
    batcher.start()
    try:
        result = batcher.submit(_marked(7)).result(5)
    finally:
        batcher.stop()
    assert seen == [2, 3, 5, 1]  # every warm batch, in order, before the first request; the failure did not stop it
    assert float(result.logits[0]) == 70.0
