"""`wanwu bench`: one small engine-timing command, on the pixels of given images or random ones, naming the CPU."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import encode, gradient_image


def _bench(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "wanwu.cli", "--home", str(home), "bench", "--model", "efficientnet_lite0", *args],
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_json_rows_on_given_images_record_the_cpu(shared_home: Path, tmp_path: Path) -> None:
    for i in range(3):
        (tmp_path / f"{i}.jpg").write_bytes(encode(gradient_image(320 + 40 * i, 240), "JPEG"))
    (tmp_path / "notes.txt").write_text("not an image, and not taken for one")
    proc = _bench(shared_home, "--engine", "onnxruntime", "--precision", "fp32", "--batch-size", "2", "--runs", "2",
                  "--images", str(tmp_path), "--json")
    assert proc.returncode == 0, proc.stderr
    (row,) = [json.loads(line) for line in proc.stdout.splitlines()]
    assert (row["engine"], row["precision"], row["batch"], row["runs"]) == ("onnxruntime", "fp32", 2, 2)
    assert row["images"] == f"3 images of {tmp_path}" and row["ms_per_image"] > 0
    assert row["cpu"]["model"] and row["cpu"]["cores"] >= 1 and isinstance(row["cpu"]["flags"], list)


@pytest.mark.slow
def test_table_title_names_the_cpu(shared_home: Path) -> None:
    proc = _bench(shared_home, "--engine", "onnxruntime", "--precision", "fp32", "--batch-size", "1", "--runs", "1")
    assert proc.returncode == 0, proc.stderr
    assert "on random pixels" in proc.stdout and "CPU: " in proc.stdout and " cores" in proc.stdout


def test_a_folder_without_images_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    for folder, reason in (("nowhere", "does not exist"), ("empty", "no images")):
        proc = _bench(tmp_path, "--engine", "onnxruntime", "--images", str(tmp_path / folder))
        assert proc.returncode == 1 and reason in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
