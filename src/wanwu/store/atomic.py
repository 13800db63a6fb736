"""Writes that appear whole or not at all, and the clean-up of what killed writers leave behind.

Every file and folder is written under a hidden partial name beside its target, ``.<name>.part-<pid>-<token>``,
and renamed into place in one step, so a reader never sees half of it. A writer killed before its rename
leaves its partial behind; the next write in the same folder removes it (``remove_stale``).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

# One rule for what killed writers leave: removed once its process is gone here and nobody has touched it for
# STALE_AFTER_S; never one of this process. The age guards a store shared by several machines or containers,
# where a PID dead here may be a live writer elsewhere. Writes (renames included) take seconds to minutes.
STALE_AFTER_S = 15 * 60
FILE_MODE = 0o644  # a store written as root is read by another user
_PARTIAL = re.compile(r"\.part-(\d+)(?:-[0-9a-f]{8})?$")
_BEFORE = re.compile(r"^\.(?:partial-(\d+)-|removing-)")  # the names trained/ used before this scheme


def pid_alive(pid: int) -> bool:
    """Whether a process of this PID runs here: tells a dead writer's partial folder from a live one's."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def partial_path(target: Path) -> Path:
    """A fresh hidden sibling of ``target`` to write it under: ``.<name>.part-<pid>-<token>``."""
    return target.with_name(f".{target.name}.part-{os.getpid()}-{secrets.token_hex(4)}")


def writer_pid(name: str) -> int | None:
    """The PID in a partial's name; 0 for a partial that names none; None when ``name`` is no partial."""
    found = _PARTIAL.search(name) or _BEFORE.match(name)
    if found is None:
        return None
    return int(found[1]) if found[1] else 0


def is_stale(path: Path, now: float | None = None) -> bool:
    """A partial of a writer that is dead here and that nobody has touched for ``STALE_AFTER_S``."""
    pid = writer_pid(path.name)
    if pid is None or pid == os.getpid() or (pid and pid_alive(pid)):
        return False
    try:
        age = (time.time() if now is None else now) - path.lstat().st_mtime
    except OSError:
        return False  # removed meanwhile by another writer
    return age > STALE_AFTER_S


def remove_stale(parent: Path, now: float | None = None) -> list[Path]:
    """Removes the stale partials (files and folders) in ``parent``; returns them."""
    try:
        stale = [p for p in parent.iterdir() if is_stale(p, now)]
    except OSError:
        return []  # no folder yet, or unreadable: the write itself will say so
    for path in stale:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):  # a read-only store keeps it; the write itself will say so
                path.unlink()
    return stale


@contextmanager
def atomic_file(path: Path, durable: bool = False, in_store: bool = True) -> Iterator[Path]:
    """A temporary path beside ``path`` to write; renamed to ``path`` when the block ends without error.

    On an error the temporary file is removed and ``path`` is left as it was. ``durable`` syncs the file
    and then its folder, so the new file survives a power cut. A file ``in_store`` is made 0644 (a store
    built as root is read by another user) and the stale partials beside it are removed first; a user's
    own file (``in_store=False``, a tagging output) gets what the umask gives and nothing else is touched.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if in_store:
        remove_stale(path.parent)
    tmp = partial_path(path)
    _new_file(tmp)
    try:
        yield tmp
        if in_store:
            os.chmod(tmp, FILE_MODE)
        if durable:
            _fsync(tmp)
        os.replace(tmp, path)
        if durable:
            _fsync(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def write_file(path: Path, data: bytes | str, durable: bool = False, in_store: bool = True) -> None:
    """``data`` (text as UTF-8) into ``path``, whole or not at all (see ``atomic_file``)."""
    with atomic_file(path, durable, in_store) as tmp:
        tmp.write_bytes(data.encode() if isinstance(data, str) else data)


def new_partial(target: Path) -> Path:
    """An empty hidden folder beside ``target`` to build it in; the stale partials there are removed first."""
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(target.parent)
    path = partial_path(target)
    path.mkdir()
    return path


def atomic_folder(folder: Path, write: Callable[[Path], None]) -> bool:
    """Run ``write`` on a new partial folder, then rename it to ``folder``.

    Returns False, keeping what is there, when ``folder`` appeared meanwhile (another writer finished it
    first). On an error nothing is left behind.
    """
    tmp = new_partial(folder)
    try:
        write(tmp)
        return install(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def install(partial: Path, target: Path) -> bool:
    """Rename a finished partial folder to ``target`` in one step; False, the partial left as it is,
    when another writer installed ``target`` first."""
    if target.exists():
        return False
    try:
        os.rename(partial, target)
    except OSError:
        if not target.exists():
            raise
        return False
    return True


def remove_folder(folder: Path) -> None:
    """Rename ``folder`` out of sight (a partial name), then delete it: gone from listings at once."""
    doomed = partial_path(folder)
    os.rename(folder, doomed)
    shutil.rmtree(doomed, ignore_errors=True)


def _new_file(path: Path) -> None:
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))  # what open() makes, the umask applied


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
