"""The container's size budget without buildah: deploy/site_budget.py builds the runtime venv from
constraints/runtime-onnxruntime.txt + the wanwu wheel, the model bundle, slims the venv as the image build does
(serving from it once), and fails over 180 MB of project layers. A new dependency that breaks the budget fails here.

~1 minute with a warm pip cache (PyPI on a cold one); needs the development venv's `wanwu` (PyTorch) for the export.
"""

from __future__ import annotations

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
    assert numbers["ok"] and done.returncode == 0, f"over the container budget:\n{report}"
