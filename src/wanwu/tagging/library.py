"""A tagged library read back: the records of one or more ``wanwu tag`` outputs, with their vectors sidecars.

Read-only (a torn last line is ignored here, and cut by the next ``wanwu tag`` run). The last record of a path
wins, as in the output itself; failed images (``error``) are kept as records but have no vector.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wanwu.tagging.vectors import DIM, model_key, read_vectors, sidecar
from wanwu.tagging.writers import OutputError, format_for, read_csv, read_lines


def read_records(path: Path) -> Iterator[dict]:
    """The records of a tags file (JSONL, CSV or Parquet), in file order, read only (``wanwu.tagging.writers``)."""
    if not path.is_file():
        raise OutputError(f"{path} is not a tags file (wanwu tag --out writes one)")
    fmt = format_for(path, None)
    if fmt == "parquet":
        from wanwu.tagging.parquet import read_parquet

        return read_parquet(path)
    return read_csv(path) if fmt == "csv" else read_lines(path)


@dataclass
class Library:
    """Records (one per image) and, aligned with them, pHashes and unit vectors; ``has_vector`` marks real rows."""

    records: list[dict]
    paths: list[str]
    phash: np.ndarray
    vectors: np.ndarray
    has_vector: np.ndarray

    @property
    def missing_vectors(self) -> int:
        return int(sum(1 for r, has in zip(self.records, self.has_vector, strict=True) if not r.get("error") and not has))


def load_library(sources: Sequence[Path]) -> Library:
    """Every current record of ``sources`` (tags files); with several files, paths are prefixed ``FILE:``."""
    records, paths, phashes, vectors, has = [], [], [], [], []
    for source in sources:
        by_path = {r["path"]: r for r in read_records(source)}  # one record per image: the last one written
        cache: dict[str, object] = {}
        for record in by_path.values():
            key = model_key(record["model"], record["weights_sha256"])
            if key not in cache:
                stored = read_vectors(sidecar(source), key)
                cache[key] = (stored, stored.index())
            stored, index = cache[key]  # type: ignore[misc]
            row = index.get(record["sha256"]) if record.get("sha256") else None
            records.append(record)
            paths.append(record["path"] if len(sources) == 1 else f"{source}:{record['path']}")
            phashes.append(stored.phash[row] if row is not None else 0)
            vectors.append(stored.vectors[row] if row is not None else np.zeros(DIM, np.float16))
            has.append(row is not None)
    return Library(records, paths, np.array(phashes, np.uint64),
                   np.array(vectors, np.float16).reshape(len(records), DIM), np.array(has, bool))
