"""The engine benchmark times the pixels the service sends, a new batch of them each run, and says what it skipped."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.helpers import FakeEngine, encode, gradient_image
from wanwu import benchmark
from wanwu.errors import EngineUnavailableError, ImageError
from wanwu.models import get_model_spec
from wanwu.preprocess import preprocess_pixels

PRE = get_model_spec("efficientnet_lite0").preprocessing


def _numbered(count: int) -> np.ndarray:
    """Images whose every pixel is their index, so a batch tells which images it holds."""
    return np.repeat(np.arange(count, dtype=np.uint8), 2 * 2 * 3).reshape(count, 2, 2, 3)


def test_each_run_takes_the_next_batch_of_images() -> None:
    seen: list[list[int]] = []
    row = benchmark.time_engine(lambda batch: seen.append(batch[:, 0, 0, 0].tolist()), _numbered(7), warmup=1, runs=3, batch=3)
    assert seen == [[0, 1, 2], [3, 4, 5], [0, 1, 2], [3, 4, 5]]  # a short last batch is never timed
    assert row["batch"] == 3 and row["runs"] == 3 and row["ms_per_image"] == pytest.approx(row["ms_per_batch"] / 3)


def test_fewer_images_than_a_batch_are_repeated_to_fill_it() -> None:
    seen: list[list[int]] = []
    benchmark.time_engine(lambda batch: seen.append(batch[:, 0, 0, 0].tolist()), _numbered(3), batch=8, warmup=0, runs=1)
    assert seen == [[0, 1, 2, 0, 1, 2, 0, 1]]


def test_pixel_inputs_are_the_crops_the_service_sends(tmp_path: Path) -> None:
    paths = []
    for i, size in enumerate([(640, 480), (300, 500)]):
        paths.append(tmp_path / f"{i}.jpg")
        paths[-1].write_bytes(encode(gradient_image(*size), "JPEG"))
    pixels = benchmark.pixel_inputs(PRE, paths)
    assert pixels.dtype == np.uint8 and pixels.shape == (2, PRE.crop_size, PRE.crop_size, 3)
    assert np.array_equal(pixels[1], preprocess_pixels(paths[1].read_bytes(), PRE))
    random = benchmark.pixel_inputs(PRE, count=5)
    assert random.shape == (5, PRE.crop_size, PRE.crop_size, 3) and random.dtype == np.uint8 and random.std() > 50


def test_a_broken_image_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "notes.jpg"
    bad.write_text("not an image")
    with pytest.raises(ImageError, match="notes.jpg: "):
        benchmark.pixel_inputs(PRE, [bad])


class _Guarded(FakeEngine):
    """A fake guarded bf16 engine: re-runs the first image of every batch "in fp32"."""

    precision = "bf16"

    def __init__(self) -> None:
        super().__init__()
        self.images = self.rechecked = 0

    def run(self, batch: np.ndarray) -> np.ndarray:
        self.images, self.rechecked = self.images + len(batch), self.rechecked + 1
        return super().run(batch)

    def describe(self) -> dict:
        return super().describe() | {"bf16_guard": {"margin": 0.1, "images": self.images, "rechecked_in_fp32": self.rechecked}}


def _opener(opened: list[tuple[str, str, bool]], guard_calibrated: bool = True):  # type: ignore[no-untyped-def]
    """Opens FakeEngines, a _Guarded one for guarded bf16 where calibrated; refuses int8, as a store without an artifact does."""

    def open_engine(name: str, precision: str, guard: bool) -> FakeEngine:
        if precision == "int8":
            raise EngineUnavailableError("no INT8 model yet")
        opened.append((name, precision, guard))
        return _Guarded() if guard and guard_calibrated else FakeEngine()

    return open_engine


def test_time_engines_gives_a_row_per_engine_precision_and_batch() -> None:
    opened: list = []
    skipped: list[str] = []
    rows = list(benchmark.time_engines(_opener(opened), [("onnxruntime", "fp32"), ("openvino", "int8")], [1, 4],
                                       _numbered(8), runs=2, warmup=0, skip=skipped.append))
    assert [(r["engine"], r["precision"], r["batch"], r["threads"], r["runs"]) for r in rows] == [
        ("onnxruntime", "fp32", 1, 1, 2), ("onnxruntime", "fp32", 4, 1, 2)]
    assert opened == [("onnxruntime", "fp32", False)]  # unguarded unless asked
    assert skipped == ["skipping openvino/int8: no INT8 model yet"]
    with pytest.raises(EngineUnavailableError):  # asked for by name, without skip: the reason, not a silent gap
        list(benchmark.time_engines(_opener([]), [("openvino", "int8")], [1], _numbered(1), runs=1))


def test_guarded_bf16_is_timed_too_with_its_re_run_share() -> None:
    rows = list(benchmark.time_engines(_opener([]), [("openvino", "bf16")], [4], _numbered(8), runs=3, warmup=1, guarded=True))
    assert [r["precision"] for r in rows] == ["bf16", "bf16+guard"]
    assert "rechecked_fraction" not in rows[0]
    assert rows[1]["rechecked_fraction"] == pytest.approx(1 / 4)  # one re-run in every batch of 4 (warm-up and timed runs alike)


def test_no_guard_row_where_the_model_has_no_guard_calibration() -> None:
    opened: list = []
    rows = list(benchmark.time_engines(_opener(opened, guard_calibrated=False), [("openvino", "bf16")], [1], _numbered(2),
                                       runs=1, warmup=0, guarded=True))
    assert [r["precision"] for r in rows] == ["bf16"] and opened == [("openvino", "bf16", False), ("openvino", "bf16", True)]
