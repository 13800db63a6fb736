"""ImageFolder discovery: class names in any language, skipped files, and the errors that name the folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.shapes import write_shapes
from wanwu.errors import DatasetError
from wanwu.imagefolder import check_trainable, class_name, discover, matched_items, read_labels_file


def test_class_names_english_chinese_and_plain() -> None:
    assert class_name("cat|猫") == class_name("cat|猫")
    both = class_name("cat|猫")
    assert (both.english, both.chinese) == ("cat", "猫")
    swapped = class_name("猫|cat")  # Chinese first is understood too
    assert (swapped.english, swapped.chinese) == ("cat", "猫")
    plain = class_name("兰花")
    assert (plain.folder, plain.english, plain.chinese) == ("兰花", "兰花", "兰花")
    named = class_name("c01", {"c01": ("orchid", "兰花")})
    assert (named.english, named.chinese) == ("orchid", "兰花")


def test_discover_sorts_classes_and_lists_what_is_not_an_image(tmp_path: Path) -> None:
    write_shapes(tmp_path, per_class=2)
    (tmp_path / "红色圆形" / "notes.txt").write_text("not an image")
    (tmp_path / "红色圆形" / ".DS_Store").write_bytes(b"\0")
    (tmp_path / "stray.jpg").write_bytes(b"x")
    (tmp_path / ".cache").mkdir()
    data = discover(tmp_path)
    assert [c.folder for c in data.classes] == sorted(["blue square|蓝色方块", "green triangle|绿色三角", "红色圆形"])
    assert [len(f) for f in data.files] == [2, 2, 2]
    skipped = {p.name: why for p, why in data.skipped}
    assert set(skipped) == {"notes.txt", "stray.jpg"}
    assert "not an image" in skipped["notes.txt"] and "outside any class folder" in skipped["stray.jpg"]
    assert data.labels.english[0] == "blue square" and data.labels.chinese[0] == "蓝色方块"
    assert data.labels.wnids == tuple(c.folder for c in data.classes)


def test_labels_file(tmp_path: Path) -> None:
    labels = tmp_path / "labels.tsv"
    labels.write_text("# folder, english, chinese\nc1\torchid\t兰花\n\nc2\trose\n", encoding="utf-8")
    assert read_labels_file(labels) == {"c1": ("orchid", "兰花"), "c2": ("rose", "")}
    assert class_name("c2", read_labels_file(labels)).chinese == "rose"
    labels.write_text("just-one-column\n")
    with pytest.raises(DatasetError, match="labels.tsv:1"):
        read_labels_file(labels)


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ({"a": 2, "b": 0}, r"class folder .*/b has no files \(images: .jpg"),
        ({"a": 2, "b": 1}, r"class folder .*/b has 1 usable image; each class needs at least 2"),
        ({"a": 3}, r"has one class \(.*/a\); a classifier needs at least two"),
        ({}, r"has no class folders"),
    ],
)
def test_untrainable_folders_name_the_folder(tmp_path: Path, layout: dict[str, int], message: str) -> None:
    import numpy as np

    from tests.shapes import shape_image

    rng = np.random.default_rng(0)
    for folder, count in layout.items():
        (tmp_path / folder).mkdir()
        for i in range(count):
            shape_image((200, 0, 0), "circle", rng).save(tmp_path / folder / f"{i}.png")
    with pytest.raises(DatasetError, match=message):
        check_trainable(discover(tmp_path))


def test_a_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        discover(tmp_path / "nope")


def test_matched_items_map_folders_to_the_models_classes(tmp_path: Path) -> None:
    write_shapes(tmp_path / "train", per_class=2)
    labels = discover(tmp_path / "train").labels
    write_shapes(tmp_path / "eval", per_class=1, seed=3)
    items = matched_items(tmp_path / "eval", labels)
    assert sorted(i for _, i in items) == [0, 1, 2]
    (tmp_path / "eval" / "purple star").mkdir()
    with pytest.raises(DatasetError, match="purple star"):
        matched_items(tmp_path / "eval", labels)
