"""Writes that appear whole or not at all, and the clean-up of what killed writers leave behind."""

from __future__ import annotations

import os


def pid_alive(pid: int) -> bool:
    """Whether a process of this PID runs here: tells a dead writer's partial folder from a live one's."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True
