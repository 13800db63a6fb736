"""Versions in the store (NAME@V, atomic, never half-written), names that are refused, and verified archives."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.helpers import age
from wanwu.errors import ArchiveError, InvalidNameError, UnknownModelError
from wanwu.store import STALE_AFTER_S, Layout
from wanwu.trained.archive import MANIFEST, export_version, import_archive
from wanwu.trained.store import check_name, commit, new_partial, parse_ref, remove, resolve, versions
from wanwu.weights import sha256_file

PREPROCESSING = {"resize_size": 224, "crop_size": 224, "mean": [0.5] * 3, "std": [0.5] * 3, "interpolation": "bilinear",
                 "pad": True, "crop": "pad", "crop_why": "8 of 8 training images are cut-outs with transparent pixels"}


def fake_version(home: Path, name: str = "plants", payload: bytes = b"onnx", preprocessing: dict | None = None) -> object:
    """A version with stand-in files (nothing here loads them)."""
    partial = new_partial(home)
    (partial / "model.onnx").write_bytes(payload)
    (partial / "head.npz").write_bytes(payload[::-1] + b"head")
    files = {f: sha256_file(partial / f) for f in ("model.onnx", "head.npz")}
    manifest = {"base": {"model": "efficientnet_lite0", "weights_sha256": "0" * 64}, "classes": [], "files": files,
                "preprocessing": preprocessing or PREPROCESSING}
    return commit(home, partial, name, manifest)


@pytest.mark.parametrize("name", ["../evil", "a/b", "a\\b", "x@1", "", ".hidden", "-dash", "with space", "a" * 65, "resnet18"])
def test_names_with_path_characters_or_builtin_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidNameError):
        check_name(name)


@pytest.mark.parametrize("name", ["plants", "花卉", "shop-items_v2.1"])
def test_names_in_any_script_are_accepted(name: str) -> None:
    assert check_name(name) == name


def test_refs() -> None:
    assert parse_ref("plants") == ("plants", None) and parse_ref("plants@12") == ("plants", 12)
    for bad in ("plants@", "plants@0", "plants@x"):
        with pytest.raises(InvalidNameError):
            parse_ref(bad)


def test_versions_are_numbered_resolved_and_removed(tmp_path: Path) -> None:
    first, second = fake_version(tmp_path), fake_version(tmp_path, payload=b"other")
    assert [v.ref for v in versions(tmp_path)] == ["plants@1", "plants@2"]  # type: ignore[attr-defined]
    assert resolve(tmp_path, "plants").ref == "plants@2" and resolve(tmp_path, "plants@1").path == first.path  # type: ignore[attr-defined]
    assert json.loads((second.path / "version.json").read_text())["model"] == "plants@2"  # type: ignore[attr-defined]
    with pytest.raises(UnknownModelError, match="plants@1, plants@2"):
        resolve(tmp_path, "plants@3")
    with pytest.raises(Exception, match="say which version"):
        remove(tmp_path, "plants")
    remove(tmp_path, "plants@1")
    assert [v.ref for v in versions(tmp_path)] == ["plants@2"]
    assert sorted(p.name for p in Layout(tmp_path).trained.iterdir()) == ["plants@2"]


def test_a_killed_run_leaves_no_version_and_its_leftovers_are_cleaned(tmp_path: Path) -> None:
    """SIGKILL in the middle of writing: the partial folder is invisible, then removed by a run once it is stale."""
    script = (
        "import os, sys; from pathlib import Path; from wanwu.trained.store import new_partial; "
        "p = new_partial(Path(sys.argv[1])); (p / 'model.onnx').write_bytes(b'half'); os.kill(os.getpid(), 9)"
    )
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path)], env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert proc.returncode == -9
    (left,) = Layout(tmp_path).trained.glob(".*.part-*")
    assert versions(tmp_path) == []
    fake_version(tmp_path)  # young: its writer may live on another machine sharing the store
    assert sorted(p.name for p in Layout(tmp_path).trained.iterdir()) == [left.name, "plants@1"]
    age(left, STALE_AFTER_S + 60)
    fake_version(tmp_path)
    assert sorted(p.name for p in Layout(tmp_path).trained.iterdir()) == ["plants@1", "plants@2"]


def test_export_and_import_round_trip(tmp_path: Path) -> None:
    version = fake_version(tmp_path / "a")
    archive = tmp_path / "plants.wanwu"
    export_version(tmp_path / "a", "plants@1", archive)
    imported, new = import_archive(tmp_path / "b", archive)
    assert new and imported.ref == "plants@1"
    for name in ("model.onnx", "head.npz", "version.json"):
        assert (imported.path / name).read_bytes() == (version.path / name).read_bytes()  # type: ignore[attr-defined]
    again, new = import_archive(tmp_path / "b", archive)
    assert not new and again.path == imported.path


def _rewrite(archive: Path, out: Path, change) -> Path:  # type: ignore[no-untyped-def]
    """A copy of ``archive`` with ``change(name, data) -> (name, data) | None`` applied to each member."""
    with tarfile.open(archive) as src, tarfile.open(out, "w") as dst:
        for member in src.getmembers():
            changed = change(member.name, src.extractfile(member).read())  # type: ignore[union-attr]
            if changed is None:
                continue
            info = tarfile.TarInfo(changed[0])
            info.size = len(changed[1])
            dst.addfile(info, io.BytesIO(changed[1]))
    return out


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda n, d: (n, d[:-1] + b"X") if n == "model.onnx" else (n, d), "does not match its SHA-256"),
        (lambda n, d: None if n == "head.npz" else (n, d), "missing"),
        (lambda n, d: ("../../escape" if n == "head.npz" else n, d), "unexpected entry"),
        (lambda n, d: None if n == MANIFEST else (n, d), "not a wanwu model archive"),
        (lambda n, d: (n, d.replace(b'"plants"', b'"../x"')) if n == MANIFEST else (n, d), "invalid model name"),
    ],
    ids=["tampered", "missing-file", "path-traversal", "no-manifest", "bad-name"],
)
def test_a_tampered_archive_is_refused_and_nothing_is_written(tmp_path: Path, change, message: str) -> None:  # type: ignore[no-untyped-def]
    fake_version(tmp_path / "a")
    good = tmp_path / "good.wanwu"
    export_version(tmp_path / "a", "plants@1", good)
    bad = _rewrite(good, tmp_path / "bad.wanwu", change)
    with pytest.raises((ArchiveError, InvalidNameError), match=message):
        import_archive(tmp_path / "b", bad)
    assert versions(tmp_path / "b") == []
    assert list(Layout(tmp_path / "b").trained.iterdir()) == []
    assert not (tmp_path / "escape").exists()


def test_an_archive_conflicting_with_a_stored_version_is_refused(tmp_path: Path) -> None:
    fake_version(tmp_path / "a")
    fake_version(tmp_path / "b", payload=b"different")
    export_version(tmp_path / "a", "plants@1", tmp_path / "x.wanwu")
    with pytest.raises(ArchiveError, match="already in the store with other weights"):
        import_archive(tmp_path / "b", tmp_path / "x.wanwu")


def test_a_version_whose_preprocessing_this_wanwu_does_not_know_is_refused(tmp_path: Path) -> None:
    """A newer wanwu's version (a preprocessing key unknown here) is refused at import and at load: served without
    it, the model would get other pixels than it was trained on."""
    from wanwu.errors import WanwuError
    from wanwu.loader import ModelRequest, open_source
    from wanwu.trained.source import preprocessing_from

    assert preprocessing_from(PREPROCESSING).pad is True
    assert preprocessing_from({k: v for k, v in PREPROCESSING.items() if k != "pad"}).pad is False  # before --crop pad
    newer = {**PREPROCESSING, "gamma": 2.2}
    fake_version(tmp_path / "a", preprocessing=newer)
    export_version(tmp_path / "a", "plants@1", tmp_path / "x.wanwu")
    with pytest.raises(ArchiveError, match="'gamma', unknown to this wanwu"):
        import_archive(tmp_path / "b", tmp_path / "x.wanwu")
    assert versions(tmp_path / "b") == []
    with pytest.raises(WanwuError, match="plants@1: its preprocessing has 'gamma', unknown to this wanwu"):
        open_source(ModelRequest("plants@1", home=tmp_path / "a"))


def test_not_an_archive(tmp_path: Path) -> None:
    (tmp_path / "x.wanwu").write_bytes(b"hello")
    with pytest.raises(ArchiveError, match="not a readable model archive"):
        import_archive(tmp_path / "home", tmp_path / "x.wanwu")
