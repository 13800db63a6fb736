"""Keeping the server's memory flat under steady load: glibc's malloc arenas."""

from __future__ import annotations

import ctypes
import os
import sys

_M_ARENA_MAX = -8  # glibc's mallopt parameter behind the MALLOC_ARENA_MAX environment variable


def limit_malloc_arenas(arenas: int) -> bool:
    """Cap glibc's malloc arenas (its default is 8 per core); True when the cap was set.

    Every decode and inference thread that meets another in the allocator gets an arena of its own,
    and freed image buffers stay in the arena that held them, so RSS climbs in steps for minutes
    under steady load. This is ``MALLOC_ARENA_MAX`` set from inside the process; an explicit
    ``MALLOC_ARENA_MAX`` wins, and other C libraries are left alone. Call it before threads start.
    """
    if arenas <= 0 or "MALLOC_ARENA_MAX" in os.environ or not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl has no arenas to cap)
        return False
    return bool(mallopt(_M_ARENA_MAX, arenas))
