"""Thread names the operating system sees (``top -H``, ``ps -L``, ``/proc/PID/task/*/comm``, perf).

Python 3.11 keeps ``threading.Thread.name`` to itself (3.14 passes it on), so every wanwu thread
looks like ``python`` to the tools an operator reaches for when a core is busy. ``name_os_thread``
passes the name on with ``prctl(PR_SET_NAME)`` on Linux (cut to the kernel's 15 bytes) and does
nothing elsewhere. ``bench/profile_serve.py`` relies on these names to split CPU time by role.
"""

from __future__ import annotations

import ctypes
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_PR_SET_NAME = 15
_KERNEL_MAX = 15  # TASK_COMM_LEN is 16 bytes with the terminating NUL


def name_os_thread(name: str | None = None) -> None:
    """Give the calling thread ``name`` (default: its Python name) in the OS; a no-op off Linux."""
    if not sys.platform.startswith("linux"):
        return
    raw = (name or threading.current_thread().name).encode("utf-8", "replace")[:_KERNEL_MAX]
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_NAME, ctypes.c_char_p(raw), 0, 0, 0)
    except (OSError, AttributeError):  # a libc without prctl: the name is a convenience, never a failure
        pass


@contextmanager
def sigint_to_main_thread() -> Iterator[None]:
    """Threads started inside (and the native threads they start: OpenVINO's TBB pool) never receive SIGINT.

    Ctrl-C is delivered to any thread that does not block it; one inside OpenVINO's ``infer`` then never returned
    (a wait interrupted in native code), and the run hung instead of stopping. Blocked here, SIGINT goes to the main
    thread only, where Python raises ``KeyboardInterrupt``. A no-op off the main thread or where there is no sigmask.
    """
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
