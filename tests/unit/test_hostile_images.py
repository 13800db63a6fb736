"""Hostile images: extreme aspect ratios cost a crop's work, any decode failure is an ImageError, Pillow's guard stays on."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers import encode, gradient_image, require_module
from wanwu.errors import CorruptImageError, TooManyPixelsError
from wanwu.models import get_model_spec
from wanwu.preprocess import EXACT_RESIZE_MAX_CROPS, ImageLimits, crop_pixels, decode_image, preprocess_pixels

LITE = get_model_spec("efficientnet_lite0").preprocessing
RESNET = get_model_spec("resnet18").preprocessing
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def resized_sizes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """Every output size ``Image.resize`` is asked for (what the resize allocates)."""
    sizes: list[tuple[int, int]] = []
    original = Image.Image.resize

    def spy(self, size, *args, **kwargs):  # type: ignore[no-untyped-def]
        sizes.append(tuple(size))
        return original(self, size, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "resize", spy)
    return sizes


@pytest.mark.parametrize(
    ("size", "fmt"),
    [((20_000, 1), "PNG"), ((1, 20_000), "PNG"), ((100_000, 1), "PNG"), ((48, 1_048_576), "TIFF"), ((1, 1_000_000), "PNG")],
)
def test_thin_images_resample_only_the_crop(size, fmt, resized_sizes) -> None:  # type: ignore[no-untyped-def]
    data = encode(Image.new("RGB", size, (10, 200, 30)), fmt, **({"compression": "tiff_adobe_deflate"} if fmt == "TIFF" else {}))
    pixels = preprocess_pixels(data, LITE)
    assert pixels.shape == (224, 224, 3)
    assert resized_sizes == [(224, 224)]  # not the 5,120,000×256 strip TorchVision's order would make
    assert np.abs(pixels.astype(int) - (10, 200, 30)).max() <= 1


def test_every_resize_stays_within_the_bound(resized_sizes) -> None:  # type: ignore[no-untyped-def]
    bound = EXACT_RESIZE_MAX_CROPS * RESNET.crop_size**2
    for size in [(3000, 2), (2, 3000), (640, 480), (4000, 10), (17, 9000)]:
        crop_pixels(gradient_image(*size), RESNET)
    assert resized_sizes and all(w * h <= bound for w, h in resized_sizes)


@pytest.mark.parametrize("size", [(3072, 256), (256, 3072), (1200, 100), (4000, 3000)])
def test_aspect_ratios_up_to_twelve_to_one_keep_the_exact_path(size) -> None:  # type: ignore[no-untyped-def]
    img = gradient_image(*size)
    width, height = size
    short, long = min(size), max(size)
    resized = (256, int(256 * long / short)) if width <= height else (int(256 * long / short), 256)
    full = img.resize(resized, Image.Resampling.BILINEAR)
    left, top = int(round((resized[0] - 224) / 2.0)), int(round((resized[1] - 224) / 2.0))
    expected = np.asarray(full.crop((left, top, left + 224, top + 224)))
    np.testing.assert_array_equal(crop_pixels(img, RESNET), expected)


def test_an_exception_pillow_raises_while_loading_is_a_corrupt_image(monkeypatch: pytest.MonkeyPatch) -> None:
    """Crafted TIFFs make Pillow raise TypeError inside load(); any exception type is caught at the boundary."""

    def broken_load(self):  # type: ignore[no-untyped-def]
        raise TypeError("'NoneType' object is not subscriptable")

    data = encode(gradient_image(64, 48), "TIFF")
    monkeypatch.setattr(Image.Image, "load", broken_load)
    monkeypatch.setattr("PIL.ImageFile.ImageFile.load", broken_load)
    with pytest.raises(CorruptImageError, match=r"could not be decoded \(TypeError: 'NoneType'"):
        preprocess_pixels(data, LITE)
    with pytest.raises(CorruptImageError):
        decode_image(data)


def test_a_resize_failure_is_a_corrupt_image_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image.Image, "resize", lambda *a, **k: (_ for _ in ()).throw(MemoryError()))
    with pytest.raises(CorruptImageError, match="MemoryError"):
        preprocess_pixels(encode(gradient_image(640, 480), "PNG"), LITE)


def test_pillows_own_guard_answers_with_our_limit_and_setting() -> None:
    # A 65536×65536 header is over twice Pillow's default guard: Image.open itself refuses it.
    from tests.unit.test_preprocess import _png_header_only

    with pytest.raises(TooManyPixelsError, match=r"image is 4,294,967,296 pixels; the limit is 64,000,000 .*WANWU_MAX_PIXELS"):
        decode_image(_png_header_only(65536, 65536))


def test_a_limit_above_pillows_guard_says_which_one_refused() -> None:
    from tests.unit.test_preprocess import _png_header_only

    limits = ImageLimits(max_pixels=10**10)
    with pytest.raises(TooManyPixelsError, match=r"over Pillow's process-wide limit \(PIL.Image.MAX_IMAGE_PIXELS"):
        decode_image(_png_header_only(65536, 65536), limits)


def test_wanwu_leaves_pillow_and_onnxruntime_global_state_alone() -> None:
    """Importing and using wanwu changes neither PIL.Image.MAX_IMAGE_PIXELS nor ONNX Runtime's default log level."""
    require_module("onnxruntime")
    script = textwrap.dedent(
        """
        import io
        import onnxruntime
        from PIL import Image

        before = Image.MAX_IMAGE_PIXELS
        calls = []
        onnxruntime.set_default_logger_severity = lambda level: calls.append(level)
        import wanwu.classifier, wanwu.engines.ort_engine, wanwu.service.app  # noqa: F401
        from wanwu.models import get_model_spec
        from wanwu.preprocess import preprocess_pixels

        buf = io.BytesIO()
        Image.new("RGB", (300, 200)).save(buf, "PNG")
        preprocess_pixels(buf.getvalue(), get_model_spec("resnet18").preprocessing)
        assert Image.MAX_IMAGE_PIXELS == before == 89478485, Image.MAX_IMAGE_PIXELS
        assert calls == [], calls
        print("unchanged")
        """
    )
    env_path = f"{ROOT / 'src'}:{ROOT}"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env={"PYTHONPATH": env_path})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "unchanged"


