"""Output files: JSONL (default), CSV and Parquet, written so that a killed run loses at most one batch.

JSONL and CSV are append-only: each batch is one ``write`` of whole lines, then ``fsync``. A run
killed mid-write leaves a torn last line; the next run truncates it before appending, so a reader
never sees half a record. Parquet cannot be appended to: its batches go to a JSONL journal beside it
(``tags.parquet.journal.jsonl``) and the Parquet file is rewritten atomically when the run ends; a
killed run resumes from the journal. The last record of an image (its path) wins, whatever model made it;
``compact`` drops the ones it replaced (temporary file, ``fsync``, rename), leaving one record per image.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from wanwu.errors import WanwuError
from wanwu.store import atomic_file
from wanwu.tagging.records import META_FIELDS, record_key, top_category

FORMATS = ("jsonl", "csv", "parquet")
# the top class, the top everyday category (``records.top_category``), ``unknown`` and ``out_of_set`` in their own
# columns; all predictions and categories as JSON; the category table's version last
CSV_FIELDS = (*META_FIELDS, "label", "label_zh", "score", "category", "category_zh", "category_score", "unknown",
              "out_of_set", "predictions", "categories", "error_code", "error_message", "categories_version")
# the headers before categories, before categories_version and before out_of_set: still read, and upgraded (rewritten
# with the new header) before a run appends
LEGACY_CSV_FIELDS = (*META_FIELDS, "label", "label_zh", "score", "predictions", "error_code", "error_message")
NO_OUT_OF_SET_CSV_FIELDS = tuple(f for f in CSV_FIELDS if f != "out_of_set")
UNVERSIONED_CSV_FIELDS = NO_OUT_OF_SET_CSV_FIELDS[:-1]
OLD_CSV_HEADERS = (LEGACY_CSV_FIELDS, UNVERSIONED_CSV_FIELDS, NO_OUT_OF_SET_CSV_FIELDS)
_INT_FIELDS = ("bytes", "width", "height")


class OutputError(WanwuError):
    code = "bad_output"


def format_for(path: Path, fmt: str | None) -> str:
    """``fmt``, or the one the file name says (``.csv``, ``.parquet``/``.pq``), else JSONL."""
    if fmt:
        return fmt
    return {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}.get(path.suffix.lower(), "jsonl")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def repair_tail(path: Path) -> int:
    """Truncate a torn last line (a run killed mid-write); returns the bytes dropped."""
    if not path.exists():
        return 0
    with open(path, "r+b") as file:
        end = file.seek(0, os.SEEK_END)
        keep = end
        while keep > 0:
            start = max(0, keep - 65536)
            file.seek(start)
            chunk = file.read(keep - start)
            if keep == end and chunk.endswith(b"\n"):
                return 0
            newline = chunk.rfind(b"\n")
            if newline >= 0:
                keep = start + newline + 1
                break
            keep = start
        file.truncate(keep)
        os.fsync(file.fileno())
    return end - keep


def _json_line(record: dict) -> bytes:
    try:
        return json.dumps(record, ensure_ascii=False).encode() + b"\n"
    except UnicodeEncodeError:  # a path that is not UTF-8 (surrogate escapes): \udcXX escapes, read back the same
        return json.dumps(record).encode() + b"\n"


class LineFile:
    """An append-only file of one record per line (JSONL); CSV overrides the encoding."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.dropped_bytes = repair_tail(path)
        self._fd: int | None = None

    def encode(self, records: Iterable[dict]) -> bytes:
        return b"".join(_json_line(r) for r in records)

    def read(self) -> Iterator[dict]:
        return read_lines(self.path)

    def append(self, records: list[dict]) -> None:
        if not records:
            return
        if self._fd is None:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        view = memoryview(self.encode(records))
        while view:
            view = view[os.write(self._fd, view):]
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def finish(self, compact: bool) -> None:
        """End of a run: ``compact`` drops the records later ones replaced."""
        self.close()
        if compact:
            self.rewrite(latest_only(self.read))

    @classmethod
    def remove(cls, path: Path) -> None:
        path.unlink(missing_ok=True)

    def rewrite(self, records: Iterable[dict]) -> None:
        """Replace the file with ``records`` atomically (temporary file, fsync, rename)."""
        self.close()
        with atomic_file(self.path, durable=True, in_store=False) as tmp, open(tmp, "wb") as file:
            for chunk in _chunks(records, 1000):
                file.write(self.encode(chunk))


