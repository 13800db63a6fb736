"""A 64-bit perceptual hash (DCT pHash) of the crop the model sees, and Hamming distances between hashes.

Computed in the decode stage on the model's crop (``preprocess_pixels``: uint8, e.g. 224x224), so it costs a
32x32 box resize and two 32x32 matrix products per image (~30 µs), not a second decode. The crop is what a
viewer's centre shows: a resized, re-encoded, brightened or format-converted copy has the same crop up to
resampling noise (distance 0-6 of 64 bits measured); a light crop shifts it a little (see docs/tagging.md).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

SIDE = 32  # the DCT's input
KEEP = 8  # the low-frequency block kept: 8x8 = 64 bits
BITS = KEEP * KEEP


def _dct_matrix(n: int) -> np.ndarray:
    k, i = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    d = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    d[0] /= np.sqrt(2.0)
    return d.astype(np.float32)


_DCT = _dct_matrix(SIDE)[:KEEP]  # only the rows of the kept frequencies
_WEIGHTS = 1 << np.arange(BITS - 1, -1, -1, dtype=np.uint64)


def phash(pixels: np.ndarray) -> int:
    """``(H, W, 3)`` uint8 (or ``(H, W)``) -> 64-bit pHash: the 8x8 lowest DCT frequencies of a 32x32 grey
    image, each bit "above the median of the 63 non-DC coefficients"."""
    gray = pixels if pixels.ndim == 2 else pixels.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    small = np.asarray(Image.fromarray(np.clip(gray, 0, 255).astype(np.uint8)).resize((SIDE, SIDE), Image.Resampling.BOX),
                       dtype=np.float32)
    coeffs = (_DCT @ small @ _DCT.T).ravel()
    bits = coeffs > np.median(coeffs[1:])
    return int((bits.astype(np.uint64) * _WEIGHTS).sum())


def to_hex(value: int) -> str:
    return f"{value:016x}"


_POP8 = np.array([bin(i).count("1") for i in range(256)], np.uint8)


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bitwise distances between uint64 arrays (broadcast), as uint8."""
    x = np.ascontiguousarray(np.atleast_1d(np.bitwise_xor(np.asarray(a, np.uint64), np.asarray(b, np.uint64))))
    return _POP8[x.view(np.uint8).reshape(*x.shape, 8)].sum(axis=-1, dtype=np.uint8)
