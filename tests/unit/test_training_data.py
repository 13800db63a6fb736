"""The training set: content hashes, duplicates, identical files under two classes, and the seeded stratified split."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.shapes import write_shapes
from wanwu.errors import DatasetError
from wanwu.training.data import prepare, split


def test_split_is_stratified_seeded_and_keeps_a_training_image_per_class(tmp_path: Path) -> None:
    write_shapes(tmp_path, per_class=10)
    data = prepare(tmp_path, val_split=0.2, seed=1)
    assert len(data.train) == 24 and len(data.val) == 6
    assert sorted(s.label for s in data.val) == [0, 0, 1, 1, 2, 2]
    again = prepare(tmp_path, val_split=0.2, seed=1)
    assert [s.path for s in again.val] == [s.path for s in data.val]
    other = prepare(tmp_path, val_split=0.2, seed=2)
    assert [s.path for s in other.val] != [s.path for s in data.val]
    train, val = split(data.train[:2] + data.train[8:10] + data.train[16:18], 0.9, 0)  # two per class
    assert len(train) == 3 and len(val) == 3
    assert split(data.train, 0.0, 0)[1] == []
    with pytest.raises(DatasetError, match="--val-split"):
        split(data.train, 1.0, 0)


def test_duplicates_are_dropped_and_identical_files_under_two_classes_reported(tmp_path: Path) -> None:
    write_shapes(tmp_path, per_class=4)
    classes = sorted(p for p in tmp_path.iterdir())
    shutil.copy(classes[0] / "000.png", classes[0] / "copy.png")  # same class: one kept
    shutil.copy(classes[0] / "001.png", classes[1] / "confusing.png")  # two classes: both left out
    data = prepare(tmp_path, val_split=0)
    assert [(p.name, kept.name) for p, kept in data.duplicates] == [("copy.png", "000.png")]
    (conflict,) = data.conflicts
    assert conflict["classes"] == [classes[0].name, classes[1].name]
    assert sorted(Path(p).name for p in conflict["paths"]) == ["001.png", "confusing.png"]
    used = {s.path.name for s in data.train if s.label in (0, 1)}
    assert "confusing.png" not in used and "copy.png" not in used
    assert len(data.train) == 12 - 1


def test_a_validation_folder_maps_by_folder_name_and_drops_training_copies(tmp_path: Path) -> None:
    write_shapes(tmp_path / "train", per_class=3)
    write_shapes(tmp_path / "val", per_class=2, seed=9)
    leak = next((tmp_path / "train").glob("红色圆形/*.png"))
    shutil.copy(leak, tmp_path / "val" / "红色圆形" / "leak.png")
    data = prepare(tmp_path / "train", val_dir=tmp_path / "val")
    assert len(data.train) == 9 and len(data.val) == 6
    assert [p.name for p in data.val_overlap] == ["leak.png"]
    (tmp_path / "val" / "unknown class").mkdir()
    with pytest.raises(DatasetError, match="unknown class"):
        prepare(tmp_path / "train", val_dir=tmp_path / "val")


def test_a_class_of_identical_non_images_says_it_has_none(tmp_path: Path) -> None:
    write_shapes(tmp_path, per_class=4)
    bad = tmp_path / "zz-broken"
    bad.mkdir()
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        (bad / name).write_text("this is not a photo")  # three identical files that only look like images
    with pytest.raises(DatasetError, match=r"zz-broken has 0 usable images of 3 files found \(3 could not be decoded "
                                           r"\(a.jpg: not an image wanwu can read"):
        prepare(tmp_path, val_split=0)


def test_different_non_images_are_not_called_a_missing_extension(tmp_path: Path) -> None:
    write_shapes(tmp_path, per_class=4)
    bad = tmp_path / "zz-broken"
    bad.mkdir()
    for i, name in enumerate(("a.jpg", "b.png", "c.webp")):
        (bad / name).write_bytes(b"nope" * (i + 1))
    with pytest.raises(DatasetError) as caught:
        prepare(tmp_path, val_split=0)
    assert "has 0 usable images of 3 files found (3 could not be decoded (a.jpg: not an image" in str(caught.value)
    assert "has no" not in str(caught.value)


def test_files_not_named_like_images_are_counted(tmp_path: Path) -> None:
    write_shapes(tmp_path, per_class=4)
    bad = tmp_path / "zz-notes"
    bad.mkdir()
    for name in ("a.txt", "b.txt"):
        (bad / name).write_text(name)
    with pytest.raises(DatasetError, match=r"zz-notes has 0 usable images of 2 files found \(2 not named like an image "
                                           r"\(a.txt: not an image file name \(.txt\)\)\)"):
        prepare(tmp_path, val_split=0)


def test_copies_are_counted_where_too_few_images_are_left(tmp_path: Path) -> None:
    write_shapes(tmp_path, per_class=4)
    lonely = tmp_path / "zz-one"
    lonely.mkdir()
    from PIL import Image

    Image.new("RGB", (64, 64), (200, 30, 30)).save(lonely / "x.png")
    shutil.copy(lonely / "x.png", lonely / "y.png")  # the same file twice: one image
    with pytest.raises(DatasetError, match=r"zz-one has 1 usable image of 2 files found \(1 duplicate of another file\)"):
        prepare(tmp_path, val_split=0)


def test_cut_outs_are_seen_in_the_header_and_crop_auto_letterboxes_a_set_of_mostly_cut_outs(tmp_path: Path) -> None:
    from PIL import Image

    from wanwu.training.train import crop_for

    write_shapes(tmp_path, per_class=5)
    pngs = sorted(tmp_path.rglob("*.png"))
    for i, png in enumerate(pngs[:9]):  # 6 cut-outs (a transparent margin), then 3 opaque RGBA exports: not cut-outs
        img = Image.open(png).convert("RGBA")
        alpha = Image.new("L", img.size, 0 if i < 6 else 255)
        alpha.paste(255, (8, 8, img.width - 8, img.height - 8))
        img.putalpha(alpha)
        img.save(png)
    palette = tmp_path / "红色圆形" / "palette.gif"
    Image.new("P", (16, 16), 3).save(palette, transparency=3)
    data = prepare(tmp_path, val_split=0.0)
    cutouts = {s.path for s in data.train if s.cutout}
    assert cutouts == {*pngs[:6], palette}  # the opaque RGBA ones are photos
    assert crop_for("auto", data.train) == ("full", "7 of 16 training images are cut-outs with transparent pixels")
    data.train = [s for s in data.train if s.path not in pngs[9:12]]
    assert crop_for("auto", data.train) == ("pad", "7 of 13 training images are cut-outs with transparent pixels")
    photos = [s for s in data.train if not s.cutout]
    assert crop_for("auto", photos)[0] == "full" and crop_for("center", data.train) == ("center", "--crop")
    with pytest.raises(DatasetError, match="--crop must be one of auto, full, center, pad"):
        crop_for("letterbox", data.train)
