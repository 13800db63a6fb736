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


def test_a_list_is_classified_as_a_batch(classifier: Classifier, examples_dir: Path) -> None:
    photos = [examples_dir / "chelsea.jpg", str(examples_dir / "coffee.jpg"), (examples_dir / "rocket.jpg").read_bytes()]
    answers = classifier.predict(photos, top_k=2)
    assert len(answers) == 3 and all(len(a) == 2 and isinstance(a[0], Prediction) for a in answers)
    assert [a[0].index for a in answers] == [classifier.predict(p, top_k=1)[0].index for p in photos]
    assert classifier.predict(tuple(photos[:1]), top_k=1)[0][0].index == answers[0][0].index


@pytest.mark.parametrize(("image", "refusal"), [
    (np.zeros((32, 32, 3), np.float32), "cannot classify a float32 array: .*uint8 .*astype\\(np.uint8\\)"),
    (np.zeros((2, 32, 32, 3), np.uint8), "cannot classify an array of shape \\(2, 32, 32, 3\\)"),
    (np.zeros((32, 32, 5), np.uint8), "cannot classify an array of shape \\(32, 32, 5\\)"),
    (42, "cannot classify a int: pass a file path, the file's bytes, a PIL image"),
    ({"image": "x.jpg"}, "cannot classify a dict"),
])
def test_what_is_refused_is_explained(classifier: Classifier, image: object, refusal: str) -> None:
    with pytest.raises(TypeError, match=refusal):
        classifier.predict(image)  # type: ignore[arg-type]


def test_the_classifier_says_what_runs(classifier: Classifier) -> None:
    text = repr(classifier)
    assert text.startswith("<Classifier efficientnet_lite0 (weights ") and "on onnxruntime, fp32" in text
    assert "2 threads" in text and "object at 0x" not in text


UNGUARDED_SCRIPT = """
import json, sys
import wanwu

summary = wanwu.tag([sys.argv[1]], sys.argv[2], home=sys.argv[3], engine="onnxruntime")
print(json.dumps({"tagged": summary.tagged, "failed": summary.failed, "decode": summary.settings["decode_workers"]}))
"""


def test_tag_works_from_a_plain_script_without_a_main_guard(tmp_path: Path, examples_dir: Path, shared_home: Path) -> None:
    """A spawned decode process would import the script again and start the run once more in every worker."""
    script = tmp_path / "tag_my_photos.py"
    script.write_text(UNGUARDED_SCRIPT)
    out = tmp_path / "tags.jsonl"
    proc = subprocess.run([sys.executable, str(script), str(examples_dir), str(out), str(shared_home)],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    photos = len(list(examples_dir.glob("*.jpg")))
    assert (result["tagged"], result["failed"]) == (photos, 0) and result["decode"].endswith("threads")
    assert len(out.read_text().splitlines()) == photos


def test_a_guarded_script_keeps_decode_processes(tmp_path: Path) -> None:
    from wanwu.tagging.mainguard import _inside_main_guard

    script = tmp_path / "s.py"
    script.write_text("import wanwu\nwanwu.tag([], 'x')\nif __name__ == '__main__':\n    wanwu.tag([], 'y')\n"
                      "if '__main__' == __name__:\n    pass\n")
    assert not _inside_main_guard(str(script), 2)
    assert _inside_main_guard(str(script), 4) and _inside_main_guard(str(script), 6)


def test_a_run_where_every_image_failed_is_an_error(tmp_path: Path, shared_home: Path) -> None:
    from wanwu.tagging import TagFailedError, tag

    lib = tmp_path / "lib"
    lib.mkdir()
    for name in ("a.jpg", "b.png"):
        (lib / name).write_bytes(b"not an image at all")
    with pytest.raises(TagFailedError, match="every one of the 2 images failed \\(2 "):
        tag([lib], tmp_path / "tags.jsonl", home=shared_home, engine="onnxruntime")
    assert len((tmp_path / "tags.jsonl").read_text().splitlines()) == 2  # the errors are recorded all the same


def test_a_package_main_keeps_decode_processes(tmp_path: Path) -> None:
    """`python -m wanwu.cli` (a package's __main__): multiprocessing does not import it again, so processes are safe."""
    code = ("import sys, types; from wanwu.tagging.mainguard import spawn_reruns_caller; "
            "m = sys.modules['__main__']; m.__file__ = 'x/__main__.py'; m.__spec__ = types.SimpleNamespace(name='pkg.__main__'); "
            "print(spawn_reruns_caller())")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"
