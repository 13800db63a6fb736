"""``wanwu tag``'s core with a fake engine: discovery, records, resume, duplicates, bad inputs, output files."""

from __future__ import annotations

import hashlib
import json
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers import FakeEngine, fake_classifier, require_module
from wanwu.categories import category_table
from wanwu.tagging.api import TagFailedError, TagOptions, open_output, tag
from wanwu.tagging.decode import DecodeSettings, Loaded, Task, load_file
from wanwu.tagging.discover import discover
from wanwu.tagging.parquet import TOP_CATEGORY_FIELDS
from wanwu.tagging.records import FIELDS, Existing, top_category
from wanwu.tagging.stages import DecodeStage
from wanwu.tagging.writers import CsvFile, LineFile, OutputError, format_for, latest_only, repair_tail


def photo(path: Path, seed: int, size: tuple[int, int] = (320, 240), fmt: str = "JPEG") -> Path:
    """A small image whose mean colour (and so the fake engine's answer) depends on ``seed``."""
    rng = np.random.default_rng(seed)
    pixels = (rng.random((size[1], size[0], 3)) * 60 + rng.integers(0, 190, 3)).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, fmt)
    return path


def png_bomb(path: Path, width: int = 40_000, height: int = 40_000) -> Path:
    """A tiny PNG whose header claims ``width``×``height`` pixels (the body is a few bytes)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture()
def engine() -> FakeEngine:
    return FakeEngine()


@pytest.fixture()
def run(tmp_path: Path, engine: FakeEngine):  # type: ignore[no-untyped-def]
    """``run(sources, out, **options)``: ``wanwu.tag`` on the fake engine, one decode worker."""
    tagger = (fake_classifier(tmp_path / "home", engine), [engine])

    def go(sources, out: Path, **options):  # type: ignore[no-untyped-def]
        options.setdefault("decode_workers", 1)
        options.setdefault("batch_size", 4)
        return tag(sources, out, options=TagOptions(**options), tagger=tagger)

    return go


def test_discovery_walks_folders_filters_by_suffix_or_glob_and_keeps_paths_relative(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    for rel in ("a.jpg", "sub/b.PNG", "sub/deeper/c.webp", "notes.txt", "sub/d.gif"):
        (lib / rel).parent.mkdir(parents=True, exist_ok=True)
        (lib / rel).write_bytes(b"x")
    assert [f.rel for f in discover([lib]).files] == ["a.jpg", "sub/b.PNG", "sub/d.gif", "sub/deeper/c.webp"]
    assert [f.rel for f in discover([lib], ["*.txt"]).files] == ["notes.txt"]
    assert [f.rel for f in discover([lib], ["sub/*"]).files] == ["sub/b.PNG", "sub/d.gif", "sub/deeper/c.webp"]
    # two sources: relative to their common folder; a file named twice is listed once; a named file is always taken
    found = discover([lib / "sub", lib / "a.jpg", lib / "notes.txt", lib / "a.jpg"])
    assert [f.rel for f in found.files] == ["sub/b.PNG", "sub/d.gif", "sub/deeper/c.webp", "a.jpg", "notes.txt"]
    assert all(f.size == 1 and f.error is None for f in found.files)


def test_symlinks_are_skipped_unless_followed_and_a_broken_one_is_an_error(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    photo(lib / "real.jpg", 1)
    (lib / "link.jpg").symlink_to(lib / "real.jpg")
    (lib / "broken.jpg").symlink_to(lib / "gone.jpg")
    (lib / "loop").symlink_to(lib)  # a folder linking to its parent: following it must not loop forever
    plain = discover([lib])
    assert [f.rel for f in plain.files] == ["real.jpg"] and plain.symlinks_skipped == 3
    followed = {f.rel: f for f in discover([lib], follow_symlinks=True).files}
    assert set(followed) == {"broken.jpg", "link.jpg", "real.jpg"}
    assert followed["broken.jpg"].error[0] == "broken_symlink" and followed["link.jpg"].error is None


def test_a_fifo_is_not_read(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.jpg")
    (entry,) = discover([tmp_path]).files
    assert entry.error[0] == "not_a_file"


def test_records_follow_the_contract(tmp_path: Path, run, engine: FakeEngine) -> None:  # type: ignore[no-untyped-def]
    paths = [photo(tmp_path / "lib" / f"p{i}.jpg", i) for i in range(6)]
    summary = run([tmp_path / "lib"], tmp_path / "tags.jsonl", top_k=3)
    assert (summary.tagged, summary.failed, summary.skipped, summary.decoded) == (6, 0, 0, 6)
    records = read_jsonl(tmp_path / "tags.jsonl")
    assert sorted(r["path"] for r in records) == [p.name for p in paths]
    for record in records:
        data = (tmp_path / "lib" / record["path"]).read_bytes()
        assert tuple(record) == FIELDS
        assert record["sha256"] == hashlib.sha256(data).hexdigest() and record["bytes"] == len(data)
        assert (record["width"], record["height"]) == (320, 240) and record["error"] is None
        assert (record["model"], record["engine"], record["precision"]) == ("efficientnet_lite0", "fake", "fp32")
        assert [p["index"] for p in record["predictions"]][1:] == [(record["predictions"][0]["index"] + k) % 1000 for k in (1, 2)]
        assert set(record["predictions"][0]) == {"index", "label", "label_zh", "score"}
    assert sum(engine.batches) == 6 and max(engine.batches) <= 4


def test_identical_files_are_decoded_once_here_and_across_runs(tmp_path: Path, run, engine: FakeEngine) -> None:  # type: ignore[no-untyped-def]
    lib = tmp_path / "lib"
    original = photo(lib / "a.jpg", 7)
    for copy in ("b.jpg", "sub/c.jpg"):
        (lib / copy).parent.mkdir(exist_ok=True)
        (lib / copy).write_bytes(original.read_bytes())
    photo(lib / "other.jpg", 8)
    summary = run([lib], tmp_path / "tags.jsonl")
    assert (summary.decoded, summary.tagged, summary.reused) == (2, 2, 2) and sum(engine.batches) == 2
    by_path = {r["path"]: r for r in read_jsonl(tmp_path / "tags.jsonl")}
    assert by_path["b.jpg"]["predictions"] == by_path["a.jpg"]["predictions"] == by_path["sub/c.jpg"]["predictions"]
    # a new copy in a later run takes the recorded predictions without a decode
    (lib / "d.jpg").write_bytes(original.read_bytes())
    again = run([lib], tmp_path / "tags.jsonl")
    assert (again.skipped, again.reused, again.decoded) == (4, 1, 0) and sum(engine.batches) == 2


def test_rerun_skips_what_is_tagged_retags_changed_and_failed_files_and_keeps_one_record_each(tmp_path: Path, run) -> None:  # type: ignore[no-untyped-def]
    lib, out = tmp_path / "lib", tmp_path / "tags.jsonl"
    for i in range(5):
        photo(lib / f"p{i}.jpg", i)
    (lib / "bad.jpg").write_text("not yet an image")
    first = run([lib], out)
    assert (first.tagged, first.failed) == (5, 1)
    photo(lib / "p0.jpg", 100)  # changed content
    photo(lib / "bad.jpg", 101)  # fixed
    second = run([lib], out)
    assert (second.skipped, second.tagged, second.failed, second.replaced) == (4, 2, 0, 2)
    records = read_jsonl(out)
    assert sorted(r["path"] for r in records) == ["bad.jpg", *(f"p{i}.jpg" for i in range(5))]
    assert all(r["error"] is None for r in records)
    assert {r["path"]: r["sha256"] for r in records}["p0.jpg"] == hashlib.sha256((lib / "p0.jpg").read_bytes()).hexdigest()
    forced = run([lib], out, force=True)
    assert forced.tagged == 6 and len(read_jsonl(out)) == 6


def test_bad_inputs_are_error_records_and_the_rest_is_tagged(tmp_path: Path, run) -> None:  # type: ignore[no-untyped-def]
    lib = tmp_path / "lib"
    good = photo(lib / "good.jpg", 1)
    (lib / "truncated.jpg").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    (lib / "text.jpg").write_text("hello")
    (lib / "empty.png").write_bytes(b"")
    png_bomb(lib / "bomb.png")
    photo(lib / "strip.png", 2, size=(1, 40_000), fmt="PNG")  # resized, it would be billions of pixels: only the crop is
    (lib / "dangling.jpg").symlink_to(lib / "nowhere.jpg")
    summary = run([lib], tmp_path / "tags.jsonl", follow_symlinks=True)
    codes = {r["path"]: (r["error"] or {}).get("code") for r in read_jsonl(tmp_path / "tags.jsonl")}
    assert codes == {"good.jpg": None, "truncated.jpg": "corrupt_image", "text.jpg": "unsupported_media_type",
                     "empty.png": "empty_file", "bomb.png": "too_many_pixels", "strip.png": None,
                     "dangling.jpg": "broken_symlink"}
    assert (summary.tagged, summary.failed) == (2, 5)
    assert "failed 5" in summary.line() and "too_many_pixels 1" in summary.line()


def test_an_unreadable_file_is_permission_denied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import wanwu.tagging.decode as decode

    def refuse(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(decode, "open", refuse, raising=False)
    settings = DecodeSettings(fake_classifier(tmp_path).spec.preprocessing)
    loaded = load_file(Task(str(tmp_path / "x.jpg"), "x.jpg", 10), settings)
    assert loaded.error[0] == "permission_denied" and not loaded.decoded


def test_an_engine_failure_fails_its_batch_not_the_run(tmp_path: Path, run, engine: FakeEngine) -> None:  # type: ignore[no-untyped-def]
    for i in range(3):
        photo(tmp_path / "lib" / f"p{i}.jpg", i)
    engine.fail = RuntimeError("boom")
    with pytest.raises(TagFailedError, match="every one of the 3 images failed \\(3 inference_failed\\)") as caught:
        run([tmp_path / "lib"], tmp_path / "tags.jsonl")  # nothing tagged: not a success
    summary = caught.value.summary
    assert summary.failed == 3 and summary.errors == {"inference_failed": 3}
    engine.fail = None
    assert run([tmp_path / "lib"], tmp_path / "tags.jsonl").tagged == 3
    assert len(read_jsonl(tmp_path / "tags.jsonl")) == 3


def crash_on_doomed(task: Task) -> Loaded:
    """A decode function that kills its worker process for one file (as the OOM killer would)."""
    if task.rel == "doomed.jpg":
        os._exit(9)
    return Loaded(task.rel, "0" * 64, task.size)


def test_a_dead_decoder_process_fails_only_its_file(tmp_path: Path) -> None:
    stage = DecodeStage(DecodeSettings(fake_classifier(tmp_path).spec.preprocessing), workers=1, window=8, load=crash_on_doomed)
    try:
        names = ["a.jpg", "b.jpg", "doomed.jpg", "c.jpg", "d.jpg"]
        for name in names:
            stage.submit(Task(name, name, 1))
        results = [stage.next()[1] for _ in names]
    finally:
        stage.close()
    assert [r.rel for r in results] == names
    assert [r.error[0] if r.error else None for r in results] == [None, None, "worker_crashed", None, None]


def test_a_torn_last_line_is_cut_before_appending(tmp_path: Path) -> None:
    out = tmp_path / "tags.jsonl"
    out.write_bytes(b'{"path": "a"}\n{"path": "b"}\n{"path": "c", "sha')
    assert repair_tail(out) == len(b'{"path": "c", "sha')
    assert out.read_bytes() == b'{"path": "a"}\n{"path": "b"}\n' and repair_tail(out) == 0
    (tmp_path / "only.jsonl").write_bytes(b'{"pa')
    assert repair_tail(tmp_path / "only.jsonl") == 4 and (tmp_path / "only.jsonl").read_bytes() == b""
    (tmp_path / "long.jsonl").write_bytes(b"x" * 200_000)  # a torn line longer than one read chunk
    assert repair_tail(tmp_path / "long.jsonl") == 200_000


def test_a_file_that_is_not_tags_is_refused_not_overwritten(tmp_path: Path, run) -> None:  # type: ignore[no-untyped-def]
    photo(tmp_path / "lib" / "a.jpg", 1)
    out = tmp_path / "notes.jsonl"
    out.write_text("my notes\nmore notes\n")
    with pytest.raises(Exception, match="line 1 is not a tag record"):
        run([tmp_path / "lib"], out)
    assert out.read_text() == "my notes\nmore notes\n"


@pytest.mark.parametrize("line", ['{"x": 1}', "[1, 2]", '{"path": "a.jpg"}'])
def test_json_that_is_not_a_record_is_refused_by_name(tmp_path: Path, run, line: str) -> None:  # type: ignore[no-untyped-def]
    """Valid JSON of another shape is named as such (by the tagger and by dupes/search), never a KeyError."""
    from wanwu.tagging.library import load_library

    photo(tmp_path / "lib" / "a.jpg", 1)
    out = tmp_path / "other.jsonl"
    out.write_text(line + "\n")
    with pytest.raises(OutputError, match=r"line 1 is not a tag record \(no .*'model'"):
        run([tmp_path / "lib"], out)
    with pytest.raises(OutputError, match="line 1 is not a tag record"):
        load_library([out])
    assert out.read_text() == line + "\n"


def test_latest_record_per_image_wins() -> None:
    """One record per image (its path), whatever made it: another model's or precision's record is replaced."""
    base = {"model": "m", "weights_sha256": "w", "precision": "fp32"}
    records = [{**base, "path": "a", "n": 1}, {**base, "path": "b", "n": 2}, {**base, "path": "a", "n": 3},
               {**base, "path": "a", "precision": "int8", "n": 4}, {**base, "path": "b", "model": "m2", "n": 5}]
    assert [r["n"] for r in latest_only(lambda: iter(records))] == [4, 5]


def test_existing_records_decide_skip_and_reuse() -> None:
    table = category_table().version
    ok = {"path": "a", "sha256": "h1", "bytes": 10, "model": "m", "weights_sha256": "w", "precision": "fp32",
          "predictions": [{"index": 1}], "error": None, "categories_version": table}
    records = [ok, {**ok, "path": "b", "sha256": None, "predictions": None, "error": {"code": "corrupt_image"}},
               {**ok, "path": "c", "sha256": "h3", "precision": "int8"},  # another precision
               {**ok, "path": "d", "sha256": "h4", "bytes": 12, "categories_version": "older"},  # another table
               {**ok, "path": "e", "sha256": "h5"}, {**ok, "path": "e", "sha256": "h5", "model": "m2"},  # replaced
               {k: v for k, v in ok.items() if k != "categories_version"} | {"path": "f", "sha256": "h6"}]  # older wanwu
    existing = Existing(("m", "w", "fp32", table))
    for record in records:
        existing.add(record)
    assert existing.is_done("a", "h1") and not existing.is_done("a", "h2") and not existing.is_done("c", "h3")
    assert not existing.is_done("d", "h4") and not existing.is_done("e", "h5") and not existing.is_done("f", "h6")
    assert existing.known(10) == {"h1", "h5"} and existing.known(12) == frozenset()  # h5: the same model made it
    assert existing.has_record("b") and existing.has_record("d") and not existing.has_record("z")
    assert not existing.is_done("b", "h1") and existing.predictions("h1") == [{"index": 1}] and existing.duplicates
    auto = Existing(("m", "w", "auto", table))  # a run at auto takes any precision of these weights
    for record in records:
        auto.add(record)
    assert auto.is_done("c", "h3") and auto.is_done("a", "h1") and not auto.is_done("d", "h4")
    trained = Existing(("m", "w", "fp32", None))  # a model without categories: an older wanwu's record is current
    trained.add(records[-1])
    assert trained.is_done("f", "h6")


@pytest.mark.parametrize("name", ["tags.jsonl", "tags.csv", "tags.parquet"])
def test_a_retag_with_another_model_leaves_one_record_per_image_all_from_it(tmp_path: Path, engine: FakeEngine,
                                                                            name: str) -> None:
    """Records name the model, weights and category table; another model re-tags and replaces; the same one skips."""
    from dataclasses import replace

    if name.endswith(".parquet"):
        require_module("pyarrow")
    lib, out = tmp_path / "lib", tmp_path / name
    for i in range(5):
        photo(lib / f"p{i}.jpg", i)
    first = fake_classifier(tmp_path / "home", engine)
    other = fake_classifier(tmp_path / "home", engine)
    other.source = replace(other.source, weights_sha256="e" * 64)  # another model's weights
    go = lambda classifier, **o: tag([lib], out, options=TagOptions(decode_workers=1, batch_size=2, **o),  # noqa: E731
                                     tagger=(classifier, [engine]))
    assert go(first).tagged == 5
    again = go(other)
    assert (again.tagged, again.skipped, again.replaced) == (5, 0, 5)
    records = list(open_output(out, format_for(out, None)).read())
    assert sorted(r["path"] for r in records) == [f"p{i}.jpg" for i in range(5)]
    assert {r["weights_sha256"] for r in records} == {"e" * 64}
    assert {r["categories_version"] for r in records} == {category_table().version}
    assert go(other).skipped == 5 and go(other, force=True).tagged == 5
    assert len(list(open_output(out, format_for(out, None)).read())) == 5


def test_csv_output_round_trips_and_resumes(tmp_path: Path, run) -> None:  # type: ignore[no-untyped-def]
    import csv

    lib = tmp_path / "lib"
    photo(lib / "a, with comma.jpg", 1)
    photo(lib / "雪山.jpg", 2)
    (lib / "bad.jpg").write_text("no")
    summary = run([lib], tmp_path / "tags.csv")
    assert (summary.tagged, summary.failed) == (2, 1)
    rows = list(csv.DictReader((tmp_path / "tags.csv").open(encoding="utf-8", newline="")))
    assert sorted(r["path"] for r in rows) == ["a, with comma.jpg", "bad.jpg", "雪山.jpg"]
    by_path = {r["path"]: r for r in rows}
    assert by_path["bad.jpg"]["error_code"] == "unsupported_media_type" and by_path["bad.jpg"]["predictions"] == ""
    top = json.loads(by_path["雪山.jpg"]["predictions"])[0]
    assert by_path["雪山.jpg"]["label"] == top["label"] and float(by_path["雪山.jpg"]["score"]) == top["score"]
    records = list(CsvFile(tmp_path / "tags.csv").read())
    assert {r["path"]: r["bytes"] for r in records}["雪山.jpg"] == (lib / "雪山.jpg").stat().st_size
    assert run([lib], tmp_path / "tags.csv").skipped == 2


def test_parquet_output_matches_jsonl_and_survives_a_killed_run(tmp_path: Path, run) -> None:  # type: ignore[no-untyped-def]
    pq = require_module("pyarrow.parquet")
    lib = tmp_path / "lib"
    for i in range(5):
        photo(lib / f"p{i}.jpg", i)
    (lib / "bad.jpg").write_text("no")
    run([lib], tmp_path / "tags.jsonl")
    run([lib], tmp_path / "tags.parquet")
    table = pq.read_table(tmp_path / "tags.parquet")
    assert table.column_names == [*FIELDS, *TOP_CATEGORY_FIELDS] and not (tmp_path / "tags.parquet.journal.jsonl").exists()
    key = lambda r: r["path"]  # noqa: E731
    rows = sorted(table.to_pylist(), key=key)
    assert [{k: v for k, v in r.items() if k in FIELDS} for r in rows] == sorted(read_jsonl(tmp_path / "tags.jsonl"), key=key)
    assert all(r["category"] == top_category(r).get("label") for r in rows) and any(r["category_score"] for r in rows)
    # a killed run left a journal (and a torn line): the next run folds it in, tags the rest, skips the done
    journal = tmp_path / "tags2.parquet.journal.jsonl"
    done = [r for r in read_jsonl(tmp_path / "tags.jsonl") if r["path"] in ("p0.jpg", "p1.jpg")]
    journal.write_bytes(LineFile(journal).encode(done) + b'{"path": "p2.j')
    summary = run([lib], tmp_path / "tags2.parquet")
    assert (summary.skipped, summary.tagged, summary.failed, summary.torn_bytes) == (2, 3, 1, 14)
    assert sorted(r["path"] for r in pq.read_table(tmp_path / "tags2.parquet").to_pylist()) == sorted(
        ["bad.jpg", *(f"p{i}.jpg" for i in range(5))])


def test_a_library_of_hostile_files_gets_one_record_each(tmp_path: Path, run) -> None:  # type: ignore[no-untyped-def]
    """The service's fuzz corpus (mutated JPEG/PNG/GIF/WebP/TIFF/BMP, extreme sizes) as files: the run never stops."""
    import random

    from tests.fuzz_corpus import extreme_images, mutated_image

    lib, rng = tmp_path / "lib", random.Random(15)
    lib.mkdir()
    cases = [mutated_image(rng) for _ in range(150)] + extreme_images()
    for i, (_, data) in enumerate(cases):
        (lib / f"case{i:03d}.jpg").write_bytes(data)
    summary = run([lib], tmp_path / "tags.jsonl", decode_workers=2)
    records = read_jsonl(tmp_path / "tags.jsonl")
    assert len(records) == len(cases) == summary.tagged + summary.reused + summary.failed
    assert not {"worker_crashed", "decode_failed"} & set(summary.errors), summary.errors
    assert all((r["error"] is None) == bool(r["predictions"]) for r in records)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_recorded_size_is_upright_and_a_png_is_decoded_once(fmt: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.helpers import encode, gradient_image
    from wanwu.models import get_model_spec
    from wanwu.tagging.decode import decode_crop

    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated 90°: a viewer sees it 40 wide, 80 high
    data = encode(gradient_image(80, 40), fmt, exif=exif.tobytes())
    plain = encode(gradient_image(80, 40), fmt)
    settings = DecodeSettings(get_model_spec("efficientnet_lite0").preprocessing)
    from PIL import PngImagePlugin

    decodes = []
    original = PngImagePlugin.PngImageFile.load

    def counting_load(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        decodes.extend([1] if self.tile else [])  # a load with tiles left decodes pixels; later ones return at once
        return original(self, *args, **kwargs)

    monkeypatch.setattr(PngImagePlugin.PngImageFile, "load", counting_load)
    assert decode_crop(data, settings)[1:] == (40, 80)
    assert decode_crop(plain, settings)[1:] == (80, 40)
    if fmt == "PNG":
        assert len(decodes) == 2  # one decode per file: the size comes from the header
