"""Embeddings of training images: the base model's features (pooled last layers), on the fast engines, cached by content.

A vector is keyed by the image's SHA-256 and the view (the centre crop, or a flipped or zoomed one
for small sets), in a cache folder named by the base model and its weights' SHA-256, so a re-train
after adding a few photos extracts only those. Decoding runs in a thread pool beside the engine.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wanwu.errors import ImageError
from wanwu.models.registry import Preprocessing
from wanwu.preprocess import ImageLimits, crop_pixels, decode_image
from wanwu.sources import ModelSource
from wanwu.store import Layout, atomic_file, write_file
from wanwu.threadnames import name_os_thread

VIEWS = ("center", "flip", "zoom", "zoom-flip")
ZOOM = 1.15  # the zoomed views resize the shorter side 15 % larger before the same centre crop
_CHUNK = 32  # images decoded ahead of the engine
_MAX_SHARDS = 16
_SAVE_EVERY = 4096
_FAILURES = "failures.json"


@dataclass(frozen=True)
class Job:
    path: Path
    sha256: str
    views: tuple[str, ...]


def view_pixels(data: bytes, pre: Preprocessing, views: tuple[str, ...], limits: ImageLimits) -> dict[str, np.ndarray]:
    """One decode -> the uint8 crop of each view (``ImageError`` when the file is not a readable image)."""
    img = decode_image(data, limits)
    out: dict[str, np.ndarray] = {}
    center = crop_pixels(img, pre)
    zoomed = crop_pixels(img, dataclasses.replace(pre, resize_size=round(pre.resize_size * ZOOM))) if any(
        v.startswith("zoom") for v in views) else None
    for view in views:
        pixels = center if not view.startswith("zoom") else zoomed
        assert pixels is not None
        out[view] = np.ascontiguousarray(pixels[:, ::-1]) if view.endswith("flip") else pixels
    return out


class EmbeddingCache:
    """``<home>/embeddings/<base>-<weights sha256[:16]>-<preprocessing+features hash>[-<features>]/``: append-only
    ``.npz`` shards of (key, vector)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.vectors: dict[str, np.ndarray] = {}
        self._new: dict[str, np.ndarray] = {}
        shards = sorted(folder.glob("shard-*.npz")) if folder.is_dir() else []
        for shard in shards:
            try:
                with np.load(shard) as data:
                    self.vectors.update(zip(data["keys"].tolist(), data["vectors"], strict=True))
            except (OSError, ValueError, KeyError):
                shard.unlink(missing_ok=True)  # a damaged shard is only lost work: it is recomputed
        self._shards = shards
        self.failures: dict[str, str] = {}  # sha256 -> why it could not be decoded (not retried)
        try:
            self.failures = json.loads((folder / _FAILURES).read_text())
        except (OSError, ValueError):
            pass

    @staticmethod
    def key(sha256: str, view: str) -> str:
        return f"{sha256}:{view}"

    def get(self, sha256: str, view: str) -> np.ndarray | None:
        return self.vectors.get(self.key(sha256, view))

    def put(self, sha256: str, view: str, vector: np.ndarray) -> None:
        self.vectors[self.key(sha256, view)] = self._new[self.key(sha256, view)] = vector

    @property
    def unsaved(self) -> int:
        return len(self._new)

    def fail(self, sha256: str, why: str) -> None:
        self.failures[sha256] = why
        self._failures_changed = True

    def save(self) -> None:
        """New vectors as one more shard (written then renamed); many shards are merged into one."""
        self.folder.mkdir(parents=True, exist_ok=True)
        if getattr(self, "_failures_changed", False):
            write_file(self.folder / _FAILURES, json.dumps(self.failures))
            self._failures_changed = False
        if not self._new:
            return
        merge = len(self._shards) >= _MAX_SHARDS
        items = self.vectors if merge else self._new
        target = self.folder / f"shard-{secrets.token_hex(8)}.npz"
        with atomic_file(target) as tmp, open(tmp, "wb") as f:
            np.savez(f, keys=np.array(list(items), dtype="U80"), vectors=np.stack(list(items.values())).astype(np.float32))
        if merge:
            for shard in self._shards:
                shard.unlink(missing_ok=True)
        self._shards = [*([] if merge else self._shards), target]
        self._new = {}


