"""``wanwu tag --xmp``: keyword sidecars, read back with exiftool; merging; what is left alone (issue 25)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import FakeEngine, fake_classifier, missing
from tests.unit.test_tagging import photo, read_jsonl
from wanwu.tagging.api import TagOptions, tag
from wanwu.tagging.xmp import keywords, merge, sidecar_path

RECORD = {"error": None, "unknown": False,
          "predictions": [{"index": 207, "label": "golden retriever", "label_zh": "金毛寻回犬", "score": 0.81}],
          "categories": [{"id": "animal", "label": "animal", "label_zh": "动物", "score": 0.99, "parent": None},
                         {"id": "dog", "label": "dog", "label_zh": "狗", "score": 0.95, "parent": "animal"},
                         {"id": "cat", "label": "cat", "label_zh": "猫", "score": 0.03, "parent": "animal"}]}

# a sidecar as digiKam and darktable write them: their own keywords, namespaces and properties
FOREIGN = """<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="XMP Core 4.4.0-Exiv2">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmlns:digiKam="http://www.digikam.org/ns/1.0/" xmlns:darktable="http://darktable.sf.net/"
    xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:lr="http://ns.adobe.com/lightroom/1.0/"
    xmp:Rating="4" darktable:xmp_version="5">
   <digiKam:TagsList><rdf:Seq><rdf:li>People/Family</rdf:li></rdf:Seq></digiKam:TagsList>
   <dc:subject><rdf:Bag><rdf:li>Family</rdf:li></rdf:Bag></dc:subject>
   <lr:hierarchicalSubject><rdf:Bag><rdf:li>People|Family</rdf:li></rdf:Bag></lr:hierarchicalSubject>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>
