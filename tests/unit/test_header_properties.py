"""Property: whatever an image header claims, decoding answers an (224, 224, 3) crop or an ImageError, nothing else."""

from __future__ import annotations

import struct
import zlib

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wanwu.errors import ImageError
from wanwu.models import get_model_spec
from wanwu.preprocess import ImageLimits, preprocess_pixels

PRE = get_model_spec("efficientnet_lite0").preprocessing
LIMITS = ImageLimits(max_pixels=4_000_000)  # keeps each example small; the limit itself is tested elsewhere
SIZES = st.one_of(st.integers(0, 300), st.sampled_from([1, 255, 256, 65535, 65536, 1 << 20, (1 << 31) - 1, (1 << 32) - 1]))
PROPERTY = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _decodes_or_refuses(data: bytes) -> None:
    try:
        pixels = preprocess_pixels(data, PRE, LIMITS)
    except ImageError:
        return
    assert pixels.shape == (224, 224, 3) and pixels.dtype == np.uint8


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


@PROPERTY
@given(SIZES, SIZES, st.sampled_from([1, 2, 4, 8, 16, 3, 0, 255]), st.sampled_from([0, 2, 3, 4, 6, 1, 7]),
       st.integers(0, 2), st.integers(0, 2), st.integers(0, 2), st.binary(max_size=300), st.booleans())
def test_png_headers(width, height, depth, color, compression, filter_, interlace, pixels, palette) -> None:  # type: ignore[no-untyped-def]
    ihdr = struct.pack(">IIBBBBB", width & 0xFFFFFFFF, height & 0xFFFFFFFF, depth, color, compression, filter_, interlace)
    plte = _chunk(b"PLTE", bytes(range(48))) if palette else b""
    data = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + plte + _chunk(b"IDAT", zlib.compress(pixels)) + _chunk(b"IEND", b"")
    _decodes_or_refuses(data)


@PROPERTY
@given(st.integers(-(1 << 31), (1 << 31) - 1), st.integers(-(1 << 31), (1 << 31) - 1), st.sampled_from([0, 1, 4, 8, 16, 24, 32, 64]),
       st.integers(0, 7), st.integers(0, 1 << 20), st.integers(0, 300), st.binary(max_size=400))
def test_bmp_headers(width, height, bpp, compression, offset, colours, rest) -> None:  # type: ignore[no-untyped-def]
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, bpp, compression, len(rest), 2835, 2835, colours, 0)
    data = b"BM" + struct.pack("<IHHI", 14 + len(info) + len(rest), 0, 0, offset) + info + rest
    _decodes_or_refuses(data)


@PROPERTY
@given(SIZES, SIZES, st.integers(0, 255), SIZES, SIZES, st.binary(max_size=300))
def test_gif_headers(screen_w, screen_h, flags, frame_w, frame_h, lzw) -> None:  # type: ignore[no-untyped-def]
    table = bytes(3 * (2 << (flags & 7))) if flags & 0x80 else b""
    frame = b"\x2c" + struct.pack("<HHHHB", 0, 0, frame_w & 0xFFFF, frame_h & 0xFFFF, 0) + b"\x02" + bytes([min(255, len(lzw))]) + lzw[:255] + b"\x00"
    data = b"GIF89a" + struct.pack("<HHBBB", screen_w & 0xFFFF, screen_h & 0xFFFF, flags, 0, 0) + table + frame + b";"
    _decodes_or_refuses(data)


@PROPERTY
@given(st.lists(st.tuples(st.sampled_from([256, 257, 258, 259, 262, 273, 277, 278, 279, 284, 317, 322, 323, 324, 325, 338, 339]),
                          st.integers(1, 12), st.integers(0, 1 << 20), st.integers(0, (1 << 32) - 1)), min_size=1, max_size=14),
       st.binary(max_size=400), st.booleans())
def test_tiff_headers(entries, payload, little) -> None:  # type: ignore[no-untyped-def]
    e = "<" if little else ">"
    ifd = struct.pack(e + "H", len(entries)) + b"".join(struct.pack(e + "HHII", t, k, n, v) for t, k, n, v in sorted(entries))
    data = (b"II*\x00" if little else b"MM\x00*") + struct.pack(e + "I", 8) + ifd + struct.pack(e + "I", 0) + payload
    _decodes_or_refuses(data)


@PROPERTY
@given(st.integers(0, 65535), st.integers(0, 65535), st.sampled_from([0, 1, 8, 12, 16]), st.integers(0, 5), st.binary(max_size=300))
def test_jpeg_frame_headers(width, height, precision, components, scan) -> None:  # type: ignore[no-untyped-def]
    comps = b"".join(bytes([i + 1, 0x11, 0]) for i in range(components))
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 8 + 3 * components, precision, height, width, components) + comps
    dqt = b"\xff\xdb" + struct.pack(">H", 67) + b"\x00" + bytes(range(1, 65))
    data = b"\xff\xd8" + dqt + sof + b"\xff\xda" + struct.pack(">HB", 6 + 2 * components, components) + bytes(2 * components) + b"\x00\x3f\x00" + scan + b"\xff\xd9"
    _decodes_or_refuses(data)
