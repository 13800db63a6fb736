"""The container's size budget without buildah: deploy/site_budget.py builds the runtime venv from
constraints/runtime-onnxruntime.txt + the wanwu wheel, the model bundle, slims the venv as the image build does
(serving from it once), and fails over 180 MB of project layers or over 298 MB for the whole image (base
python:3.11-slim, ~130 MB, + project layers). A new dependency that breaks either budget fails here.

~1 minute with a warm pip cache (PyPI on a cold one); needs the development venv's `wanwu` (PyTorch) for the export.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import missing

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_default_image_project_layers_fit_the_budget() -> None:
    if shutil.which("wanwu", path=str(Path(sys.executable).parent)) is None:
        missing(f"no `wanwu` next to {sys.executable} (`make setup` installs it)")
    if shutil.which("sh") is None:
        missing("no POSIX sh for deploy/slim-venv.sh")
    env = {k: v for k, v in os.environ.items() if k != "XDG_CACHE_HOME"}  # pip's own cache, not the test's empty one
    done = subprocess.run([sys.executable, str(REPO / "deploy" / "site_budget.py"), "--json", "--engine", "onnxruntime"],
                          capture_output=True, text=True, timeout=420, env=env)
    report = done.stdout
    assert done.stdout.strip(), f"site_budget.py printed nothing (exit {done.returncode}):\n{done.stderr[-4000:]}"
    numbers = json.loads(report.strip().splitlines()[-1])
    largest = dict(numbers["largest"])
    assert {"onnxruntime", "numpy", "wanwu"} <= set(largest), report  # the table names the distributions
    assert "torch" not in largest and "pip" not in largest, report  # never in the image
    assert 10 < numbers["bundle_mb"] < 30, report  # the fp32 EfficientNet-Lite0 ONNX, without the engine's cache
    assert largest["onnxruntime"] < 45, report  # the Python binding only: no C API library (34.8 MB), no tools
    assert numbers["image_mb"] == round(numbers["base_mb"] + numbers["total_mb"], 1), report
    assert numbers["image_mb"] <= numbers["image_budget_mb"] == 298, f"whole image over 298 MB:\n{report}"
    assert numbers["ok"] and done.returncode == 0, f"over the container budget:\n{report}"


def _site_budget():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("site_budget", REPO / "deploy" / "site_budget.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("venv_mb", "base_mb", "exit_code"), [
    (150.0, 130.0, 0),   # 280 MB in all: both budgets kept
    (170.0, 130.0, 1),   # project layers fit 180 MB, but the whole image is 300 MB > 298
    (150.0, 150.0, 1),   # a bigger base alone breaks the whole-image budget
    (185.0, 100.0, 1),   # the whole image fits 298 MB, the project layers are over 180
])
def test_both_budgets_decide_the_exit_code(venv_mb: float, base_mb: float, exit_code: int, capsys) -> None:  # type: ignore[no-untyped-def]
    budget = _site_budget()
    args = argparse.Namespace(engine="onnxruntime", model="m", budget_mb=180.0, base_mb=base_mb, image_budget_mb=298.0,
                              top=2, json=True)
    code = budget.report(args, [("numpy", 48_000_000), ("onnxruntime", 37_000_000)], int(venv_mb * 1e6) - 10_000_000, 10_000_000)
    numbers = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == exit_code and numbers["ok"] is (exit_code == 0)
    assert numbers["image_mb"] == round(base_mb + venv_mb, 1)
