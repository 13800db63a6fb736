"""A store that cannot be written (read-only, full, not ours): one line naming --home / WANWU_HOME, nothing half-written."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from tests.helpers import age, dead_pid, require_module
from wanwu.errors import StoreError
from wanwu.precision.store import write_atomically
from wanwu.store import STALE_AFTER_S

FAULTS = [
    OSError(errno.EROFS, "Read-only file system"),
    OSError(errno.ENOSPC, "No space left on device"),
    PermissionError(errno.EACCES, "Permission denied"),
    RuntimeError("basic_ios::clear: iostream error"),  # OpenVINO's save_model on a full disk
]


@pytest.mark.parametrize("name", [".int8-old.part-{pid}-0a1b2c3d", "int8-old.part-{pid}"], ids=["now", "before"])
def test_the_next_write_cleans_what_a_killed_writer_left(tmp_path: Path, name: str) -> None:
    """Stale partials go, in today's naming and in the one stores written before it have."""
    left = tmp_path / name.format(pid=dead_pid())
    left.mkdir()
    (left / "model.xml").write_text("half")
    age(left, STALE_AFTER_S + 1)
    write_atomically(tmp_path / "int8-new", lambda tmp: (tmp / "report.json").write_text("{}"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["int8-new"]


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: type(f).__name__ + str(getattr(f, "errno", "")))
def test_a_failed_write_is_one_store_error_and_leaves_nothing(tmp_path: Path, fault: Exception) -> None:
    def write(tmp: Path) -> None:
        (tmp / "model.xml").write_text("half of it")
        raise fault

    folder = tmp_path / "int8-abc"
    with pytest.raises(StoreError) as caught:
        write_atomically(folder, write)
    message = str(caught.value)
    assert message.startswith(f"cannot write {folder}: ") and "--home / WANWU_HOME" in message
    assert "\n" not in message
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fault", FAULTS[:3], ids=lambda f: errno.errorcode[f.errno])
def test_export_into_an_unwritable_store_is_one_line_and_exit_1(tmp_path: Path, monkeypatch, capsys, fault: OSError) -> None:  # type: ignore[no-untyped-def]
    require_module("torch")
    from wanwu import cli

    def refuse(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise fault

    monkeypatch.setattr("wanwu.store.atomic._new_file", refuse)
    assert cli.main(["--home", str(tmp_path), "export", "efficientnet_lite0"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("wanwu: error: cannot write ") and fault.strerror in err and "WANWU_HOME" in err
    assert "Traceback" not in err and len(err.splitlines()) == 1
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]  # nothing half-written


def test_a_home_that_is_a_file_is_one_line(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    require_module("torch")
    from wanwu import cli

    home = tmp_path / "not-a-folder"
    home.write_text("")
    assert cli.main(["--home", str(home), "export", "efficientnet_lite0"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"wanwu: error: cannot write {home}/compiled/") and "Not a directory" in err and "WANWU_HOME" in err


def test_an_unwritable_weights_folder_is_a_store_error(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from wanwu.models import get_model_spec
    from wanwu.weights import download_weights

    def refuse(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr("wanwu.store.atomic._new_file", refuse)
    with pytest.raises(StoreError, match=r"cannot write .*/weights: Read-only file system\. The store is --home / WANWU_HOME"):
        download_weights(get_model_spec("resnet18"), tmp_path, url="http://127.0.0.1:9/none")


def test_onnxruntime_cache_on_a_full_disk_leaves_no_part_file(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    ort_engine = require_module("wanwu.engines.ort_engine")
    optimized = tmp_path / "model.opt.onnx"

    def full_disk(model, options, providers):  # type: ignore[no-untyped-def]
        Path(options.optimized_model_filepath).write_bytes(b"half")
        raise RuntimeError("[ONNXRuntimeError] : 7 : INVALID_PROTOBUF : Protobuf serialization failed.")

    monkeypatch.setattr(ort_engine.ort, "InferenceSession", full_disk)
    with pytest.raises(OSError, match="could not write"):
        ort_engine._save_portable_optimized(tmp_path / "model.onnx", optimized)
    assert list(tmp_path.iterdir()) == []


def test_os_errors_reaching_the_cli_are_one_line(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from wanwu import cli

    err = OSError(errno.EROFS, "Read-only file system", str(tmp_path / "compiled" / "x"))
    assert cli._os_error_line(err, tmp_path) == f"Read-only file system: {tmp_path}/compiled/x (the store: --home / WANWU_HOME)"
    elsewhere = OSError(errno.ENOENT, "No such file or directory", "/nowhere/photo.jpg")
    assert cli._os_error_line(elsewhere, tmp_path) == "No such file or directory: /nowhere/photo.jpg"
