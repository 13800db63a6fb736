"""Decoding and the TorchVision eval transform: pinned sizes and values, every format, every bad input."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from PIL import Image

from tests.helpers import encode, gradient_image
from wanwu.errors import CorruptImageError, ImageTooLargeError, TooManyPixelsError, UnsupportedImageError
from wanwu.models import get_model_spec
from wanwu.preprocess import (
    ImageLimits,
    center_crop_box,
    crop_pixels,
    decode_image,
    normalize,
    preprocess,
    preprocess_pixels,
    resized_size,
    transform,
)

RESNET = get_model_spec("resnet18").preprocessing
LITE = get_model_spec("efficientnet_lite0").preprocessing


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((500, 375), (341, 256)),  # int(256 * 500 / 375) = int(341.33)
        ((375, 500), (256, 341)),
        ((4000, 3000), (341, 256)),
        ((256, 256), (256, 256)),
        ((300, 1000), (256, 853)),  # int(853.33)
        ((1000, 299), (856, 256)),  # int(856.18): truncation, not rounding
    ],
)
def test_resize_follows_torchvision_integer_rule(size, expected) -> None:  # type: ignore[no-untyped-def]
    assert resized_size(size, 256) == expected


@pytest.mark.parametrize(
    ("size", "box"),
    [
        ((341, 256), (58, 16, 282, 240)),  # round(58.5) == 58: Python's round-half-even, as torchvision
        ((256, 853), (16, 314, 240, 538)),  # round(314.5) == 314
        ((257, 256), (16, 16, 240, 240)),  # round(16.5) == 16
        ((259, 256), (18, 16, 242, 240)),  # round(17.5) == 18
    ],
)
def test_center_crop_offsets_follow_torchvision(size, box) -> None:  # type: ignore[no-untyped-def]
    assert center_crop_box(size, 224) == box


def test_transform_reproduces_resize_crop_normalize_values() -> None:
    img = gradient_image(500, 375)
    out = transform(img, RESNET)
    assert out.shape == (3, 224, 224) and out.dtype == np.float32
    expected = np.asarray(img.resize((341, 256), Image.Resampling.BILINEAR).crop((58, 16, 282, 240)), np.float32)
    expected = (expected / 255.0 - np.array(RESNET.mean, np.float32)) / np.array(RESNET.std, np.float32)
    np.testing.assert_array_equal(out, expected.transpose(2, 0, 1))


def test_pixels_are_the_crop_and_normalise_per_image_or_per_batch() -> None:
    """What the service sends engines: the crop's uint8 pixels; ``normalize`` of a batch = each image's transform."""
    imgs = [gradient_image(500, 375), gradient_image(375, 500).rotate(90, expand=True), gradient_image(640, 480)]
    pixels = np.stack([crop_pixels(img, RESNET) for img in imgs])
    assert pixels.dtype == np.uint8 and pixels.shape == (3, 224, 224, 3)
    np.testing.assert_array_equal(pixels[0], np.asarray(imgs[0].resize((341, 256), Image.Resampling.BILINEAR).crop((58, 16, 282, 240))))
    np.testing.assert_array_equal(normalize(pixels, RESNET), np.stack([transform(img, RESNET) for img in imgs]))
    data = encode(imgs[2], "PNG")
    np.testing.assert_array_equal(normalize(preprocess_pixels(data, LITE), LITE), preprocess(data, LITE))


def test_constant_image_normalises_to_known_values() -> None:
    img = Image.new("RGB", (300, 260), (255, 0, 128))
    resnet = transform(img, RESNET)
    np.testing.assert_allclose(resnet[:, 0, 0], [(1 - 0.485) / 0.229, (0 - 0.456) / 0.224, (128 / 255 - 0.406) / 0.225], rtol=1e-6)
    lite = transform(img, LITE)
    np.testing.assert_allclose(lite[:, 100, 100], [1.0, -1.0, 128 / 255 * 2 - 1], atol=1e-6)


@pytest.mark.parametrize(
    ("fmt", "mode", "params"),
    [
        ("JPEG", "RGB", {}),
        ("JPEG", "L", {}),
        ("JPEG", "CMYK", {}),
        ("PNG", "RGB", {}),
        ("PNG", "RGBA", {}),
        ("PNG", "P", {}),
        ("PNG", "L", {}),
        ("PNG", "1", {}),
        ("WEBP", "RGB", {}),
        ("WEBP", "RGBA", {}),
        ("GIF", "P", {}),
        ("BMP", "RGB", {}),
        ("TIFF", "RGB", {}),
        ("TIFF", "CMYK", {}),
    ],
)
def test_every_common_format_decodes_to_rgb(fmt, mode, params) -> None:  # type: ignore[no-untyped-def]
    data = encode(gradient_image(64, 48, mode), fmt, **params)
    img = decode_image(data)
    assert (img.mode, img.size) == ("RGB", (64, 48))


def test_sixteen_bit_grayscale_keeps_its_range() -> None:
    arr = (np.arange(64 * 48, dtype=np.uint32).reshape(48, 64) * 21).astype(np.uint16)
    img = decode_image(encode(Image.fromarray(arr), "PNG"))
    pixels = np.asarray(img)
    assert pixels.max() >= 250 and pixels.min() == 0 and 100 < pixels.mean() < 160  # not clipped to white


def test_transparent_pixels_become_white() -> None:
    rgba = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    assert np.asarray(decode_image(encode(rgba, "PNG"))).min() == 255


def test_pad_letterboxes_the_whole_image_on_white_and_leaves_a_square_as_it_was() -> None:
    """``--crop pad`` (a trained version's preprocessing): a tall cut-out keeps its top and bottom, which the square
    crop of the shorter side cuts; the margins are the white cut-outs are composited on."""
    import dataclasses

    full = dataclasses.replace(LITE, resize_size=LITE.crop_size)
    pad = dataclasses.replace(full, pad=True)
    tall = np.zeros((300, 100, 3), np.uint8)
    tall[:10], tall[-10:] = (255, 0, 0), (0, 0, 255)  # a red top and a blue bottom
    cropped, padded = crop_pixels(Image.fromarray(tall), full), crop_pixels(Image.fromarray(tall), pad)
    assert cropped.shape == padded.shape == (224, 224, 3)
    assert not (cropped[..., 0] > 200).any() and not (cropped[..., 2] > 200).any()  # both ends cut away
    middle = padded[:, 112]
    assert middle[0].tolist() == [255, 0, 0] and middle[-1].tolist() == [0, 0, 255]  # both kept, the whole height
    assert (padded[:, :30] == 255).all() and (padded[:, -30:] == 255).all()  # white margins left and right
    assert padded[:, 80:140].max(axis=2).min() < 255  # the image itself, scaled to 75 px wide, in the middle
    square = gradient_image(200, 200)
    np.testing.assert_array_equal(crop_pixels(square, pad), crop_pixels(square, full))


def test_gif_uses_the_first_frame() -> None:
    frames = [Image.new("RGB", (40, 30), c).convert("P") for c in ((255, 0, 0), (0, 0, 255))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    r, g, b = np.asarray(decode_image(data))[15, 20]
    assert r > 200 and b < 50


def test_exif_orientation_is_applied() -> None:
    img = gradient_image(80, 40)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    upright = decode_image(encode(img, "JPEG", exif=exif.tobytes()))
    assert upright.size == (40, 80)


def test_not_an_image_is_unsupported() -> None:
    with pytest.raises(UnsupportedImageError, match="not an image wanwu can read; send a JPEG, PNG"):
        decode_image(b"%PDF-1.7 this is a document, not a photo")


def test_empty_upload_is_unsupported() -> None:
    with pytest.raises(UnsupportedImageError, match="the upload is empty"):
        decode_image(b"")


def test_formats_outside_the_allowlist_are_refused() -> None:
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n"
    with pytest.raises(UnsupportedImageError):
        decode_image(eps)
    with pytest.raises(UnsupportedImageError):
        decode_image(encode(gradient_image(8, 8), "PPM"))


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_truncated_files_are_corrupt(fmt: str) -> None:
    data = encode(gradient_image(300, 200), fmt)
    with pytest.raises(CorruptImageError, match="corrupt"):
        decode_image(data[: len(data) // 2])


def test_garbage_after_a_valid_header_is_corrupt() -> None:
    data = bytearray(encode(gradient_image(300, 200), "PNG"))
    data[100:400] = b"\x00" * 300
    with pytest.raises(CorruptImageError):
        decode_image(bytes(data))


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims ``width`` × ``height`` pixels in a few dozen bytes (a decompression bomb)."""
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")


def test_decompression_bomb_is_refused_before_decoding() -> None:
    with pytest.raises(TooManyPixelsError, match=r"10,000,000,000 pixels; the limit is 64,000,000"):
        decode_image(_png_header_only(100_000, 100_000))


def test_pixel_limit_is_configurable_and_named() -> None:
    data = encode(gradient_image(200, 100), "PNG")
    with pytest.raises(TooManyPixelsError, match="WANWU_MAX_PIXELS"):
        decode_image(data, ImageLimits(max_pixels=10_000))


def test_byte_limit_is_checked_first_and_named() -> None:
    with pytest.raises(ImageTooLargeError, match=r"upload is 2,048 bytes; the limit is 1,024 bytes .*WANWU_MAX_UPLOAD_BYTES"):
        decode_image(b"\xff" * 2048, ImageLimits(max_bytes=1024))


def test_fast_decode_keeps_at_least_the_resize_target() -> None:
    data = encode(gradient_image(4000, 3000), "JPEG", quality=90)
    exact = decode_image(data)
    fast = decode_image(data, draft_size=256)
    assert exact.size == (4000, 3000)
    assert min(fast.size) >= 256 and fast.size[0] < 4000
    np.testing.assert_allclose(preprocess(data, RESNET, fast_decode=True), preprocess(data, RESNET), atol=0.1)


def test_a_size_under_pillows_guard_is_refused_by_ours_with_its_dimensions() -> None:
    with pytest.raises(TooManyPixelsError, match=r"9000×9000 = 81,000,000 pixels; the limit is 64,000,000"):
        decode_image(_png_header_only(9000, 9000))
