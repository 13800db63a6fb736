"""Where the store lives: ``$WANWU_HOME`` (or ``--home``), and what a store that cannot be written says."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from wanwu.errors import StoreError

HOME_ENV = "WANWU_HOME"
# What a store that cannot take a write says: read-only, full, over quota, not ours.
DISK_ERRNOS = frozenset({errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EACCES, errno.EPERM})


def wanwu_home(environ: dict[str, str] | None = None) -> Path:
    """Root of everything wanwu writes: ``$WANWU_HOME`` or ``~/.cache/wanwu``."""
    env = os.environ if environ is None else environ
    if env.get(HOME_ENV):
        return Path(env[HOME_ENV]).expanduser()
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "wanwu"


def store_error(path: Path | str, err: BaseException) -> StoreError:
    """One line for a store that cannot be written: what, why, and the setting that moves the store.

    ``err`` is an ``OSError`` (read-only, full disk, permission denied) or what a library raises
    instead (OpenVINO's ``RuntimeError: basic_ios::clear`` on a full disk).
    """
    reason = err.strerror if isinstance(err, OSError) and err.strerror else (str(err) or type(err).__name__)
    return StoreError(
        f"cannot write {path}: {reason}. The store is --home / {HOME_ENV}: point it at a writable folder with free space"
    )