"""


def exiftool(*paths: Path) -> list[dict]:
    if not shutil.which("exiftool"):
        missing("exiftool is not installed (Debian: libimage-exiftool-perl)")
    proc = subprocess.run(["exiftool", "-j", "-struct", "-XMP-dc:Subject", "-XMP-lr:HierarchicalSubject", "-XMP-xmp:Rating",
                           "-XMP-digiKam:TagsList", *map(str, paths)], capture_output=True, check=True)
    return json.loads(proc.stdout)


def as_list(value: object) -> list:
    return value if isinstance(value, list) else [] if value is None else [value]


@pytest.fixture()
def run(tmp_path: Path):  # type: ignore[no-untyped-def]
    engine = FakeEngine()
    tagger = (fake_classifier(tmp_path / "home", engine), [engine])
    return lambda sources, out, **o: tag(sources, out, tagger=tagger,
                                         options=TagOptions(decode_workers=1, batch_size=4, xmp=True, **o))


def test_keywords_are_the_category_chain_and_the_fine_label_in_each_language() -> None:
    assert keywords(RECORD, "both") == (["动物", "狗", "金毛寻回犬", "animal", "dog", "golden retriever"],
                                        ["动物|狗|金毛寻回犬", "animal|dog|golden retriever"])
    assert keywords(RECORD, "en") == (["animal", "dog", "golden retriever"], ["animal|dog|golden retriever"])
    assert keywords(RECORD, "zh") == (["动物", "狗", "金毛寻回犬"], ["动物|狗|金毛寻回犬"])
    unsure = {**RECORD, "predictions": [{**RECORD["predictions"][0], "score": 0.1}]}  # the fine label is not a keyword
    assert keywords(unsure, "en") == (["animal", "dog"], ["animal|dog"])
    assert keywords({**RECORD, "unknown": True}) == ([], []) and keywords({**RECORD, "error": {"code": "x"}}) == ([], [])
    assert sidecar_path("a/photo.jpg") == "a/photo.jpg.xmp" and sidecar_path("a/photo.jpg", "stem") == "a/photo.xmp"


def test_sidecars_are_written_in_both_languages_and_the_images_are_untouched(tmp_path: Path, run) -> None:  # type: ignore[no-untyped-def]
    lib = tmp_path / "lib"
    images = [photo(lib / name, i) for i, name in enumerate(["a.jpg", "sub/b.jpg", 'with "quotes" and spaces.jpg'])]
    before = {p: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns) for p in images}
    summary = run([lib], tmp_path / "tags.jsonl")
    assert summary.sidecars["written"] == 3 and not summary.sidecars["problems"]
    assert {p: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns) for p in images} == before
    records = {r["path"]: r for r in read_jsonl(tmp_path / "tags.jsonl")}
    for found in exiftool(*(Path(f"{p}.xmp") for p in images)):
        record = records[os.path.relpath(found["SourceFile"][:-len(".xmp")], lib)]
        subjects, paths = keywords(record, "both")
        assert as_list(found["Subject"]) == subjects and as_list(found["HierarchicalSubject"]) == paths
        top = record["predictions"][0]
        assert top["label"] in subjects and top["label_zh"] in subjects  # both languages
        assert any(p.endswith(f"|{top['label']}") or p == top["label"] for p in paths)
    # a second run changes nothing; --xmp-name stem writes photo.xmp; --lang en only English
    assert run([lib], tmp_path / "tags.jsonl").sidecars["unchanged"] == 3
    run([lib], tmp_path / "tags.jsonl", xmp_name="stem", lang="en")
    (english,) = exiftool(lib / "a.xmp")
    assert as_list(english["Subject"]) == keywords(records["a.jpg"], "en")[0]


def test_an_existing_sidecar_is_merged_keeping_other_tools_keywords_and_replacing_wanwus(tmp_path: Path, run) -> None:  # type: ignore[no-untyped-def]
    lib = tmp_path / "lib"
    photo(lib / "a.jpg", 1)
    side = lib / "a.jpg.xmp"
    # wanwu's keywords from an earlier run (recorded in its own namespace), beside digiKam's and darktable's
    earlier = merge(FOREIGN.encode(), ["旧的", "old guess"], ["旧|的", "old|guess"])
    side.write_bytes(earlier)
    assert "old guess" in as_list(exiftool(side)[0]["Subject"])
    summary = run([lib], tmp_path / "tags.jsonl")
    assert summary.sidecars["written"] == 1
    (found,) = exiftool(side)
    subjects, paths = keywords(read_jsonl(tmp_path / "tags.jsonl")[0], "both")
    assert as_list(found["Subject"]) == ["Family", *subjects]
    assert as_list(found["HierarchicalSubject"]) == ["People|Family", *paths]
    assert found["Rating"] == 4 and as_list(found["TagsList"]) == ["People/Family"]
    text = side.read_text()
    assert "darktable:xmp_version=\"5\"" in text and "xmlns:digiKam=" in text and "old guess" not in text


@pytest.mark.parametrize("content", [b"<x:xmpmeta><unclosed", b"\x00\xff not xml", b"<html><body>hi</body></html>",
                                     b'<!DOCTYPE x [<!ENTITY a "aaaa">]><x:xmpmeta xmlns:x="adobe:ns:meta/"/>'])
def test_a_sidecar_that_cannot_be_parsed_is_left_byte_identical(tmp_path: Path, run, content: bytes) -> None:  # type: ignore[no-untyped-def]
    lib = tmp_path / "lib"
    photo(lib / "a.jpg", 1)
    (lib / "a.jpg.xmp").write_bytes(content)
    summary = run([lib], tmp_path / "tags.jsonl")
    assert (lib / "a.jpg.xmp").read_bytes() == content
    (problem,) = summary.sidecars["problems"]
    assert "a.jpg.xmp is not XMP that wanwu can read" in problem and "left as it is" in problem
    assert summary.tagged == 1 and len(read_jsonl(tmp_path / "tags.jsonl")) == 1  # the record is written all the same


def test_locked_and_odd_sidecars_are_left_alone_with_a_message_and_records_still_written(tmp_path: Path, run) -> None:  # type: ignore[no-untyped-def]
    lib = tmp_path / "lib"
    for name in ("locked.jpg", "folder.jpg", "fine.jpg", "caf\udce9.jpg"):  # the last: a name that is not UTF-8
        photo(lib / name, len(name))
    (lib / "locked.jpg.xmp").write_bytes(FOREIGN.encode())
    (lib / "locked.jpg.xmp").chmod(0o444)
    (lib / "folder.jpg.xmp").mkdir()
    (lib / "gone.jpg.xmp").write_bytes(b"an orphan: its image is gone")  # ignored
    summary = run([lib], tmp_path / "tags.jsonl")
    problems = sorted(summary.sidecars["problems"])
    assert len(problems) == 2 and "folder.jpg.xmp is not a regular file" in problems[0]
    assert "locked.jpg.xmp is read-only (locked); left as it is" in problems[1]
    assert (lib / "locked.jpg.xmp").read_bytes() == FOREIGN.encode()
    assert (lib / "gone.jpg.xmp").read_bytes() == b"an orphan: its image is gone"
    assert summary.sidecars["written"] == 2 and os.path.exists(lib / "caf\udce9.jpg.xmp")
    assert sorted(r["path"] for r in read_jsonl(tmp_path / "tags.jsonl")) == sorted(
        ["locked.jpg", "folder.jpg", "fine.jpg", "caf\udce9.jpg"])
    assert exiftool(lib / "caf\udce9.jpg.xmp")[0]["Subject"]


def test_an_image_deleted_after_tagging_gets_no_sidecar(tmp_path: Path, run) -> None:  # type: ignore[no-untyped-def]
    lib = tmp_path / "lib"
    photo(lib / "a.jpg", 1)
    photo(lib / "b.jpg", 2)
    tag([lib], tmp_path / "tags.jsonl", tagger=(fake_classifier(tmp_path / "h2", FakeEngine()), [FakeEngine()]),
        options=TagOptions(decode_workers=1))
    (lib / "b.jpg").unlink()
    summary = run([lib], tmp_path / "tags.jsonl")
    assert summary.sidecars["written"] == 1 and not (lib / "b.jpg.xmp").exists()
