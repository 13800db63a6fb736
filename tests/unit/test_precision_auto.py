"""``--precision auto``: picks the fastest ready precision, never one slower than fp32, and remembers it per CPU kind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wanwu.models import get_model_spec
from wanwu.precision import auto
from wanwu.precision.auto import choose_precision, pick
from wanwu.sources import ModelSource


def _source(tmp_path: Path) -> ModelSource:
    return ModelSource(get_model_spec("efficientnet_lite0"), "a" * 64, tmp_path / "bundle")


def _artifact(bundle: Path, name: str, agreement: float, **calibration: object) -> None:
    folder = bundle / name
    folder.mkdir(parents=True)
    (folder / "report.json").write_text(json.dumps({"top1_agreement": agreement}))
    (folder / "calibration.json").write_text(json.dumps({"created": 1, **calibration}))
    for model_file in ("model.xml", "model.bin"):
        (folder / model_file).write_text("")


def test_bf16_must_be_ten_percent_faster_and_int8_wins_when_fastest() -> None:
    assert pick({"fp32": 10.0, "bf16": 9.5})[0] == "fp32"  # 1.05×: not worth the guard
    assert pick({"fp32": 10.0, "bf16": 8.0})[0] == "bf16"
    assert pick({"fp32": 10.0, "bf16": 8.0, "int8": 3.0}) == ("int8", "int8 runs 3.33× fp32's speed on this CPU")
    assert pick({"fp32": 10.0, "bf16": 18.0, "int8": 11.0})[0] == "fp32"  # never slower than fp32 (Xeon without AMX)
    assert pick({"fp32": 10.0})[1] == "the only ready precision"


def test_only_precisions_with_a_stored_agreement_are_timed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auto, "_cpu_has_bf16", lambda engine: True)
    source = _source(tmp_path)
    _artifact(source.bundle, "int8-good", 0.985)
    _artifact(source.bundle, "bf16-guard-low", 0.95, margin=0.1)
    timed: list[str] = []

    def measure(precision: str) -> float:
        timed.append(precision)
        return {"fp32": 12.0, "int8": 3.0}[precision]

    choice = choose_precision("openvino", source, threads=2, batch=8, measure=measure)
    assert (choice.precision, sorted(timed), choice.cached) == ("int8", ["fp32", "int8"], False)
    assert "below 98%" in choice.skipped["bf16"] and choice.agreement == {"fp32": 1.0, "int8": 0.985}
    again = choose_precision("openvino", source, threads=2, batch=8, measure=lambda p: pytest.fail("timed again"))
    assert again.cached and again.precision == "int8" and again.ms_per_image == {"fp32": 12.0, "int8": 3.0}
    # another batch size (or CPU kind, engine version, threads) is another decision
    assert choose_precision("openvino", source, threads=2, batch=1, measure=lambda p: {"fp32": 5.0, "int8": 6.0}[p]).precision == "fp32"


def test_a_model_with_nothing_but_fp32_is_not_timed(tmp_path: Path) -> None:
    choice = choose_precision("onnxruntime", _source(tmp_path), threads=1, batch=8, measure=lambda p: pytest.fail("timed"))
    assert choice.precision == "fp32" and choice.reason == "the only ready precision"
    assert "onnxruntime does not run it" in choice.skipped["int8"]
    assert not (tmp_path / "bundle" / auto.CHOICES_FILE).exists()
