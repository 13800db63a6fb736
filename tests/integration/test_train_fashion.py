"""CI end to end on a small Fashion-MNIST subset: `wanwu train` -> `wanwu predict` -> `wanwu eval` -> `wanwu serve`.

Data: Debian's dataset-fashion-mnist (``/usr/share/datasets/fashion-mnist``; .ci/run installs it).
Missing data skips locally and fails under CI=true.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests import fashion
from tests.service.conftest import free_port, wait_until_ready

pytestmark = pytest.mark.slow
PER_CLASS_TRAIN, PER_CLASS_TEST = 30, 10


@pytest.fixture(scope="module")
def subsets(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if not fashion.available():
        message = f"Fashion-MNIST not found at {fashion.FASHION_DIR} (apt-get install dataset-fashion-mnist)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    root = tmp_path_factory.mktemp("fashion")
    images, labels = fashion.load("train")
    fashion.write_imagefolder(root / "train", images, labels, fashion.pick(labels, PER_CLASS_TRAIN, seed=0))
    test_images, test_labels = fashion.load("test")
    fashion.write_imagefolder(root / "test", test_images, test_labels, fashion.pick(test_labels, PER_CLASS_TEST, seed=0))
    return root / "train", root / "test"


def _wanwu(home: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "wanwu.cli", "--home", str(home), *args],
                          capture_output=True, text=True, timeout=timeout)


def test_train_predict_eval_serve(subsets: tuple[Path, Path], tmp_path: Path) -> None:
    train_dir, test_dir = subsets
    home = tmp_path / "home"
    trained = _wanwu(home, "train", str(train_dir), "--name", "fashion", "--augment", "none", "--json")
    assert trained.returncode == 0, trained.stderr
    summary = json.loads(trained.stdout)
    assert summary["model"] == "fashion@1" and summary["metrics"]["images"] == 10 * round(PER_CLASS_TRAIN * 0.2)
    assert summary["metrics"]["top1"] > 0.5 and summary["metrics"]["top5"] > 0.8 and summary["unknown"]["threshold"] > 0
    assert Path(summary["report"]).is_file()

    shirt = sorted((test_dir / "Shirt|衬衫").glob("*.png"))[0]
    predicted = _wanwu(home, "predict", "--json", "--model", "fashion", "--top-k", "3", str(shirt))
    assert predicted.returncode == 0, predicted.stderr
    record = json.loads(predicted.stdout)
    assert record["model"] == "fashion@1" and len(record["predictions"]) == 3 and "unknown" in record
    labels = {(c, z) for c, z in (name.split("|") for name in fashion.CLASSES)}
    assert all((p["label"], p["label_zh"]) in labels for p in record["predictions"])

    evaluated = _wanwu(home, "eval", "--json", "--model", "fashion@1", str(test_dir))
    assert evaluated.returncode == 0, evaluated.stderr
    result = json.loads(evaluated.stdout)
    assert result["images"] == 10 * PER_CLASS_TEST and result["top1"] > 0.6  # chance is 0.1

    _serve_and_classify(home, test_dir)


def _serve_and_classify(home: Path, test_dir: Path) -> None:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "wanwu.cli", "--home", str(home), "serve", "--model", "fashion@1", "--port", str(port),
         "--threads", "2"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(base, lambda: server.poll() is None, timeout=120)
        bag = sorted((test_dir / "Bag|包").glob("*.png"))[:3]
        files = [("image", (p.name, p.read_bytes(), "image/png")) for p in bag]
        response = httpx.post(f"{base}/v1/classify", files=files, timeout=60)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["model"] == "fashion@1" and len(body["results"]) == 3
        for result in body["results"]:
            assert isinstance(result["unknown"], bool)
            assert {p["index"] for p in result["predictions"]} <= set(range(10))
        assert sum(r["predictions"][0]["label"] == "Bag" for r in body["results"]) >= 2
        bad = httpx.post(f"{base}/v1/classify", files={"image": ("x.png", b"not an image", "image/png")}, timeout=30)
        assert bad.status_code == 415 and bad.json()["error"]["code"] == "unsupported_media_type"
    finally:
        server.send_signal(signal.SIGTERM)
        out, _ = server.communicate(timeout=30)
    assert server.returncode == 0, out
