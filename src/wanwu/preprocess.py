"""Decoding uploads safely, and the exact TorchVision eval transform (PIL path) for every engine.

``decode_image`` turns bytes into an RGB ``PIL.Image`` or raises an ``ImageError`` subclass: it
checks the byte and pixel limits before decoding any pixel data, so a decompression bomb costs a
header read, and any other exception raised while decoding (Pillow raises ``TypeError`` and
friends on crafted files) becomes a ``CorruptImageError``. ``transform`` reproduces
``Resize(resize) -> CenterCrop(crop) -> ToTensor -> Normalize(mean, std)`` as TorchVision computes
it on PIL images, in float32.

Cost bound of one accepted image: decoding reads at most ``max_bytes`` and makes at most
``max_pixels`` pixels (a few copies of them: the decoded image and its RGB conversion); the
resize never makes more than ``EXACT_RESIZE_MAX_CROPS`` crops' worth of pixels (see
``crop_pixels``), whatever the aspect ratio. A 1-pixel-high strip is as cheap as a thumbnail.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from wanwu.errors import (
    CorruptImageError,
    ImageError,
    ImageTooLargeError,
    TooManyPixelsError,
    UnsupportedImageError,
)
from wanwu.models.registry import Preprocessing

# Formats people upload. Pillow can open more (EPS via Ghostscript, PSD, ...), which widens the
# attack surface for no user benefit, so everything else is refused as unsupported.
# (Multi-picture phone JPEGs open through the JPEG factory as format "MPO".)
ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")

# TorchVision's Resize enlarges the whole image before CenterCrop keeps crop × crop of it: for a
# 20000×1 strip that is 5,120,000×256 pixels (3.9 GB) to keep 224×224. Up to this many crops'
# worth of resized pixels (resize 256 / crop 224: 802,816 pixels, 2.4 MB, every aspect ratio up
# to 12.25:1, panoramas included) the exact path runs; beyond it only the crop's region is
# resampled (see ``crop_pixels``).
EXACT_RESIZE_MAX_CROPS = 16

# libtiff allocates a whole tile before it decodes one, sized by the TileWidth/TileLength tags (TileLength
# falls back to RowsPerStrip, then 2^32-1), which nothing ties to the image's size: a 6 KB TIFF claiming
# 48×32 pixels in 6204×65535 tiles made it allocate 1.6 GB (found by the fuzzer). Tiles may exceed the
# image (small images in 256×256 tiles are common), but not its 16-aligned size and this many pixels both.
MAX_TIFF_TILE_PIXELS = 1 << 20
_TILE_WIDTH, _TILE_LENGTH, _ROWS_PER_STRIP = 322, 323, 278

_INTERPOLATION = {
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "nearest": Image.Resampling.NEAREST,
}


@dataclass(frozen=True)
class ImageLimits:
    max_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 64_000_000
    bytes_setting: str = "--max-upload-bytes / WANWU_MAX_UPLOAD_BYTES"
    pixels_setting: str = "--max-pixels / WANWU_MAX_PIXELS"


def check_upload_size(size: int, limits: ImageLimits) -> None:
    """``ImageTooLargeError`` for an upload over ``max_bytes``: checked before anything reads, hashes or decodes it."""
    if size > limits.max_bytes:
        raise ImageTooLargeError(
            f"upload is {size:,} bytes; the limit is {limits.max_bytes:,} bytes (raise it with {limits.bytes_setting})"
        )


def open_checked(data: bytes, limits: ImageLimits) -> Image.Image:
    """The image's header read and checked (format, pixel limit, TIFF tiles); no pixel is decoded."""
    check_upload_size(len(data), limits)
    if not data:
        raise UnsupportedImageError("the upload is empty; send a JPEG, PNG, WebP, GIF, BMP or TIFF image")
    try:
        img = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except UnidentifiedImageError as err:
        raise UnsupportedImageError(
            "not an image wanwu can read; send a JPEG, PNG, WebP, GIF, BMP or TIFF image"
        ) from err
    width, height = img.size
    if width * height > limits.max_pixels or width <= 0 or height <= 0:
        raise TooManyPixelsError(
            f"image is {width}×{height} = {width * height:,} pixels; the limit is "
            f"{limits.max_pixels:,} (raise it with {limits.pixels_setting})"
        )
    if img.format == "TIFF":
        _check_tiff_tiles(img)
    return img


