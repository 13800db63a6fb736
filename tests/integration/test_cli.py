"""The `wanwu` command line: JSON contracts, exit codes, per-image errors, eval and models."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from wanwu.cli import main

PREDICTION_KEYS = {"index", "label", "label_zh", "score"}


def _run(args: list[str], home: Path) -> subprocess.CompletedProcess[str]:
    """The installed console script in a subprocess, as a user or another tool runs it."""
    return subprocess.run(
        [sys.executable, "-m", "wanwu.cli", "--home", str(home), *args], capture_output=True, text=True, timeout=300
    )


def test_predict_json_contract_on_real_photos(examples_dir: Path, shared_home: Path) -> None:
    photos = sorted(examples_dir.glob("*.jpg"))
    proc = _run(["predict", "--json", "--top-k", "3", *map(str, photos)], shared_home)
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["path"] for r in records] == [str(p) for p in photos]
    for record in records:
        assert set(record) == {"path", "model", "weights_sha256", "summary", "unknown", "categories", "predictions"}
        assert record["model"] == "efficientnet_lite0" and len(record["weights_sha256"]) == 64
        cats = [c["score"] for c in record["categories"]]
        assert cats == sorted(cats, reverse=True) and all(c >= 0.05 for c in cats)
        assert all(set(c) == {"id", "label", "label_zh", "score", "parent"} for c in record["categories"])
        scores = [p["score"] for p in record["predictions"]]
        assert len(scores) == 3 and scores == sorted(scores, reverse=True) and 0 < sum(scores) <= 1
        assert all(set(p) == PREDICTION_KEYS for p in record["predictions"])
    by_name = {Path(r["path"]).stem: r["predictions"][0] for r in records}
    cat = next(r for r in records if Path(r["path"]).stem == "chelsea")
    assert cat["unknown"] is False and cat["summary"].startswith("猫 cat ") and "可能是" in cat["summary"]
    assert {"cat", "mammal", "animal"} <= {c["id"] for c in cat["categories"]}
    assert by_name["chelsea"]["label"] in {"Egyptian cat", "tiger cat", "tabby"}
    assert by_name["coffee"]["label"] in {"espresso", "cup", "coffee mug"}
    assert by_name["rocket"]["label"] in {"missile", "projectile", "space shuttle"}
    assert by_name["camera"]["label"] == "tripod"


def test_one_bad_image_is_reported_and_the_rest_still_run(examples_dir: Path, shared_home: Path, tmp_path: Path) -> None:
    bad = tmp_path / "notes.jpg"
    bad.write_text("this is not an image")
    good = examples_dir / "chelsea.jpg"
    proc = _run(["predict", "--json", str(bad), str(good), str(tmp_path / "missing.jpg")], shared_home)
    assert proc.returncode == 1
    first, second, third = (json.loads(line) for line in proc.stdout.splitlines())
    assert first["error"]["code"] == "unsupported_media_type" and "not an image" in first["error"]["message"]
    assert len(second["predictions"]) == 5
    assert third["error"]["code"] == "unreadable_file"


def test_predict_table_shows_chinese_and_english(examples_dir: Path, shared_home: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["--home", str(shared_home), "predict", str(examples_dir / "chelsea.jpg"), "--lang", "zh", "--top-k", "2"]) == 0
    out = capsys.readouterr().out
    assert "efficientnet_lite0" in out and any("\u4e00" <= ch <= "\u9fff" for ch in out)


def test_unknown_model_exits_non_zero_with_one_line(shared_home: Path, examples_dir: Path) -> None:
    proc = _run(["predict", "--model", "vgg99", str(examples_dir / "chelsea.jpg")], shared_home)
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith("wanwu: error: unknown model 'vgg99'; ImageNet models: efficientnet_lite0, efficientnet_lite2, resnet18; trained here")


def test_missing_resnet_weights_are_explained(shared_home: Path, examples_dir: Path) -> None:
    proc = _run(["predict", "--model", "resnet18", str(examples_dir / "chelsea.jpg")], shared_home)
    assert proc.returncode == 1
    assert "resnet18-f37072fd.pth" in proc.stderr and "wanwu fetch resnet18" in proc.stderr


def test_explicit_resnet18_weights_are_used_and_reported(resnet18_checkpoint: Path, shared_home: Path, examples_dir: Path) -> None:
    from wanwu.weights import sha256_file

    proc = _run(
        ["predict", "--json", "--model", "resnet18", "--weights", str(resnet18_checkpoint), str(examples_dir / "chelsea.jpg")],
        shared_home,
    )
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    assert (record["model"], record["weights_sha256"]) == ("resnet18", sha256_file(resnet18_checkpoint))


def test_models_lists_every_model_with_weights_status(shared_home: Path) -> None:
    proc = _run(["models", "--json"], shared_home)
    assert proc.returncode == 0
    rows = {row["model"]: row for row in map(json.loads, proc.stdout.splitlines())}
    assert (rows["resnet18"]["weights"], rows["resnet18"]["sha256"], rows["resnet18"]["top1"]) == ("missing", None, 69.758)
    lite = rows["efficientnet_lite0"]
    assert lite["weights"] == "package" and lite["sha256"].startswith("57934424")
    table = _run(["models"], shared_home)
    assert table.returncode == 0 and "resnet18" in table.stdout and "missing" in table.stdout


@pytest.mark.slow
def test_eval_json_contract(samples_dir: Path, shared_home: Path) -> None:
    proc = _run(["eval", str(samples_dir), "--model", "efficientnet_lite0", "--engine", "onnxruntime", "--json"], shared_home)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert set(result) >= {"model", "engine", "images", "top1", "top5", "images_per_s"}
    assert (result["model"], result["engine"], result["images"]) == ("efficientnet_lite0", "onnxruntime", 100)
    assert 0.85 <= result["top1"] <= result["top5"] <= 1.0 and result["images_per_s"] > 0


def test_predict_max_pixels_refuses_and_names_its_flag(examples_dir: Path, shared_home: Path) -> None:
    photo = str(examples_dir / "chelsea.jpg")
    proc = _run(["predict", photo, "--max-pixels", "2000"], shared_home)
    assert proc.returncode == 1
    assert "the limit is 2,000 (raise it with --max-pixels / WANWU_MAX_PIXELS)" in proc.stderr
    env = {**os.environ, "WANWU_MAX_PIXELS": "2000"}
    by_env = subprocess.run([sys.executable, "-m", "wanwu.cli", "predict", "--home", str(shared_home), "--json", photo],
                            capture_output=True, text=True, timeout=300, env=env)
    assert by_env.returncode == 1 and json.loads(by_env.stdout)["error"]["code"] == "too_many_pixels"
    assert _run(["predict", photo, "--max-pixels", "200000", "--json"], shared_home).returncode == 0


def test_predict_min_score_drops_low_predictions(examples_dir: Path, shared_home: Path) -> None:
    proc = _run(["predict", "--json", "--min-score", "0.2", str(examples_dir / "chelsea.jpg")], shared_home)
    assert proc.returncode == 0, proc.stderr
    scores = [p["score"] for p in json.loads(proc.stdout)["predictions"]]
    assert scores and all(s >= 0.2 for s in scores) and len(scores) < 5


def test_piped_errors_stay_on_one_line(shared_home: Path, tmp_path: Path) -> None:
    bad = tmp_path / ("a-file-with-a-rather-long-name-that-would-wrap-at-eighty-columns-" * 2 + ".jpg")
    bad.write_text("this is not an image")
    proc = _run(["predict", str(bad)], shared_home)
    assert proc.returncode == 1
    (line,) = proc.stderr.splitlines()
    assert line.startswith(str(bad)) and "not an image" in line


@pytest.mark.slow
def test_train_in_a_pipe_then_the_hint_the_trained_name_and_the_table(shared_home: Path, tmp_path: Path) -> None:
    from tests.shapes import write_shapes

    data = write_shapes(tmp_path / "shapes", per_class=4)
    home = tmp_path / "home"
    trained = _run(["train", str(data), "--name", "cli-shapes", "--val-split", "0", "--threads", "2"], home)
    assert trained.returncode == 0, trained.stderr
    assert not any(glyph in trained.stderr + trained.stdout for glyph in "━█") and "\r" not in trained.stderr
    (hint,) = [line.removeprefix("use it: ") for line in trained.stdout.splitlines() if line.startswith("use it: ")]
    image = next(data.rglob("*.png"))
    used = subprocess.run([*shlex.split(hint.replace("IMAGE", shlex.quote(str(image)))), "--home", str(home), "--json"],
                          capture_output=True, text=True, timeout=300)
    assert used.returncode == 0, used.stderr
    assert json.loads(used.stdout)["model"] == "cli-shapes@1"
    nope = _run(["predict", "--model", "nope", str(image)], home)
    assert nope.returncode == 1 and "cli-shapes@1" in nope.stderr and "efficientnet_lite0" in nope.stderr
    table = subprocess.run([sys.executable, "-m", "wanwu.cli", "models", "--home", str(home)], capture_output=True, text=True,
                           timeout=300, env={**os.environ, "COLUMNS": "80"})
    assert table.returncode == 0 and max(map(len, table.stdout.splitlines())) <= 80
    for name in ("efficientnet_lite0", "efficientnet_lite2", "resnet18", "cli-shapes@1"):
        assert name in table.stdout, f"{name} wrapped:\n{table.stdout}"


def test_the_table_answers_with_the_everyday_category_first(examples_dir: Path, shared_home: Path) -> None:
    proc = _run(["predict", "--top-k", "2", "--lang", "en", str(examples_dir / "chelsea.jpg")], shared_home)
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert lines[1].startswith("cat ") and "maybe" in lines[1]  # the category line before the fine classes
    assert lines[2].startswith("categories: ") and "Egyptian cat" in proc.stdout


def test_a_flat_grey_picture_is_not_sure(tmp_path: Path, shared_home: Path) -> None:
    from PIL import Image

    grey = tmp_path / "grey.png"
    Image.new("RGB", (320, 240), (128, 128, 128)).save(grey)
    proc = _run(["predict", "--json", str(grey)], shared_home)
    record = json.loads(proc.stdout)
    assert record["unknown"] is True and record["summary"].startswith("不确定 not sure")
