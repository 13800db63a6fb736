"""An INT8 artifact takes the project's labelled measurement only when its files are the very ones measured."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from wanwu.precision import validated
from wanwu.precision.auto import TARGET_AGREEMENT
from wanwu.precision.validated import VALIDATED, files_digest, validated_report


def _files(folder: Path, xml: bytes, weights: bytes) -> list[Path]:
    folder.mkdir()
    (folder / "model.xml").write_bytes(xml)
    (folder / "model.bin").write_bytes(weights)
    return [folder / "model.xml", folder / "model.bin"]


@pytest.fixture()
def measured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    files = _files(tmp_path / "measured", b"<net/>", bytes(range(256)) * 64)
    entry = replace(VALIDATED[0], files_sha256=files_digest(files))
    monkeypatch.setattr(validated, "VALIDATED", (entry,))
    return files


def test_the_measured_files_get_the_labelled_figures(measured: list[Path], tmp_path: Path) -> None:
    copy = _files(tmp_path / "rebuilt", measured[0].read_bytes(), measured[1].read_bytes())  # another store, same bytes
    report = validated_report("efficientnet_lite0", copy)
    assert report is not None and report["folder"] == "validated: " + VALIDATED[0].dataset
    assert (report["images"], report["top1_agreement"], report["top1_int8"], report["top1_fp32"]) == (100, 0.98, 0.90, 0.89)
    assert files_digest(copy)[:12] in report["note"]


def test_one_changed_byte_or_another_model_keeps_the_views_figure(measured: list[Path], tmp_path: Path) -> None:
    weights = bytearray(measured[1].read_bytes())
    weights[1000] ^= 1  # e.g. another CPU's rounding in bias correction
    assert validated_report("efficientnet_lite0", _files(tmp_path / "other", measured[0].read_bytes(), bytes(weights))) is None
    assert validated_report("shop", measured) is None
    swapped = [measured[1], measured[0]]  # the digest covers names and order too
    assert validated_report("efficientnet_lite0", swapped) is None


def test_every_recorded_model_meets_the_target_it_is_used_for() -> None:
    for entry in VALIDATED:
        assert len(entry.files_sha256) == 64 and int(entry.files_sha256, 16) >= 0
        assert entry.top1_agreement >= TARGET_AGREEMENT and round(abs(entry.top1_int8 - entry.top1_fp32), 6) <= 0.01
