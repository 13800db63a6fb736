"""The store package: the home folder, its layout, atomic writes of files and folders, and the one clean-up rule."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tests.helpers import age, dead_pid
from wanwu.store import (
    STALE_AFTER_S,
    Layout,
    atomic_file,
    atomic_folder,
    install,
    new_partial,
    remove_folder,
    remove_stale,
    wanwu_home,
    write_file,
)
from wanwu.store.atomic import partial_path, writer_pid


def test_home_is_wanwu_home_then_xdg_cache_then_dot_cache(tmp_path: Path) -> None:
    assert wanwu_home({"WANWU_HOME": str(tmp_path / "h"), "XDG_CACHE_HOME": "/x"}) == tmp_path / "h"
    assert wanwu_home({"WANWU_HOME": "~/store"}) == Path.home() / "store"
    assert wanwu_home({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "wanwu"
    assert wanwu_home({"WANWU_HOME": "", "XDG_CACHE_HOME": ""}) == Path.home() / ".cache" / "wanwu"


def test_layout_keeps_the_names_existing_stores_have(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    sha = "ab" * 32
    assert layout.weights == tmp_path / "weights"
    assert layout.weights_file("resnet18-f37072fd.pth") == tmp_path / "weights" / "resnet18-f37072fd.pth"
    assert layout.bundle("resnet18", sha) == tmp_path / "compiled" / f"resnet18-{'ab' * 8}"
    assert Layout.of_bundle(layout.bundle("resnet18", sha)) == layout
    assert layout.version("plants", 3) == tmp_path / "trained" / "plants@3"
    assert layout.embedding_cache("resnet18", sha, "0123abcd-pyramid") == tmp_path / "embeddings" / f"resnet18-{'ab' * 8}-0123abcd-pyramid"


def test_layout_lists_a_models_bundles_only(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    assert layout.bundles("resnet18") == []  # no store yet
    mine = [layout.bundle("resnet18", "1" * 64), layout.bundle("resnet18", "2" * 64)]
    for folder in [*mine, layout.bundle("resnet50", "3" * 64)]:
        folder.mkdir(parents=True)
    (layout.compiled / "resnet18-file").write_text("not a bundle")
    assert layout.bundles("resnet18") == mine


def test_atomic_file_replaces_whole_and_is_readable_by_others(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "manifest.json"
    write_file(target, "old")
    write_file(target, "新しい", durable=True)
    assert target.read_text() == "新しい"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert sorted(p.name for p in target.parent.iterdir()) == ["manifest.json"]


def test_a_users_own_file_gets_the_umask_and_nothing_beside_it_is_touched(tmp_path: Path) -> None:
    left = tmp_path / f".tags.jsonl.part-{dead_pid()}-0a1b2c3d"
    left.write_text("someone's")
    age(left, STALE_AFTER_S + 60)
    old = os.umask(0o077)
    try:
        write_file(tmp_path / "tags.jsonl", "{}\n", durable=True, in_store=False)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "tags.jsonl").stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([left.name, "tags.jsonl"])


def test_atomic_file_leaves_nothing_on_an_exception(tmp_path: Path) -> None:
    target = tmp_path / "model.onnx"
    target.write_bytes(b"whole")
    with pytest.raises(RuntimeError), atomic_file(target) as tmp:
        tmp.write_bytes(b"half")
        assert tmp.parent == tmp_path and tmp.name.startswith(".model.onnx.part-") and writer_pid(tmp.name) == os.getpid()
        raise RuntimeError("disk full")
    assert target.read_bytes() == b"whole"
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


def test_atomic_folder_appears_whole_or_not_at_all(tmp_path: Path) -> None:
    folder = tmp_path / "int8-abc"

    def half(tmp: Path) -> None:
        (tmp / "model.xml").write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_folder(folder, half)
    assert list(tmp_path.iterdir()) == []
    assert atomic_folder(folder, lambda tmp: (tmp / "report.json").write_text("{}"))
    assert [p.name for p in folder.iterdir()] == ["report.json"]
    # another writer finished it first: theirs is kept, ours is dropped
    assert not atomic_folder(folder, lambda tmp: (tmp / "other.json").write_text("{}"))
    assert [p.name for p in folder.iterdir()] == ["report.json"] and [p.name for p in tmp_path.iterdir()] == ["int8-abc"]


def test_install_and_remove_folder(tmp_path: Path) -> None:
    first, second = new_partial(tmp_path / "v"), new_partial(tmp_path / "v")
    (first / "a").write_text("1")
    (second / "b").write_text("2")
    assert install(first, tmp_path / "v@1") and not install(second, tmp_path / "v@1")
    assert second.is_dir() and (tmp_path / "v@1" / "a").is_file()
    remove_folder(tmp_path / "v@1")
    assert not (tmp_path / "v@1").exists() and [p.name for p in tmp_path.iterdir()] == [second.name]


def test_the_clean_up_rule(tmp_path: Path) -> None:
    """Dead here and untouched for STALE_AFTER_S: removed; young (a writer on another machine), alive, or ours: kept."""
    dead, alive = dead_pid(), os.getppid()
    stale = tmp_path / f".int8-a.part-{dead}-0a0a0a0a"
    stale_file = tmp_path / f".model.onnx.part-{dead}-0b0b0b0b"
    young = tmp_path / f".int8-b.part-{dead}-0c0c0c0c"
    running = tmp_path / f".int8-c.part-{alive}-0d0d0d0d"
    own = partial_path(tmp_path / "int8-d")
    before = [tmp_path / f"int8-e.part-{dead}", tmp_path / f".partial-{dead}-1234abcd", tmp_path / ".removing-x@1-5678abcd"]
    finished = tmp_path / "int8-a"
    for folder in (stale, young, running, own, finished, *before):
        (folder / "sub").mkdir(parents=True)
    stale_file.write_bytes(b"half")
    for path in (stale, stale_file, running, own, finished, *before):
        age(path, STALE_AFTER_S + 60)
    assert sorted(remove_stale(tmp_path)) == sorted([stale, stale_file, *before])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in (young, running, own, finished))
    assert remove_stale(tmp_path / "missing") == []


def test_partial_names() -> None:
    assert writer_pid(".manifest.json.part-123-0a1b2c3d") == 123
    assert writer_pid("int8-abc.part-45") == 45  # precision's partials before
    assert writer_pid(".partial-67-0a1b2c3d") == 67  # trained's partials before
    assert writer_pid(".removing-plants@1-0a1b2c3d") == 0  # names no writer
    assert writer_pid("int8-abc") is None and writer_pid("plants@1") is None and writer_pid("shard-0a1b.npz") is None
