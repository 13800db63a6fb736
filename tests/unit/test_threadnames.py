"""Thread names reach the OS, where `top -H` and bench/profile_serve.py read them."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest

from wanwu.threadnames import name_os_thread

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl(PR_SET_NAME) is Linux's")


def _os_name_of_new_thread(python_name: str, call: object) -> str:
    seen: list[str] = []

    def body() -> None:
        call()  # type: ignore[operator]
        seen.append(Path(f"/proc/self/task/{threading.get_native_id()}/comm").read_text().strip())

    thread = threading.Thread(target=body, name=python_name)
    thread.start()
    thread.join()
    return seen[0]


def test_the_python_name_becomes_the_os_name() -> None:
    assert _os_name_of_new_thread("wanwu-decode_1", name_os_thread) == "wanwu-decode_1"


def test_a_long_name_is_cut_to_the_kernels_15_bytes() -> None:
    assert _os_name_of_new_thread("wanwu-inference-0", name_os_thread) == "wanwu-inference"


def test_an_explicit_name_wins_over_the_python_one() -> None:
    assert _os_name_of_new_thread("Thread-9", lambda: name_os_thread("wanwu-serve")) == "wanwu-serve"


def test_the_service_inference_thread_carries_its_name() -> None:
    import numpy as np

    from wanwu.service.batcher import MicroBatcher

    batcher = MicroBatcher(lambda batch: batch, max_batch=2)
    batcher.start()
    try:
        batcher.submit(np.zeros(3, np.float32)).result(timeout=10)  # the thread is inside its loop: named
        names = {Path(f"/proc/self/task/{t.native_id}/comm").read_text().strip() for t in batcher._threads}
    finally:
        batcher.stop()
    assert names == {"wanwu-inference"}
