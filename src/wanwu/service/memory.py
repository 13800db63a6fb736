"""A bound on glibc's malloc arenas in the server process."""

from __future__ import annotations

import ctypes
import os
import sys

_M_ARENA_MAX = -8  # glibc's mallopt parameter behind the MALLOC_ARENA_MAX environment variable


def limit_malloc_arenas(arenas: int) -> bool:
    """Cap glibc's malloc arenas (its default is 8 per core); True when the cap was set.

    Every decode and inference thread that meets another in the allocator may get an arena of its
    own, and freed buffers stay in the arena that held them; the cap bounds that. It is a guard, not
    a measured fix: the 10-minute soak grew the same with and without it (that growth was OpenVINO's
    per-shape cache, see ``ServiceState``). This is ``MALLOC_ARENA_MAX`` set from inside the process;
    an explicit ``MALLOC_ARENA_MAX`` wins, and other C libraries are left alone. Call it before threads start.
    """
    if arenas <= 0 or "MALLOC_ARENA_MAX" in os.environ or not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl has no arenas to cap)
        return False
    return bool(mallopt(_M_ARENA_MAX, arenas))


def release_memory() -> bool:
    """Collect garbage and hand glibc's free pages back to the OS (``malloc_trim``): after a model is replaced,
    its engine's buffers are free but would otherwise stay in the process. True when glibc trimmed."""
    import gc

    gc.collect()
    if not sys.platform.startswith("linux"):
        return False
    try:
        return bool(ctypes.CDLL(None).malloc_trim(0))
    except (OSError, AttributeError):  # not glibc
        return False