class GlobalPart:
    """A pyramid cache read as global features: a pyramid vector starts with the last map's global average (the base's
    own embedding), so a search that extracted pyramid features never extracts the global ones again."""

    def __init__(self, cache: EmbeddingCache, width: int) -> None:
        self.cache, self.width = cache, width

    def get(self, sha256: str, view: str) -> np.ndarray | None:
        vector = self.cache.get(sha256, view)
        return None if vector is None else vector[: self.width]


class Joined:
    """Two bases' vectors of an image read as one: the first's, then the second's (``wanwu.trained.companion``)."""

    def __init__(self, first: Vectors, second: Vectors) -> None:
        self.parts = (first, second)

    def get(self, sha256: str, view: str) -> np.ndarray | None:
        vectors = [part.get(sha256, view) for part in self.parts]
        return None if any(v is None for v in vectors) else np.concatenate(vectors)  # type: ignore[arg-type]


Vectors = EmbeddingCache | GlobalPart | Joined


# What a cached vector is, per feature kind: part of the cache folder's name, so vectors of another definition are
# never mixed in. ``global`` is empty: its folders are the ones written before there was a choice (the same vectors).
FEATURE_DEFINITIONS = {
    "global": "",
    "pyramid": "pyramid v1: [avg, 3x3 cell avg] of the last feature map, then of the last block's input",
}


def cache_folder(home: Path, base: ModelSource, pre: Preprocessing, features: str = "global") -> Path:
    """Keyed by the weights, the preprocessing (another crop or interpolation is another embedding) and the features."""
    import hashlib

    described = repr(pre) if pre.pad else repr(pre).replace(", pad=False", "")  # the digest of caches before ``pad``
    digest = hashlib.sha256((described + FEATURE_DEFINITIONS[features]).encode()).hexdigest()[:8]
    suffix = "" if features == "global" else f"-{features}"
    return Layout(home).embedding_cache(base.spec.name, base.weights_sha256, digest + suffix)


def _decoded(jobs: list[Job], pre: Preprocessing, limits: ImageLimits, workers: int) -> Iterator[tuple[Job, object]]:
    """(job, views or the ImageError) in order, decoding up to ``_CHUNK`` images ahead in a thread pool."""
    def work(job: Job) -> object:
        try:
            return view_pixels(job.path.read_bytes(), pre, job.views, limits)
        except (ImageError, OSError, ValueError) as err:
            return err

    with ThreadPoolExecutor(workers, thread_name_prefix="wanwu-train-decode", initializer=name_os_thread) as pool:
        pending = [pool.submit(work, job) for job in jobs[:_CHUNK]]
        for i, job in enumerate(jobs):
            if i + _CHUNK < len(jobs):
                pending.append(pool.submit(work, jobs[i + _CHUNK]))
            yield job, pending[i].result()
            pending[i] = None  # type: ignore[call-overload]  # free the pixels


def extract(
    jobs: list[Job], run: Callable[[np.ndarray], np.ndarray], pre: Preprocessing, cache: EmbeddingCache,
    batch_size: int = 16, workers: int = 2, limits: ImageLimits | None = None, on_image: Callable[[int], None] | None = None,
) -> list[tuple[Path, str]]:
    """Every view of every job into ``cache`` (those already there are not recomputed); returns the unreadable files."""
    failed = [(j.path, cache.failures[j.sha256]) for j in jobs if j.sha256 in cache.failures]
    todo = [j for j in jobs if j.sha256 not in cache.failures and any(cache.get(j.sha256, v) is None for v in j.views)]
    if on_image and len(todo) < len(jobs):
        on_image(len(jobs) - len(todo))
    batch: list[tuple[str, str, np.ndarray]] = []

    def flush() -> None:
        vectors = run(np.stack([pixels for _, _, pixels in batch]))
        for (sha, view, _), vector in zip(batch, vectors, strict=True):
            cache.put(sha, view, np.asarray(vector, np.float32).copy())
        batch.clear()
        if cache.unsaved >= _SAVE_EVERY:
            cache.save()  # a long extraction that is interrupted keeps most of its work

    for job, result in _decoded(todo, pre, limits or ImageLimits(), workers):
        if isinstance(result, Exception):
            failed.append((job.path, str(result) if isinstance(result, ImageError) else f"unreadable: {result}"))
            if isinstance(result, ImageError):
                cache.fail(job.sha256, failed[-1][1])  # an I/O error may pass; a corrupt file stays corrupt
        else:
            batch.extend((job.sha256, view, pixels) for view, pixels in result.items())  # type: ignore[attr-defined]
        if len(batch) >= batch_size:
            flush()
        if on_image:
            on_image(1)
    if batch:
        flush()
    return failed
