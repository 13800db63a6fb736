"""Which files a run tags: files and folders (recursive), a glob, symlinks followed only when asked.

Every found file gets the path its record carries: relative to the common folder of the sources
(one folder: relative to it), so the same command finds the same paths again when it resumes.
"""

from __future__ import annotations

import fnmatch
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from wanwu.errors import WanwuError

# What a folder walk picks up without --glob: the suffixes of the formats wanwu decodes.
TAG_SUFFIXES = frozenset({".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})


class SourceNotFoundError(WanwuError):
    code = "source_not_found"


@dataclass(frozen=True)
class Found:
    path: str  # where to read it (absolute; symlink names kept)
    rel: str  # what its record says
    size: int | None
    error: tuple[str, str] | None = None  # (code, message) found before reading: broken symlink, not a file, ...


@dataclass
class Discovery:
    files: list[Found]
    symlinks_skipped: int = 0  # symlinked files and folders passed over without --follow-symlinks


def _root_of(source: Path) -> str:
    absolute = os.path.abspath(source)
    return absolute if os.path.isdir(absolute) else os.path.dirname(absolute)


def common_base(sources: Sequence[Path]) -> str:
    """The folder record paths are relative to: the sources' common folder (a file counts as its folder)."""
    return os.path.commonpath([_root_of(s) for s in sources])


def _wanted(rel: str, patterns: Sequence[str]) -> bool:
    if not patterns:
        return os.path.splitext(rel)[1].lower() in TAG_SUFFIXES
    name = os.path.basename(rel)
    return any(fnmatch.fnmatchcase(rel, p) or fnmatch.fnmatchcase(name, p) for p in patterns)


def _examine(path: str, rel: str) -> Found:
    """Stat one file (following a symlink): its size, or the reason it cannot be tagged."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            return Found(path, rel, None, ("broken_symlink", f"{rel} is a symlink to {os.readlink(path)}, which does not exist"))
        return Found(path, rel, None, ("unreadable_file", f"{rel} disappeared before it was read"))
    except OSError as err:
        return Found(path, rel, None, ("unreadable_file", f"cannot stat {rel}: {err.strerror}"))
    if not stat.S_ISREG(info.st_mode):
        # A FIFO or a device named like a photo would block or never end when read.
        return Found(path, rel, None, ("not_a_file", f"{rel} is not a regular file"))
    return Found(path, rel, info.st_size)


def _walk(folder: str, base: str, patterns: Sequence[str], follow: bool, found: Discovery) -> Iterator[Found]:
    seen: set[tuple[int, int]] = set()
    errors: list[OSError] = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=follow, onerror=errors.append):
        if follow:
            info = os.stat(dirpath)
            if (info.st_dev, info.st_ino) in seen:  # a symlink loop, or two links to one folder
                dirnames.clear()
                continue
            seen.add((info.st_dev, info.st_ino))
        else:
            linked = [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
            found.symlinks_skipped += len(linked)
            dirnames[:] = [d for d in dirnames if d not in linked]
        dirnames.sort()
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, base)
            if not _wanted(rel, patterns):
                continue
            if not follow and os.path.islink(path):
                found.symlinks_skipped += 1
                continue
            yield _examine(path, rel)
        yield from _folder_errors(errors, base)
    yield from _folder_errors(errors, base)


def _folder_errors(errors: list[OSError], base: str) -> Iterator[Found]:
    """A folder that could not be listed: one error record each, and the walk goes on."""
    while errors:
        err = errors.pop(0)
        rel = os.path.relpath(str(err.filename), base)
        yield Found(str(err.filename), rel, None, ("unreadable_folder", f"cannot list {rel}: {err.strerror}"))


def discover(sources: Sequence[Path], patterns: Sequence[str] = (), follow_symlinks: bool = False) -> Discovery:
    """Every file to tag under ``sources``, in a stable order (sources as given, then sorted paths).

    A file named on the command line is always tagged (its symlink followed); inside folders, only
    files matching ``patterns`` (default: image suffixes), and symlinks only with ``follow_symlinks``.
    """
    missing = [str(s) for s in sources if not os.path.lexists(s)]
    if missing:
        raise SourceNotFoundError(f"no such file or folder: {', '.join(missing)}")
    base = common_base(sources)
    found = Discovery([])
    seen: set[str] = set()
    for source in sources:
        absolute = os.path.abspath(source)
        if os.path.isdir(absolute):
            entries: Iterator[Found] = _walk(absolute, base, patterns, follow_symlinks, found)
        else:
            entries = iter([_examine(absolute, os.path.relpath(absolute, base))])
        for entry in entries:
            if entry.rel not in seen:  # a file given twice, or inside a folder also given
                seen.add(entry.rel)
                found.files.append(entry)
    return found
