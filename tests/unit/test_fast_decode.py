"""--fast-decode: JPEG DCT-domain downscaling never goes below the resize target, and barely changes answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers import encode, gradient_image, require_module
from wanwu.models import get_model_spec
from wanwu.preprocess import _draft_target, decode_image, preprocess

LITE = get_model_spec("efficientnet_lite0").preprocessing


@pytest.mark.parametrize(
    "size",
    [(4000, 3000), (3000, 4000), (4032, 3024), (2049, 513), (513, 2049), (1024, 1024), (1023, 1023), (5000, 800), (520, 390), (300, 200)],
)
@pytest.mark.parametrize("resize", [256, 224])
def test_draft_keeps_the_shorter_side_at_least_the_resize_size(size: tuple[int, int], resize: int) -> None:
    target = _draft_target(size, resize)
    assert min(target) >= min(resize, min(size)) and min(target) <= resize + 1
    img = decode_image(encode(gradient_image(*size), "JPEG", quality=90), draft_size=resize)
    assert min(img.size) >= min(resize, min(size)), img.size
    if min(size) >= 2 * resize:
        assert img.size[0] < size[0]  # it did downscale


def test_draft_respects_exif_rotation() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90°
    data = encode(gradient_image(3000, 2000), "JPEG", quality=90, exif=exif.tobytes())
    exact, fast = decode_image(data), decode_image(data, draft_size=256)
    assert exact.size == (2000, 3000) and fast.size[0] < fast.size[1] and min(fast.size) >= 256


def test_fast_path_resizes_only_the_crop_within_one_level() -> None:
    """A small JPEG (nothing for the DCT to skip): only the crop is resampled, within one level of 255."""
    data = encode(gradient_image(500, 375), "JPEG", quality=90)
    exact, fast = preprocess(data, LITE), preprocess(data, LITE, fast_decode=True)
    one_level = 1 / 255 / min(LITE.std) + 1e-6
    assert exact.shape == fast.shape == (3, 224, 224)
    assert np.abs(exact - fast).max() <= one_level
    assert (np.abs(exact - fast) > 1e-6).mean() < 0.1
    square = encode(gradient_image(256, 256), "JPEG", quality=90)  # already at the resize size: only a crop
    np.testing.assert_array_equal(preprocess(square, LITE, fast_decode=True), preprocess(square, LITE))


def test_fast_decode_agrees_on_real_samples(samples_dir: Path, shared_home: Path) -> None:
    """Upscaled real samples (as a phone would send them): same top-1 with exact and fast decoding."""
    require_module("openvino")
    from wanwu.engines import create_engine
    from wanwu.sources import open_source

    paths = sorted(samples_dir.glob("*.JPEG"))[::20][:5]
    datas = [encode(Image.open(p).convert("RGB").resize((2000, 1500), Image.BICUBIC), "JPEG", quality=90) for p in paths]
    exact = np.stack([preprocess(d, LITE) for d in datas])
    fast = np.stack([preprocess(d, LITE, fast_decode=True) for d in datas])
    assert np.abs(exact - fast).mean() < 0.05
    engine = create_engine("openvino", open_source(get_model_spec("efficientnet_lite0"), shared_home), threads=2)
    np.testing.assert_array_equal(engine.run(exact).argmax(axis=1), engine.run(fast).argmax(axis=1))
