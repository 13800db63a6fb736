"""Half-written store folders (``<name>.part-<pid>``) left by a process that died mid-write, and their cleanup.

An artifact is written into ``<name>.part-<pid>`` beside its final place and renamed into it when
complete, so a reader never sees half of one; a writer killed before the rename leaves its
``.part-<pid>`` folder behind. The next write in the same folder removes those whose process is
gone and that nobody has touched for ``STALE_AFTER_S`` (the age guards a store shared by several
machines or containers, where a PID that is dead here may be alive elsewhere).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

STALE_AFTER_S = 15 * 60  # an artifact's write (rename included) takes seconds; a calibration writes only at its end
_PART = re.compile(r"\.part-(\d+)$")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def remove_stale_parts(parent: Path, now: float | None = None) -> list[Path]:
    """Removes ``*.part-<pid>`` folders in ``parent`` whose process is dead and that are older than ``STALE_AFTER_S``."""
    now = time.time() if now is None else now
    removed = []
    try:
        candidates = [p for p in parent.iterdir() if p.is_dir() and _PART.search(p.name)]
    except OSError:
        return removed  # no folder yet, or unreadable: the write itself will say so
    for path in candidates:
        pid = int(_PART.search(path.name)[1])  # type: ignore[index]
        try:
            stale = pid != os.getpid() and not pid_alive(pid) and now - path.stat().st_mtime > STALE_AFTER_S
        except OSError:
            continue  # removed meanwhile by another writer
        if stale:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed
