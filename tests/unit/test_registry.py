"""Schema checks over every registered model, and the label files against real ImageNet names."""

from __future__ import annotations

import re
from dataclasses import FrozenInstanceError, replace
from pathlib import Path

import pytest

from wanwu.errors import UnknownModelError
from wanwu.labels import get_labels
from wanwu.models import get_model_spec, list_models, register_model

SPECS = list_models()


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_every_spec_is_complete_and_consistent(spec) -> None:  # type: ignore[no-untyped-def]
    pre = spec.preprocessing
    assert pre.resize_size >= pre.crop_size > 0
    assert len(pre.mean) == len(pre.std) == 3 and all(s > 0 for s in pre.std)
    assert pre.interpolation in {"bilinear", "bicubic", "nearest"}
    weights = spec.weights
    assert weights.sha256 or weights.hash_prefix
    if weights.sha256:
        assert re.fullmatch(r"[0-9a-f]{64}", weights.sha256)
    if weights.hash_prefix:  # torch.hub convention: the prefix is part of the official file name
        assert weights.file_name.split("-")[-1].startswith(weights.hash_prefix)
    assert weights.url or weights.package, "a model needs a download URL or a package that ships it"
    assert weights.num_bytes > 1_000_000
    assert 0 < spec.accuracy.top1 < 100
    assert spec.builder.count(":") == 1
    with pytest.raises(FrozenInstanceError):
        spec.name = "other"  # type: ignore[misc]


def test_resnet18_is_torchvision_imagenet1k_v1() -> None:
    spec = get_model_spec("resnet18")
    assert spec.weights.url == "https://download.pytorch.org/models/resnet18-f37072fd.pth"
    assert (spec.accuracy.top1, spec.accuracy.top5) == (69.758, 89.078)
    assert spec.preprocessing.mean == (0.485, 0.456, 0.406)


def test_efficientnet_lite0_scales_to_minus_one_one() -> None:
    pre = get_model_spec("efficientnet_lite0").preprocessing
    assert (pre.resize_size, pre.crop_size, pre.mean, pre.std) == (256, 224, (0.5,) * 3, (0.5,) * 3)


def test_unknown_model_lists_the_valid_names() -> None:
    with pytest.raises(UnknownModelError, match="unknown model 'resnet50'; valid models: efficientnet_lite0, efficientnet_lite2, resnet18"):
        get_model_spec("resnet50")


def test_registering_a_name_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_model(replace(get_model_spec("resnet18")))


def test_label_files_have_1000_entries_in_standard_order() -> None:
    labels = get_labels()
    assert len(labels.english) == len(labels.chinese) == len(labels.wnids) == 1000
    assert list(labels.wnids) == sorted(labels.wnids) and len(set(labels.wnids)) == 1000
    assert (labels.english[0], labels.english[999]) == ("tench", "toilet tissue")
    assert (labels.chinese[970], labels.chinese[795], labels.chinese[281]) == ("高山", "滑雪板", "虎斑猫")
    assert all(re.search(r"[\u4e00-\u9fff]", name) for name in labels.chinese), "every class needs a Chinese name"
    assert labels.chinese[134] != labels.chinese[517], "crane (bird) and crane (machine) must differ in Chinese"


def test_english_order_matches_real_imagenet_file_names(samples_dir: Path) -> None:
    labels = get_labels()
    checked = 0
    for path in sorted(samples_dir.glob("n*_*.JPEG")):
        wnid, name = path.stem.split("_", 1)
        assert labels.english[labels.index_of_wnid(wnid)].replace(" ", "_") == name, path.name
        checked += 1
    assert checked == 100
