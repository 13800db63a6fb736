"""Embeddings from the logits the engine already computes, and the sidecar that stores them with a pHash.

**The embedding.** A classifier's logits are a linear map of its pooled features (EfficientNet-Lite0: 1,280
features -> 1,000 logits), so they keep almost everything those features say about the image, at no extra
cost: the engine returns them anyway. Centred (minus their mean: the same for logits and log-softmax, so the
softmax's arbitrary offset drops out), projected to ``DIM`` dimensions by a fixed orthonormal random matrix
(Johnson-Lindenstrauss: cosines near 1 move by ~(1-c²)/√DIM, ±0.01 at c = 0.9), L2-normalised, stored as
float16. A model with at most ``DIM`` classes keeps its centred logits, zero-padded (no projection).

**The sidecar** ``<out>.vectors`` (``tags.jsonl.vectors``): a 64-byte header (magic ``WANWUVEC``, format version,
``DIM``, the SHA-256 of ``model|weights_sha256``), then fixed-size rows ``sha256 (32 bytes), phash (uint64 LE),
vector (DIM float16 LE)``, keyed by the image's content hash, so identical files share one row. Rows are
appended and ``fsync``-ed before the records of their batch are queued, so every record on disk has its row; a
torn last row (a killed run) is cut on open; rows of another model's weights are dropped (the header changes).
"""

from __future__ import annotations

import hashlib
import os
import struct
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DIM = 256
SEED = 25  # the projection is fixed: every run, every node, every version computes the same one
MAGIC = b"WANWUVEC"
VERSION = 1
HEADER = 64
SUFFIX = ".vectors"


def row_dtype(dim: int = DIM) -> np.dtype:
    return np.dtype([("sha256", "V32"), ("phash", "<u8"), ("vector", "<f2", (dim,))])


_projections: dict[int, np.ndarray] = {}


def _projection(classes: int) -> np.ndarray:
    if classes not in _projections:
        gaussian = np.random.default_rng(SEED).standard_normal((classes, DIM))
        _projections[classes] = np.linalg.qr(gaussian)[0].astype(np.float32)  # orthonormal columns
    return _projections[classes]


def embed(logits: np.ndarray) -> np.ndarray:
    """``(N, classes)`` logits -> ``(N, DIM)`` float16 unit vectors (see the module's docstring)."""
    x = np.asarray(logits, np.float32)
    x = x - x.mean(axis=1, keepdims=True)
    if x.shape[1] > DIM:
        x = x @ _projection(x.shape[1])
    else:
        x = np.pad(x, ((0, 0), (0, DIM - x.shape[1])))
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float16)


def sidecar(out: Path) -> Path:
    return out.with_name(out.name + SUFFIX)


def _header(model_key: str) -> bytes:
    digest = hashlib.sha256(model_key.encode()).digest()
    return (MAGIC + struct.pack("<II", VERSION, DIM) + digest).ljust(HEADER, b"\0")


@dataclass
class Vectors:
    """Everything a sidecar holds: ``sha256`` (hex strings), ``phash`` (uint64), ``vectors`` ((N, DIM) float16)."""

    sha256: list[str]
    phash: np.ndarray
    vectors: np.ndarray

    def index(self) -> dict[str, int]:
        return {sha: row for row, sha in enumerate(self.sha256)}


def model_key(model: str, weights_sha256: str) -> str:
    return f"{model}|{weights_sha256}"


def read_vectors(path: Path, key: str | None = None) -> Vectors:
    """The rows of a sidecar (empty if absent, or another model's when ``key`` is given); the last row of a hash wins."""
    empty = Vectors([], np.zeros(0, np.uint64), np.zeros((0, DIM), np.float16))
    if not path.exists():
        return empty
    data = path.read_bytes()
    if len(data) < HEADER or data[:8] != MAGIC or (key is not None and data[:HEADER] != _header(key)):
        return empty
    dtype = row_dtype()
    count = (len(data) - HEADER) // dtype.itemsize
    rows = np.frombuffer(data, dtype, count, HEADER)
    shas = [bytes(s).hex() for s in rows["sha256"]]
    last = {sha: n for n, sha in enumerate(shas)}
    keep = np.array(sorted(last.values()), np.int64)
    return Vectors([shas[n] for n in keep], rows["phash"][keep].copy(), rows["vector"][keep].copy())


class VectorFile:
    """The sidecar a run appends to: durable per batch, safe from several inference threads."""

    def __init__(self, path: Path, key: str, force: bool = False) -> None:
        self.path, self.key = path, key
        self._lock = threading.Lock()
        self._row = row_dtype().itemsize
        self.known: set[str] = set()
        self._fd = self._open(force)

    def _open(self, force: bool) -> int:
        header = _header(self.key)
        fresh = force or not self.path.exists() or self.path.read_bytes()[:HEADER] != header
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | (os.O_TRUNC if fresh else 0), 0o644)
        if fresh:
            os.write(fd, header)
        else:
            size = os.fstat(fd).st_size
            os.ftruncate(fd, HEADER + (size - HEADER) // self._row * self._row)  # a torn last row
            self.known = set(read_vectors(self.path, self.key).sha256)
        os.fsync(fd)
        os.lseek(fd, 0, os.SEEK_END)
        return fd

    def add(self, shas: list[str], phashes: list[int], vectors: np.ndarray) -> None:
        """Append rows (skipping hashes already stored), then ``fsync``."""
        with self._lock:
            fresh = [n for n, sha in enumerate(shas) if sha not in self.known]
            if not fresh:
                return
            rows = np.zeros(len(fresh), row_dtype())
            rows["sha256"] = [bytes.fromhex(shas[n]) for n in fresh]
            rows["phash"] = [phashes[n] for n in fresh]
            rows["vector"] = vectors[fresh]
            view = memoryview(rows.tobytes())
            while view:
                view = view[os.write(self._fd, view):]
            os.fsync(self._fd)
            self.known.update(shas[n] for n in fresh)

    def add_items(self, items: list) -> None:
        """The decoded ``Loaded`` items of a batch that got a vector (``tag_batch`` sets it)."""
        done = [i for i in items if i.vector is not None and i.sha256 and i.phash is not None]
        if done:
            self.add([i.sha256 for i in done], [i.phash for i in done], np.stack([i.vector for i in done]))

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