def _check_tiff_tiles(img: Image.Image) -> None:
    tags = img.tag_v2  # type: ignore[attr-defined]
    if _TILE_WIDTH not in tags and _TILE_LENGTH not in tags:
        return
    tile_width = _tag_number(tags.get(_TILE_WIDTH))
    tile_length = _tag_number(tags.get(_TILE_LENGTH, tags.get(_ROWS_PER_STRIP, 2**32 - 1)))
    width, height = img.size
    aligned = (-(-width // 16) * 16) * (-(-height // 16) * 16)
    if tile_width * tile_length > max(aligned, MAX_TIFF_TILE_PIXELS):
        raise CorruptImageError(
            f"TIFF tiles of {tile_width}×{tile_length} pixels for a {width}×{height} image: refused before decoding "
            "(each tile is allocated whole)"
        )


def _tag_number(value: object) -> int:
    """A TIFF tag's single number; anything else (absent, a tuple, a rational) counts as unbounded."""
    if isinstance(value, tuple) and len(value) == 1:
        value = value[0]
    return value if isinstance(value, int) and value >= 0 else 2**32 - 1


@contextmanager
def _decoding(limits: ImageLimits) -> Iterator[None]:
    """Whatever goes wrong while decoding one image becomes an ``ImageError`` (a JSON 4xx), never a crash.

    Pillow is not a parser that only raises ``OSError``: crafted files make it raise ``TypeError``,
    ``IndexError``, ``struct.error``, ``MemoryError``... so everything is caught here, at the one
    boundary, rather than listed.
    """
    try:
        yield
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise _refused_by_pillow(err, limits) from err
    except Exception as err:  # noqa: BLE001 - see the docstring
        reason = f"{type(err).__name__}: {err}"[:200]
        raise CorruptImageError(f"the image is corrupt or could not be decoded ({reason})") from err


def _refused_by_pillow(err: Exception, limits: ImageLimits) -> TooManyPixelsError:
    # Pillow's own guard (PIL.Image.MAX_IMAGE_PIXELS, process-wide and left as the process set it)
    # fires inside Image.open, before the size reaches our check; its message carries the count.
    found = re.search(r"\((\d+) pixels\)", str(err))
    pixels = int(found[1]) if found else None
    size = f"{pixels:,} pixels" if pixels else "more pixels than Pillow allows"
    if pixels is not None and pixels <= limits.max_pixels:
        return TooManyPixelsError(
            f"image is {size}: over Pillow's process-wide limit (PIL.Image.MAX_IMAGE_PIXELS = "
            f"{Image.MAX_IMAGE_PIXELS:,}), which `wanwu serve` raises to {limits.pixels_setting}"
        )
    return TooManyPixelsError(f"image is {size}; the limit is {limits.max_pixels:,} (raise it with {limits.pixels_setting})")


def to_rgb(img: Image.Image) -> Image.Image:
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        # Pillow's own conversion clips 16-bit and float values at 255 (an all-white image).
        img = _scaled_to_8_bits(img)
    if has_transparency(img):
        return _on_white(img)
    return img.convert("RGB") if img.mode != "RGB" else img


def has_transparency(img: Image.Image) -> bool:
    """Whether the (opened, not necessarily decoded) image has an alpha channel or a transparent palette entry."""
    return img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (img.mode == "P" and "transparency" in img.info)


def _tiles(size: tuple[int, int], tile: int) -> Iterator[tuple[int, int, int, int]]:
    """Boxes of at most ``tile`` pixels covering ``size``: whole rows where they fit, else pieces of a row."""
    width, height = size
    rows, cols = max(1, tile // width), min(width, tile)
    for top in range(0, height, rows):
        for left in range(0, width, cols):
            yield left, top, min(width, left + cols), min(height, top + rows)


def _on_white(img: Image.Image, tile: int = 1 << 20) -> Image.Image:
    """Transparent pixels over white (they have no colour of their own; white is what a viewer shows).

    Tile by tile, the same pixels as one ``alpha_composite`` of the whole image, without its three
    full-size RGBA copies (a 50-Mpx RGBA image took 1.2 GB that way).
    """
    out = Image.new("RGB", img.size)
    for box in _tiles(img.size, tile):
        part = img.crop(box).convert("RGBA")
        white = Image.new("RGBA", part.size, (255, 255, 255, 255))
        out.paste(Image.alpha_composite(white, part).convert("RGB"), box[:2])
    return out


def _scaled_to_8_bits(img: Image.Image, tile: int = 1 << 20) -> Image.Image:
    """16-bit, 32-bit and float pixels scaled to 0..255 ("L"), a million pixels at a time.

    Converting a whole 64-Mpixel float TIFF at once took two 512 MB float64 temporaries and a copy
    of the image; tile by tile the extra memory is a few MB.
    """
    extrema = img.getextrema()
    peak = 65535.0 if img.mode.startswith("I;16") or float(extrema[1]) > 255 else 255.0  # type: ignore[arg-type, index]
    out = np.empty((img.height, img.width), np.uint8)
    for left, top, right, bottom in _tiles(img.size, tile):
        part = np.asarray(img.crop((left, top, right, bottom)), dtype=np.float64)
        out[top:bottom, left:right] = np.clip(part * (255.0 / peak), 0, 255).astype(np.uint8)
    return Image.fromarray(out, "L")


def decode_image(data: bytes, limits: ImageLimits | None = None, draft_size: int | None = None) -> Image.Image:
    """Bytes -> upright RGB image, or an ``ImageError`` that says what is wrong.

    ``draft_size`` lets JPEG decoding downscale in the DCT domain while keeping the shorter side at
    least that many pixels (``--fast-decode``); ``None`` decodes every pixel (exact path).
    """
    limits = limits or ImageLimits()
    with _decoding(limits):
        img = open_checked(data, limits)
        # DCT scaling halves at most: below twice the target there is nothing to gain, only the call.
        if draft_size is not None and img.format in ("JPEG", "MPO") and min(img.size) >= 2 * draft_size:
            img.draft("RGB", _draft_target(img.size, draft_size))
        img.load()
        ImageOps.exif_transpose(img, in_place=True)  # upright without copying an image that already is
        return to_rgb(img)


def _draft_target(size: tuple[int, int], min_short_side: int) -> tuple[int, int]:
    # Pillow picks the largest DCT scale whose result is still >= the requested size.
    width, height = size
    scale = min_short_side / min(width, height)
    return (max(1, int(width * scale + 0.999)), max(1, int(height * scale + 0.999)))


def resized_size(size: tuple[int, int], resize: int) -> tuple[int, int]:
    """TorchVision's ``Resize(int)``: shorter side -> ``resize``, longer side truncated."""
    width, height = size
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = resize, int(resize * long / short)
    return (new_short, new_long) if width <= height else (new_long, new_short)


def center_crop_box(size: tuple[int, int], crop: int) -> tuple[int, int, int, int]:
    """TorchVision's ``CenterCrop`` offsets: ``int(round((dim - crop) / 2.0))``."""
    width, height = size
    left = int(round((width - crop) / 2.0))
    top = int(round((height - crop) / 2.0))
    return left, top, left + crop, top + crop


def crop_pixels(img: Image.Image, pre: Preprocessing, resize_crop_only: bool = False) -> np.ndarray:
    """RGB image -> the ``(crop, crop, 3)`` uint8 pixels TorchVision's ``Resize`` + ``CenterCrop`` keep.

    ``resize_crop_only`` (the fast path) resamples only the pixels the centre crop keeps: the same
    filter over the same source region, so ~45 % less resize work, but the region's edges are
    floats and their rounding moves about 2 % of the values by one level (of 255). The exact path
    takes it too when the resized image would hold more than ``EXACT_RESIZE_MAX_CROPS`` crops
    (aspect ratios beyond ~12:1): its cost is then the crop's, not the strip's.
    """
    interpolation = _INTERPOLATION[pre.interpolation]
    if pre.pad:
        img = letterboxed(img, pre.resize_size, interpolation)
    size = resized_size(img.size, pre.resize_size)
    if min(size) < pre.crop_size:
        raise ValueError(f"crop {pre.crop_size} is larger than the resized image {size}")
    box = center_crop_box(size, pre.crop_size)
    extreme = size[0] * size[1] > EXACT_RESIZE_MAX_CROPS * pre.crop_size**2
    if (resize_crop_only or extreme) and size != img.size:
        sx, sy = img.width / size[0], img.height / size[1]
        source = (box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy)
        img = img.resize((pre.crop_size, pre.crop_size), interpolation, box=source)
    else:
        img = img.resize(size, interpolation) if size != img.size else img
        img = img.crop(box)
    return np.asarray(img, dtype=np.uint8)


def letterboxed(img: Image.Image, side: int, interpolation: Image.Resampling) -> Image.Image:
    """The whole image scaled to fit a ``side`` square (longer side -> ``side``), centred on white: the colour a
    cut-out's transparency is composited on, so a trimmed cut-out gets back the margin it was cut from."""
    scale = side / max(img.size)
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    canvas = Image.new("RGB", (side, side), (255, 255, 255))
    canvas.paste(img.resize(size, interpolation) if size != img.size else img, ((side - size[0]) // 2, (side - size[1]) // 2))
    return canvas


def normalize(pixels: np.ndarray, pre: Preprocessing) -> np.ndarray:
    """``(..., H, W, 3)`` uint8 -> ``(..., 3, H, W)`` float32: TorchVision's ``ToTensor`` + ``Normalize``, same bits."""
    # Transposing the uint8 pixels first and normalising in place gives the same bits as
    # ToTensor + Normalize at a third of the cost of doing it on a transposed float view.
    arr = np.moveaxis(pixels, -1, -3).astype(np.float32)
    arr /= np.float32(255.0)
    arr -= np.asarray(pre.mean, dtype=np.float32)[:, None, None]
    arr /= np.asarray(pre.std, dtype=np.float32)[:, None, None]
    return arr


def transform(img: Image.Image, pre: Preprocessing, resize_crop_only: bool = False) -> np.ndarray:
    """RGB image -> CHW float32 array, exactly as TorchVision's eval preset computes it."""
    return normalize(crop_pixels(img, pre, resize_crop_only), pre)


def preprocess_pixels(
    data: bytes, pre: Preprocessing, limits: ImageLimits | None = None, fast_decode: bool = False
) -> np.ndarray:
    """Bytes -> the model's crop as uint8 ``(H, W, 3)`` pixels: what every engine takes (see ``wanwu.engines``).

    ``fast_decode`` trades exactness for speed: JPEG DCT-domain downscaling (large photos) and
    resizing only the crop (every image); its top-1 agreement is measured.
    """
    limits = limits or ImageLimits()
    with _decoding(limits):
        img = decode_image(data, limits, draft_size=pre.resize_size if fast_decode else None)
        return crop_pixels(img, pre, resize_crop_only=fast_decode)


def preprocess(data: bytes, pre: Preprocessing, limits: ImageLimits | None = None, fast_decode: bool = False) -> np.ndarray:
    """Bytes -> normalised CHW float32 model input (``preprocess_pixels`` then ``normalize``)."""
    return normalize(preprocess_pixels(data, pre, limits, fast_decode), pre)
