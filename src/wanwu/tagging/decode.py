"""The decode stage: a file (or its bytes) -> its SHA-256 and the model's crop, or the reason it failed.

Runs in worker processes on the local path (Pillow holds the GIL while it decodes) and in Ray tasks,
so everything here is a plain function of picklable arguments. Nothing in this stage raises for a
bad image: it returns a ``Loaded`` with ``error=(code, message)`` and the run goes on.
"""

from __future__ import annotations

import hashlib
import io
import os
import signal
import threading
import time
from dataclasses import dataclass

import numpy as np
from PIL import Image

from wanwu.errors import ImageError
from wanwu.models.registry import Preprocessing
from wanwu.preprocess import ImageLimits, preprocess_pixels
from wanwu.tagging.phash import phash

# A library holds TIFFs and PNGs far larger than an upload; the pixel limit still stops bombs from the header.
TAG_LIMITS = ImageLimits(max_bytes=256 * 1024 * 1024, max_pixels=64_000_000, bytes_setting="--max-bytes",
                         pixels_setting="--max-pixels")
_ROTATED = (5, 6, 7, 8)  # EXIF orientations that swap width and height


@dataclass(frozen=True)
class DecodeSettings:
    preprocessing: Preprocessing
    limits: ImageLimits = TAG_LIMITS
    fast_decode: bool = False


@dataclass(frozen=True)
class Task:
    path: str
    rel: str
    size: int | None
    known: frozenset[str] = frozenset()  # hashes already tagged: such a file is not decoded
    hash_only: bool = False  # its size matches another file's: hash first, decode once per content


@dataclass
class Loaded:
    rel: str
    sha256: str | None = None
    size: int | None = None
    width: int | None = None
    height: int | None = None
    pixels: np.ndarray | None = None
    error: tuple[str, str] | None = None
    known: bool = False  # its hash is in the task's ``known``: not decoded
    phash: int | None = None  # of the crop (wanwu.tagging.phash), computed here with it
    vector: np.ndarray | None = None  # its embedding (wanwu.tagging.vectors), set by tag_batch

    @property
    def decoded(self) -> bool:
        return self.pixels is not None


def _upright_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as img:
        width, height = img.size
        if img.format == "PNG":
            # PNG's getexif() decodes every pixel to look for an eXIf chunk after them (the PNG spec puts it
            # before IDAT, where Pillow has already read it): a second decode of every PNG, ~5 % of tagging's CPU
            exif = Image.Exif()
            if raw := img.info.get("exif"):
                exif.load(raw)
        else:
            exif = img.getexif()
        return (height, width) if exif.get(0x0112) in _ROTATED else (width, height)


def decode_crop(data: bytes, settings: DecodeSettings) -> tuple[np.ndarray, int, int]:
    """Bytes -> (crop pixels, width, height as a viewer shows the image); raises ``ImageError``.

    The pixels are ``preprocess_pixels``'s, the same as ``predict`` and the service compute.
    """
    pixels = preprocess_pixels(data, settings.preprocessing, settings.limits, settings.fast_decode)
    width, height = _upright_size(data)  # a header read: the decode above may have been a DCT-scaled draft
    return pixels, width, height


def load_bytes(data: bytes, rel: str, settings: DecodeSettings, sha256: str | None = None) -> Loaded:
    """One image's bytes -> ``Loaded`` with its crop, or with the error that stopped it."""
    sha = sha256 or hashlib.sha256(data).hexdigest()
    if not data:
        return Loaded(rel, sha, 0, error=("empty_file", f"{rel} is empty (0 bytes)"))
    try:
        pixels, width, height = decode_crop(data, settings)
    except ImageError as err:
        return Loaded(rel, sha, len(data), error=(err.code, str(err)))
    except Exception as err:  # noqa: BLE001 - one bad file is one error record, never the end of the run
        return Loaded(rel, sha, len(data), error=("decode_failed", f"{type(err).__name__}: {err}"[:300]))
    return Loaded(rel, sha, len(data), width, height, pixels, phash=phash(pixels))


def _read(task: Task, limits: ImageLimits) -> bytes | Loaded:
    try:
        with open(task.path, "rb") as file:
            data = file.read(limits.max_bytes + 1)
    except PermissionError:
        return Loaded(task.rel, size=task.size, error=("permission_denied", f"cannot read {task.rel}: permission denied"))
    except FileNotFoundError:
        if os.path.islink(task.path):
            return Loaded(task.rel, error=("broken_symlink", f"{task.rel} is a symlink to a file that does not exist"))
        return Loaded(task.rel, error=("unreadable_file", f"{task.rel} disappeared before it was read"))
    except OSError as err:
        return Loaded(task.rel, size=task.size, error=("unreadable_file", f"cannot read {task.rel}: {err.strerror or err}"))
    return data  # up to one byte over the limit: load_data refuses it


def load_file(task: Task, settings: DecodeSettings) -> Loaded:
    """Read, hash and (unless its hash is known or ``hash_only``) decode one file."""
    data = _read(task, settings.limits)
    return data if isinstance(data, Loaded) else load_data(data, task, settings)


def load_data(data: bytes, task: Task, settings: DecodeSettings) -> Loaded:
    """One file's bytes (read here or by Ray Data): hash, then decode unless its hash is known or ``hash_only``."""
    if len(data) > settings.limits.max_bytes:
        return Loaded(task.rel, size=len(data), error=(
            "payload_too_large", f"{task.rel} is over {settings.limits.max_bytes:,} bytes "
                                 f"(raise the limit with {settings.limits.bytes_setting})"))
    sha = hashlib.sha256(data).hexdigest()
    if sha in task.known:
        return Loaded(task.rel, sha, len(data), known=True)
    if task.hash_only:
        return Loaded(task.rel, sha, len(data))
    return load_bytes(data, task.rel, settings, sha)


_settings: DecodeSettings | None = None


def init_worker(settings: DecodeSettings) -> None:
    """Process-pool initializer: the settings every task of this run shares, sent once per worker."""
    global _settings
    _settings = settings
    # Ctrl-C reaches the whole process group: the run stops its workers itself. A worker interrupted while writing a
    # result would leave half a message in the pool's pipe, and the pool's reader waits on the rest forever.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), name="wanwu-parent-watch", daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    # A pool worker waits on its task queue forever, even after `kill -9` of the run that started it
    # (it holds that queue's write end too): once it is an orphan, it exits.
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)


def worker_load(task: Task) -> Loaded:
    assert _settings is not None, "init_worker was not run in this process"
    return load_file(task, _settings)