def test_the_server_entry_point_raises_pillows_guard_to_its_own_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    from wanwu.cli import serve as cli

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)
    cli._own_pillow_limit(500_000_000)
    assert Image.MAX_IMAGE_PIXELS == 500_000_000
    cli._own_pillow_limit(1_000)  # never lowered below Pillow's default
    assert Image.MAX_IMAGE_PIXELS == 500_000_000


@pytest.mark.parametrize("mode", ["I;16", "I", "F"])
def test_deep_pixels_are_scaled_tile_by_tile_to_the_same_values(mode: str) -> None:
    from wanwu.preprocess import _scaled_to_8_bits

    rng = np.random.default_rng(0)
    values = rng.integers(0, 65535, (37, 53)).astype(np.uint16 if mode == "I;16" else np.int32 if mode == "I" else np.float32)
    img = Image.fromarray(values, mode) if mode != "I;16" else Image.fromarray(values)
    whole = np.asarray(img, dtype=np.float64)
    peak = 65535.0 if mode.startswith("I;16") or whole.max() > 255 else 255.0
    expected = np.clip(whole * (255.0 / peak), 0, 255).astype(np.uint8)  # the formula, on the whole image at once
    for tile in (7, 60, 1 << 20):  # rows of 53 split in strips, a few rows, everything
        np.testing.assert_array_equal(np.asarray(_scaled_to_8_bits(img, tile=tile)), expected)


def crafted_tiff() -> bytes:
    """A TIFF whose StripOffsets tag is typed RATIONAL: Pillow raises TypeError while loading it (issue 13)."""
    import struct

    data = bytearray(encode(gradient_image(64, 48), "TIFF"))
    (ifd,) = struct.unpack("<I", data[4:8])
    (count,) = struct.unpack("<H", data[ifd : ifd + 2])
    for entry in range(ifd + 2, ifd + 2 + 12 * count, 12):
        if struct.unpack("<H", data[entry : entry + 2])[0] == 273:  # StripOffsets
            data[entry + 2 : entry + 4] = struct.pack("<H", 5)  # RATIONAL
    return bytes(data)


