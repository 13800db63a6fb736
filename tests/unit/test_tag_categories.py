"""``wanwu tag`` records carry everyday categories and ``unknown`` (issue 24); files written before them still read."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from tests.helpers import FakeEngine, fake_classifier, require_module
from tests.unit.test_tagging import photo, read_jsonl
from wanwu.categories import category_table
from wanwu.tagging.api import TagOptions, tag
from wanwu.tagging.records import META_FIELDS, top_category
from wanwu.tagging.writers import CSV_FIELDS, LEGACY_CSV_FIELDS, NO_OUT_OF_SET_CSV_FIELDS, CsvFile


@pytest.fixture()
def run(tmp_path: Path):  # type: ignore[no-untyped-def]
    engine = FakeEngine()
    tagger = (fake_classifier(tmp_path / "home", engine), [engine])
    return lambda sources, out, **o: tag(sources, out, options=TagOptions(decode_workers=1, batch_size=4, **o), tagger=tagger)


def test_records_carry_categories_and_unknown(tmp_path: Path, run) -> None:  # type: ignore[no-untyped-def]
    for i in range(3):
        photo(tmp_path / "lib" / f"p{i}.jpg", i)
    (tmp_path / "lib" / "bad.jpg").write_text("no")
    run([tmp_path / "lib"], tmp_path / "tags.jsonl", top_k=3)
    records = {r["path"]: r for r in read_jsonl(tmp_path / "tags.jsonl")}
    table = category_table()
    for name in ("p0.jpg", "p1.jpg", "p2.jpg"):
        record = records[name]
        assert record["unknown"] is False  # the fake engine is sure of its top class
        top = record["predictions"][0]
        home = table.classes[top["index"]]
        if home is not None:  # the top class's own category is listed, with its parent
            entry = next(c for c in record["categories"] if c["id"] == home)
            assert set(entry) == {"id", "label", "label_zh", "score", "parent"} and entry["score"] >= top["score"]
        assert [c["score"] for c in record["categories"]] == sorted((c["score"] for c in record["categories"]), reverse=True)
    assert (records["bad.jpg"]["categories"], records["bad.jpg"]["unknown"]) == (None, None)


def test_csv_has_the_top_category_and_unknown_and_an_old_csv_is_upgraded(tmp_path: Path, run) -> None:  # type: ignore[no-untyped-def]
    lib = tmp_path / "lib"
    photo(lib / "a.jpg", 1)
    run([lib], tmp_path / "new.csv")
    row = next(csv.DictReader((tmp_path / "new.csv").open(encoding="utf-8", newline="")))
    record = next(CsvFile(tmp_path / "new.csv").read())
    assert tuple(row) == CSV_FIELDS and row["unknown"] == "false"
    assert (row["category"], float(row["category_score"])) == (top_category(record)["label"], top_category(record)["score"])
    assert json.loads(row["categories"]) == record["categories"]
    # a CSV an older wanwu wrote: read as it was, then upgraded to the new header when a run appends to it
    old = tmp_path / "old.csv"
    with old.open("w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(LEGACY_CSV_FIELDS)
        writer.writerow([{"path": "gone.jpg", "bytes": 3}.get(f, "") for f in META_FIELDS] + ["x", "x", 0.5, "[]", "", ""])
    assert [r["path"] for r in CsvFile.read.__get__(_bare(old))()] == ["gone.jpg"]
    photo(lib / "b.jpg", 2)
    run([lib], old)
    rows = list(csv.DictReader(old.open(encoding="utf-8", newline="")))
    assert tuple(rows[0]) == CSV_FIELDS and {r["path"] for r in rows} == {"gone.jpg", "a.jpg", "b.jpg"}
    assert next(r for r in rows if r["path"] == "gone.jpg")["categories"] == ""


def test_a_csv_from_before_out_of_set_is_read_and_upgraded(tmp_path: Path, run) -> None:  # type: ignore[no-untyped-def]
    lib = tmp_path / "lib"
    photo(lib / "a.jpg", 1)
    run([lib], tmp_path / "new.csv")
    (row,) = csv.DictReader((tmp_path / "new.csv").open(encoding="utf-8", newline=""))
    assert row["out_of_set"] == ""  # an ImageNet model has no out-of-set evidence
    old = tmp_path / "old.csv"
    with old.open("w", encoding="utf-8", newline="") as file:
        writer = csv.DictWriter(file, NO_OUT_OF_SET_CSV_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerow({**{k: v for k, v in row.items() if k != "out_of_set"}, "path": "old.jpg"})
    (record,) = CsvFile.read.__get__(_bare(old))()
    assert record["path"] == "old.jpg" and "out_of_set" not in record and record["unknown"] is False
    photo(lib / "b.jpg", 2)
    run([lib], old)
    rows = list(csv.DictReader(old.open(encoding="utf-8", newline="")))
    assert tuple(rows[0]) == CSV_FIELDS and {r["path"]: r["out_of_set"] for r in rows} == {"old.jpg": "", "a.jpg": "",
                                                                                             "b.jpg": ""}


def _bare(path: Path) -> CsvFile:
    """A CsvFile that only reads (no header written, no upgrade)."""
    file = CsvFile.__new__(CsvFile)
    file.path = path
    return file


def test_an_old_parquet_file_reads_and_is_rewritten_with_the_new_columns(tmp_path: Path, run) -> None:  # type: ignore[no-untyped-def]
    pa = require_module("pyarrow")
    pq = require_module("pyarrow.parquet")
    lib = tmp_path / "lib"
    photo(lib / "a.jpg", 1)
    run([lib], tmp_path / "tags.jsonl")
    (record,) = read_jsonl(tmp_path / "tags.jsonl")
    old = {k: v for k, v in record.items() if k not in ("categories", "unknown", "out_of_set")}
    pq.write_table(pa.Table.from_pylist([{**old, "path": "old.jpg"}]), tmp_path / "tags.parquet")
    photo(lib / "b.jpg", 2)
    run([lib], tmp_path / "tags.parquet")
    rows = {r["path"]: r for r in pq.read_table(tmp_path / "tags.parquet").to_pylist()}
    assert set(rows) == {"old.jpg", "a.jpg", "b.jpg"}
    assert rows["old.jpg"]["categories"] is None and rows["b.jpg"]["categories"] and rows["b.jpg"]["unknown"] is False
    assert rows["old.jpg"]["out_of_set"] is None and rows["b.jpg"]["out_of_set"] is None  # an ImageNet model: no evidence
