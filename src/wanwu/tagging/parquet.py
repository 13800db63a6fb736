"""Parquet output (``pip install 'wanwu[tag]'``): a JSONL journal during the run, one atomic rewrite at the end.

A Parquet file is only readable once its footer is written, so batches cannot be appended to it; the
journal (``<out>.journal.jsonl``) takes them with the same torn-line repair as JSONL output, and a
killed run resumes from the Parquet file plus the journal.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from wanwu.store import atomic_file
from wanwu.tagging.records import FIELDS, top_category
from wanwu.tagging.writers import LineFile, OutputError, _chunks, _fsync_dir, latest_only, read_lines


def _pyarrow():  # type: ignore[no-untyped-def]
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as err:
        raise OutputError("--format parquet needs pyarrow: pip install 'wanwu[tag]'") from err
    return pa, pq


# the top everyday category in its own columns (``records.top_category``), derived from ``categories`` on writing
# and dropped on reading
TOP_CATEGORY_FIELDS = ("category", "category_zh", "category_score")


def schema():  # type: ignore[no-untyped-def]
    """Fixed column types, so a file whose first rows are all errors has the same schema as any other."""
    pa, _ = _pyarrow()
    prediction = pa.struct([("index", pa.int32()), ("label", pa.string()), ("label_zh", pa.string()), ("score", pa.float64())])
    category = pa.struct([("id", pa.string()), ("label", pa.string()), ("label_zh", pa.string()), ("score", pa.float64()),
                          ("parent", pa.string())])
    types = {"bytes": pa.int64(), "width": pa.int32(), "height": pa.int32(), "predictions": pa.list_(prediction),
             "categories": pa.list_(category), "unknown": pa.bool_(), "out_of_set": pa.bool_(),
             "category_score": pa.float64(),
             "error": pa.struct([("code", pa.string()), ("message", pa.string())])}
    return pa.schema([(name, types.get(name, pa.string())) for name in (*FIELDS, *TOP_CATEGORY_FIELDS)])


def _row(record: dict) -> dict:
    top = top_category(record)
    return {**record, "category": top.get("label"), "category_zh": top.get("label_zh"), "category_score": top.get("score")}


def _record(row: dict) -> dict:
    """A row as the record it was (a file from before categories has neither those columns nor their keys)."""
    return {k: v for k, v in row.items() if k not in TOP_CATEGORY_FIELDS}


def read_parquet(path: Path) -> Iterator[dict]:
    """The records of a Parquet output and of its journal (a run not finished yet), read only."""
    if path.exists():
        _, pq = _pyarrow()
        for batch in pq.ParquetFile(path).iter_batches(batch_size=4096):
            yield from map(_record, batch.to_pylist())
    yield from read_lines(journal_path(path))


def journal_path(path: Path) -> Path:
    return path.with_name(f"{path.name}.journal.jsonl")


class ParquetFile(LineFile):
    def __init__(self, path: Path) -> None:
        _pyarrow()  # fail at the start, not after the run
        self.parquet = path
        super().__init__(journal_path(path))

    @classmethod
    def remove(cls, path: Path) -> None:
        path.unlink(missing_ok=True)
        journal_path(path).unlink(missing_ok=True)

    def read(self) -> Iterator[dict]:
        return read_parquet(self.parquet)

    def finish(self, compact: bool) -> None:
        """Fold the journal into the Parquet file (always: Parquet holds only what a finished run wrote)."""
        self.close()
        if self.path.exists() or not self.parquet.exists():
            self.rewrite(latest_only(self.read))
            self.path.unlink(missing_ok=True)
            _fsync_dir(self.path)

    def rewrite(self, records: Iterable[dict]) -> None:
        pa, pq = _pyarrow()
        table_schema = schema()
        with atomic_file(self.parquet, durable=True, in_store=False) as tmp, pq.ParquetWriter(tmp, table_schema) as writer:
            for chunk in _chunks(records, 4096):
                try:
                    table = pa.Table.from_pylist([_row(r) for r in chunk], schema=table_schema)
                except UnicodeEncodeError:
                    odd = os.fsencode(next(r["path"] for r in chunk if not _utf8(r["path"])))
                    raise OutputError(f"{odd.decode('utf-8', 'backslashreplace')}: a file name that is not UTF-8 "
                                      f"cannot be stored in Parquet (its records are kept in {self.path}); use JSONL "
                                      "or CSV, or rename the file") from None
                writer.write_table(table)


def _utf8(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True
