"""INT8 calibration views: how many, which, and that they are the same every time."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from wanwu.models import get_model_spec
from wanwu.precision.views import VIEW_BUDGET, CalibrationViews, calibration_views, views_per_image
from wanwu.preprocess import decode_image, transform

PRE = get_model_spec("efficientnet_lite0").preprocessing


def _jpeg(seed: int, size: tuple[int, int] = (400, 300)) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=90)
    return out.getvalue()


def test_views_per_image_spreads_the_budget() -> None:
    assert views_per_image(7, augment=True) == 258  # 7 photos: eval view, mirror, 256 crops each
    assert views_per_image(300, augment=True) == 6
    assert views_per_image(10_000, augment=True) == 3  # never fewer than the eval view, its mirror and one crop
    assert views_per_image(7, augment=False) == 1
    assert 7 * views_per_image(7, augment=True) >= VIEW_BUDGET


def test_views_are_the_eval_view_its_mirror_then_seeded_crops() -> None:
    data = _jpeg(0)
    digest = hashlib.sha256(data).hexdigest()
    views = calibration_views(data, digest, PRE, 6)
    assert len(views) == 6 and all(v.shape == (3, 224, 224) and v.dtype == np.float32 for v in views)
    img = decode_image(data)
    np.testing.assert_array_equal(views[0], transform(img, PRE))
    np.testing.assert_array_equal(views[1], transform(img.transpose(Image.Transpose.FLIP_LEFT_RIGHT), PRE))
    crops = views[2:]
    assert all(not np.array_equal(c, views[0]) for c in crops)
    assert len({c.tobytes() for c in crops}) == len(crops)
    again = calibration_views(data, digest, PRE, 6)
    assert all(np.array_equal(a, b) for a, b in zip(views, again, strict=True))  # same image, same views
    other = calibration_views(data, "f" * 64, PRE, 6)  # the seed comes from the content hash
    assert not np.array_equal(other[2], views[2])
    assert len(calibration_views(data, digest, PRE, 1)) == 1


def test_calibration_views_are_made_on_every_pass(tmp_path: Path) -> None:
    files = []
    for i in range(3):
        path = tmp_path / f"{i}.jpg"
        path.write_bytes(_jpeg(i))
        files.append(path)
    digests = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
    views = CalibrationViews(tuple(files), digests, PRE, 4)
    assert len(views) == 12
    first, second = list(views), list(views)
    assert len(first) == 12 and all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
    np.testing.assert_array_equal(first[4], transform(decode_image(files[1].read_bytes()), PRE))
    assert len(views.sample(6)) == 6 and len(views.sample(100)) == 12


def test_a_calibration_set_takes_the_images_in_an_imagefolders_class_folders(tmp_path: Path) -> None:
    from wanwu.datasets import image_files
    from wanwu.precision.calibration import calibration_set

    for cls in ("cat|猫", "dog"):
        (tmp_path / cls).mkdir()
        for i in range(2):
            Image.new("RGB", (8, 8), (i * 50, 0, 0)).save(tmp_path / cls / f"{i:03d}.png")
    (tmp_path / "notes.txt").write_text("not an image")
    calib = calibration_set([tmp_path], subset=None)
    assert [p.relative_to(tmp_path).as_posix() for p in calib.files] == ["cat|猫/000.png", "cat|猫/001.png", "dog/000.png", "dog/001.png"]
    assert calib.describe(_source_stub(), "0" * 64, [tmp_path])["files"][-1] == "dog/001.png"  # two classes may both hold 000.png
    with pytest.raises(FileNotFoundError, match=r"no images .* in \S+$"):  # a plain listing does not look into subfolders
        image_files([tmp_path])


def _source_stub():  # type: ignore[no-untyped-def]
    from types import SimpleNamespace

    return SimpleNamespace(spec=SimpleNamespace(name="stub"), weights_sha256="1" * 64)