def test_a_real_crafted_tiff_that_makes_pillow_raise_typeerror_is_corrupt() -> None:
    with pytest.raises(CorruptImageError, match=r"could not be decoded \(TypeError: 'IFDRational'") as caught:
        preprocess_pixels(crafted_tiff(), LITE)
    assert isinstance(caught.value.__cause__, TypeError)


@pytest.mark.parametrize("mode", ["RGBA", "LA", "PA", "RGBa", "P-transparency", "P-alpha-palette"])  # "La": Pillow converts it to nothing
def test_transparent_images_are_put_on_white_tile_by_tile_to_the_same_values(mode: str) -> None:
    from wanwu.preprocess import _on_white

    rng = np.random.default_rng(1)
    rgba = Image.fromarray(rng.integers(0, 256, (37, 53, 4), dtype=np.uint8), "RGBA")
    if mode == "P-transparency":
        img = rgba.convert("RGB").convert("P")
        img.info["transparency"] = 7
    elif mode == "P-alpha-palette":
        img = rgba.convert("RGB").convert("P")
        img.info["transparency"] = bytes(rng.integers(0, 256, 256, dtype=np.uint8))
    else:
        img = rgba.convert(mode)
    whole = Image.alpha_composite(Image.new("RGBA", img.size, (255, 255, 255, 255)), img.convert("RGBA")).convert("RGB")
    for tile in (7, 60, 1 << 20):
        np.testing.assert_array_equal(np.asarray(_on_white(img, tile=tile)), np.asarray(whole))


def _tiled_tiff(pixels: np.ndarray, tile_width: int, tile_length: int, compression: int = 1) -> bytes:
    """An uncompressed RGB TIFF of ``pixels`` stored as one tile of the given (claimed) size, written by hand
    (Pillow cannot write tiles)."""
    import struct

    height, width, _ = pixels.shape
    data = pixels.tobytes()
    if tile_width * tile_length <= 1 << 20:  # a real tile is padded out to its full size; a hostile one is not
        tile = np.zeros((tile_length, tile_width, 3), np.uint8)
        tile[:height, :width] = pixels
        data = tile.tobytes()
    ifd_at = 16 + len(data)
    short, long_ = 3, 4
    entries = [  # (tag, type, count, value), sorted by tag
        (256, long_, 1, width), (257, long_, 1, height), (258, short, 3, 8), (259, short, 1, compression), (262, short, 1, 2),
        (277, short, 1, 3), (284, short, 1, 1), (322, long_, 1, tile_width), (323, long_, 1, tile_length),
        (324, long_, 1, 16), (325, long_, 1, len(data)),
    ]
    out = bytearray(b"II*\x00" + struct.pack("<I", ifd_at) + struct.pack("<HHH", 8, 8, 8) + b"\x00\x00")
    out += data + struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        if tag == 258:  # three shorts do not fit in the entry: they sit at offset 8
            out += struct.pack("<HHII", tag, kind, count, 8)
        else:
            out += struct.pack("<HHI", tag, kind, count) + struct.pack("<I" if kind == long_ else "<HH", *((value,) if kind == long_ else (value, 0)))
    return bytes(out + b"\x00\x00\x00\x00")


def test_a_tiff_whose_tiles_dwarf_the_image_is_refused_before_libtiff_allocates_them() -> None:
    """Found by the fuzzer: 48×32 pixels claimed in 6204×65535 tiles made libtiff allocate 1.6 GB before failing."""
    from tests.fuzz_corpus import peak_rss_mb

    pixels = np.asarray(gradient_image(32, 32).convert("RGB"))
    legit = _tiled_tiff(pixels, 32, 32)
    assert np.array_equal(np.asarray(decode_image(legit)), pixels)  # a real tiled TIFF still decodes, exactly
    assert np.array_equal(np.asarray(decode_image(_tiled_tiff(pixels, 256, 256))), pixels)  # tiles past a small image: fine

    before = peak_rss_mb(reset=True)
    with pytest.raises(CorruptImageError, match=r"TIFF tiles of 6204×65535 pixels for a 32×32 image"):
        decode_image(_tiled_tiff(pixels, 6204, 65535, compression=32773))  # PackBits: decoded by libtiff
    after = peak_rss_mb()
    if before is not None and after is not None:
        assert after - before < 100, f"refusing the tiles still took {after - before:.0f} MB"
