"""``wanwu dupes``, ``search`` and ``similar`` end to end with the bundled model (issue 25).

The labelled set (tests/dupes_set.py): public-domain photos, their edited copies and a byte-identical copy
each, plus the 100 ImageNet samples as distractors; every pair inside a photo's group is a true pair.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from tests import dupes_set
from tests.integration.test_tag import wanwu
from tests.unit.test_tagging import read_jsonl
from wanwu.tagging.vectors import HEADER, read_vectors, row_dtype, sidecar

pytestmark = pytest.mark.slow
DOGS = ("n02085620", "n02113978")  # WordNet: the dog classes of ImageNet-1k, by wnid


@pytest.fixture(scope="module")
def labelled(photos_dir: Path, samples_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    lib = tmp_path_factory.mktemp("dupes-lib")
    groups = dupes_set.add_distractors(samples_dir, lib, dupes_set.build(photos_dir, lib))
    return lib, groups


@pytest.fixture(scope="module")
def tagged(labelled: tuple[Path, dict[str, str]], shared_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dupes-tags") / "tags.jsonl"
    proc = wanwu(shared_home, "tag", str(labelled[0]), "--out", str(out), "--engine", "onnxruntime")
    assert proc.returncode == 0, proc.stderr
    return out


def _pairs(paths: list[str]) -> set[frozenset[str]]:
    return {frozenset((a, b)) for i, a in enumerate(paths) for b in paths[i + 1:]}


def test_the_tagger_stores_one_vector_per_content_and_a_rerun_reuses_them(tagged: Path, labelled, shared_home: Path) -> None:
    records = read_jsonl(tagged)
    stored = read_vectors(sidecar(tagged))
    assert set(stored.sha256) == {r["sha256"] for r in records} and len(stored.sha256) == len(set(stored.sha256))
    size = sidecar(tagged).stat().st_size
    assert size == HEADER + len(stored.sha256) * row_dtype().itemsize
    proc = wanwu(shared_home, "tag", str(labelled[0]), "--out", str(tagged), "--engine", "onnxruntime", "--json")
    assert json.loads(proc.stdout)["skipped"] == len(records) and sidecar(tagged).stat().st_size == size


def test_dupes_finds_near_and_exact_pairs(tagged: Path, labelled, shared_home: Path) -> None:
    proc = wanwu(shared_home, "dupes", str(tagged), "--json")
    assert proc.returncode == 0, proc.stderr
    groups = [json.loads(line) for line in proc.stdout.splitlines()]
    assert all(set(g) == {"tier", "paths", "distance"} for g in groups)
    found = set().union(*(_pairs(g["paths"]) for g in groups if g["tier"] in ("exact", "near")))
    truth = dupes_set.true_pairs(labelled[1])
    recall, precision = len(found & truth) / len(truth), len(found & truth) / len(found)
    assert recall >= 0.95 and precision >= 0.99, (recall, precision)
    copies = [p for p in labelled[1] if "/copy-" in p]  # each original's byte-identical copy: one exact group each
    assert sorted(g["paths"] for g in groups if g["tier"] == "exact") == sorted(
        sorted([c, c.replace("/copy-", "/")]) for c in copies)
    for group in groups:  # a near group never holds a merely similar photo
        if group["tier"] == "near":
            assert len({labelled[1][p] for p in group["paths"]}) == 1, group


def test_search_dog_finds_the_dogs(tagged: Path, labelled, shared_home: Path) -> None:
    for query in ("狗", "dog"):
        proc = wanwu(shared_home, "search", str(tagged), query, "--json")
        assert proc.returncode == 0, proc.stderr
        hits = {json.loads(line)["path"] for line in proc.stdout.splitlines()}
        found = {h for h in hits if h.startswith("imagenet/")}
        dogs = {p for p in labelled[1] if p.startswith("imagenet/") and DOGS[0] <= p.split("/")[1][:9] <= DOGS[1]}
        assert len(dogs) >= 10
        recall, precision = len(found & dogs) / len(dogs), len(found & dogs) / max(1, len(found))
        assert recall >= 0.9 and precision >= 0.9, (query, recall, precision, sorted(found ^ dogs))
        assert "dog/dog.jpg" in hits


def test_similar_finds_the_original_of_an_unseen_edit(tagged: Path, labelled, shared_home: Path, tmp_path: Path) -> None:
    lib = labelled[0]
    with Image.open(lib / "giraffe" / "giraffe.jpg") as img:
        img.rotate(4, expand=False).resize((300, 300)).save(tmp_path / "new.png")
    proc = wanwu(shared_home, "similar", str(tagged), str(tmp_path / "new.png"), "--top", "3", "--json",
                 "--engine", "onnxruntime")
    assert proc.returncode == 0, proc.stderr
    assert all(json.loads(line)["path"].startswith("giraffe/") for line in proc.stdout.splitlines())
    proc = wanwu(shared_home, "similar", str(tagged), str(lib / "kite" / "kite.jpg"), "--top", "2")
    assert proc.returncode == 0 and all("kite/" in line for line in proc.stdout.splitlines())
    assert "kite/kite.jpg" not in proc.stdout and "copy-kite" not in proc.stdout  # the query itself is left out


def test_a_plain_rerun_fills_the_vectors_of_records_tagged_before_the_sidecar(photos_dir: Path, shared_home: Path,
                                                                               tmp_path: Path) -> None:
    lib, out = tmp_path / "lib", tmp_path / "tags.jsonl"
    lib.mkdir()
    for path in sorted(photos_dir.glob("*.jpg"))[:4]:
        shutil.copy(path, lib / path.name)
    shutil.copy(lib / "dog.jpg", lib / "dog-copy.jpg")  # identical content: one row, one decode
    assert wanwu(shared_home, "tag", str(lib), "--out", str(out), "--engine", "onnxruntime").returncode == 0
    records, rows = out.read_bytes(), read_vectors(sidecar(out))
    sidecar(out).unlink()  # as a library tagged before the sidecar existed
    proc = wanwu(shared_home, "tag", str(lib), "--out", str(out), "--engine", "onnxruntime", "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert (summary["vectors_filled"], summary["skipped"], summary["tagged"]) == (4, 5, 0)
    assert out.read_bytes() == records
    filled = read_vectors(sidecar(out))
    assert sorted(filled.sha256) == sorted(rows.sha256) and len(filled.sha256) == 4
    for sha in rows.sha256:  # the same model on the same bytes: the same rows
        a, b = rows.index()[sha], filled.index()[sha]
        assert rows.phash[a] == filled.phash[b]
        assert float(rows.vectors[a].astype("float32") @ filled.vectors[b].astype("float32")) > 0.99
    proc = wanwu(shared_home, "tag", str(lib), "--out", str(out), "--engine", "onnxruntime", "--json")
    assert json.loads(proc.stdout)["vectors_filled"] == 0