def _chunks(records: Iterable[dict], size: int) -> Iterator[list[dict]]:
    chunk: list[dict] = []
    for record in records:
        chunk.append(record)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class CsvFile(LineFile):
    """One row per image: the top-1 label in its own columns, all predictions as JSON in ``predictions``."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        if not path.exists() or path.stat().st_size == 0:
            LineFile.append(self, [{}])  # the header, through the same durable write
        elif self._header() in OLD_CSV_HEADERS:
            self.rewrite(self.read())  # an older wanwu's file: same rows, new columns empty

    def _header(self) -> tuple[str, ...]:
        with open(self.path, encoding="utf-8", errors="surrogateescape", newline="") as file:
            return tuple(next(csv.reader(file), ()))

    def encode(self, records: Iterable[dict]) -> bytes:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        for record in records:
            writer.writerow(CSV_FIELDS if not record else _csv_row(record))
        # a path that is not UTF-8 is written as its own bytes (what the file system holds), and read back the same
        return buffer.getvalue().encode("utf-8", "surrogateescape")

    def rewrite(self, records: Iterable[dict]) -> None:
        def with_header() -> Iterator[dict]:
            yield {}
            yield from records

        super().rewrite(with_header())

    def read(self) -> Iterator[dict]:
        return read_csv(self.path)


RECORD_KEYS = ("path", "sha256", "model", "weights_sha256", "precision", "predictions", "error")  # every wanwu wrote


def read_lines(path: Path) -> Iterator[dict]:
    """The records of a JSONL file, read only: a torn last line (a run killed mid-write, not yet cut by the next
    run) is not a record."""
    if not path.exists():
        return
    with open(path, encoding="utf-8") as file:
        for number, line in enumerate(file, 1):
            if not line.endswith("\n"):
                return
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise OutputError(f"{path} line {number} is not a tag record ({err}); "
                                  "use another --out, or --force to start it over") from None
            missing = [k for k in RECORD_KEYS if not isinstance(record, dict) or k not in record]
            if missing:
                raise OutputError(f"{path} line {number} is not a tag record (no {', '.join(map(repr, missing))}); "
                                  "use another --out, or --force to start it over")
            yield record


def read_csv(path: Path) -> Iterator[dict]:
    """The records of a tags CSV (this header or an older wanwu's), read only."""
    with open(path, encoding="utf-8", errors="surrogateescape", newline="") as file:
        reader = csv.DictReader(file)
        if tuple(reader.fieldnames or ()) not in (CSV_FIELDS, *OLD_CSV_HEADERS):
            raise OutputError(f"{path} is not a wanwu tags CSV (its header differs); use another --out or --force")
        for row in reader:
            yield _from_csv_row(row)


def _csv_row(record: dict) -> list:
    preds, cats, error = record["predictions"], record.get("categories"), record["error"]
    top, unknown = preds[0] if preds else {}, record.get("unknown")
    category = top_category(record)
    return [
        *("" if record[f] is None else record[f] for f in META_FIELDS),
        top.get("label", ""), top.get("label_zh", ""), top.get("score", ""),
        category.get("label", ""), category.get("label_zh", ""), category.get("score", ""),
        "" if unknown is None else str(unknown).lower(),
        "" if record.get("out_of_set") is None else str(record["out_of_set"]).lower(),
        "" if preds is None else json.dumps(preds, ensure_ascii=False),
        "" if cats is None else json.dumps(cats, ensure_ascii=False),
        error["code"] if error else "", error["message"] if error else "",
        record.get("categories_version") or "",
    ]


def _from_csv_row(row: dict) -> dict:
    record: dict = {f: (row[f] or None) for f in META_FIELDS}
    for field in _INT_FIELDS:
        record[field] = int(record[field]) if record[field] else None
    record["predictions"] = json.loads(row["predictions"]) if row["predictions"] else None
    if "categories" in row:  # absent from a file an older wanwu wrote
        record["categories"] = json.loads(row["categories"]) if row["categories"] else None
        record["unknown"] = {"true": True, "false": False}.get(row["unknown"])
    if "out_of_set" in row:  # absent from a file an older wanwu wrote
        record["out_of_set"] = {"true": True, "false": False}.get(row["out_of_set"])
    record["error"] = {"code": row["error_code"], "message": row["error_message"]} if row["error_code"] else None
    if "categories_version" in row:  # absent from a file an older wanwu wrote
        record["categories_version"] = row["categories_version"] or None
    return record


def latest_only(read: Callable[[], Iterator[dict]]) -> Iterator[dict]:
    """Each image's last record, in file order: two passes over ``read()``, so memory holds keys, not records."""
    last = {record_key(r): n for n, r in enumerate(read())}
    return (r for n, r in enumerate(read()) if last[record_key(r)] == n)
