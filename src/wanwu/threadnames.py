"""Thread names the operating system sees (``top -H``, ``ps -L``, ``/proc/PID/task/*/comm``, perf).

Python 3.11 keeps ``threading.Thread.name`` to itself (3.14 passes it on), so every wanwu thread
looks like ``python`` to the tools an operator reaches for when a core is busy. ``name_os_thread``
passes the name on with ``prctl(PR_SET_NAME)`` on Linux (cut to the kernel's 15 bytes) and does
nothing elsewhere. ``bench/profile_serve.py`` relies on these names to split CPU time by role.
"""

from __future__ import annotations

import ctypes
import sys
import threading

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
