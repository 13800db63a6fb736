"""The Python API: ``from wanwu import Classifier`` takes a path, bytes, a PIL image or an array, and answers like the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from wanwu import Classifier, Prediction
from wanwu.cli import main


@pytest.fixture(scope="module")
def classifier(shared_home: Path) -> Classifier:
    return Classifier.load("efficientnet_lite0", engine="onnxruntime", home=shared_home, threads=2)


def test_importing_wanwu_loads_nothing_heavy() -> None:
    code = "import sys, wanwu; print(wanwu.__version__, 'numpy' in sys.modules, 'PIL' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[1:] == ["False", "False"]


def test_every_kind_of_input_gives_the_same_answer(classifier: Classifier, examples_dir: Path) -> None:
    path = examples_dir / "chelsea.jpg"
    upright = ImageOps.exif_transpose(Image.open(path)).convert("RGB")
    answers = [
        classifier.predict(path, top_k=3),
        classifier.predict(str(path), top_k=3),
        classifier.predict(path.read_bytes(), top_k=3),
        classifier.predict(upright, top_k=3),
        classifier.predict(np.asarray(upright), top_k=3),
    ]
    first = answers[0]
    assert len(first) == 3 and all(isinstance(p, Prediction) for p in first)
    assert first[0].label in {"Egyptian cat", "tiger cat", "tabby"} and first[0].label_zh
    for other in answers[1:]:
        assert [p.index for p in other] == [p.index for p in first]
        assert np.allclose([p.score for p in other], [p.score for p in first], atol=1e-6)


def test_results_are_the_cli_json(classifier: Classifier, examples_dir: Path, shared_home: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = examples_dir / "coffee.jpg"
    assert main(["--home", str(shared_home), "predict", "--json", "--engine", "onnxruntime", "--threads", "2",
                 "--model", "efficientnet_lite0", str(path)]) == 0
    record = json.loads(capsys.readouterr().out)
    assert [p.as_dict() for p in classifier.predict(path)] == record["predictions"]


def test_min_score_and_batches(classifier: Classifier, examples_dir: Path) -> None:
    photos = [examples_dir / name for name in ("chelsea.jpg", "coffee.jpg", "rocket.jpg")]
    many = classifier.predict_many(photos, top_k=5, batch_size=2)
    assert [[p.index for p in ps] for ps in many] == [[p.index for p in classifier.predict(x)] for x in photos]
    confident = classifier.predict(photos[0], top_k=5, min_score=0.2)
    assert all(p.score >= 0.2 for p in confident) and 0 < len(confident) < 5  # the cat: two of its five are above 20 %


def test_a_bad_input_is_a_clear_error(classifier: Classifier, tmp_path: Path) -> None:
    from wanwu.errors import UnsupportedImageError

    with pytest.raises(UnsupportedImageError, match="not an image"):
        classifier.predict(b"hello")
    with pytest.raises(FileNotFoundError):
        classifier.predict(tmp_path / "missing.jpg")
