"""Object-less images (seeded): flat colours, noise, gradients and blur, for calibrating and testing ``unknown``.

Nothing in them is an object, so a classifier that answers them with confidence is dressing a guess as an answer
(issue 24). ``objectless_images(n)`` yields ``(kind, image)`` pairs, the same ones on every call.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from PIL import Image, ImageFilter

KINDS = ("flat", "noise", "coarse noise", "gradient", "radial gradient", "blur")
SIZE = 256


def _colour(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, 3).astype(np.float32)


def flat(rng: np.random.Generator) -> Image.Image:
    return Image.fromarray(np.broadcast_to(_colour(rng), (SIZE, SIZE, 3)).astype(np.uint8))


def noise(rng: np.random.Generator) -> Image.Image:
    grey = rng.random() < 0.3
    pixels = rng.integers(0, 256, (SIZE, SIZE, 1 if grey else 3)).repeat(3 if grey else 1, axis=2)
    return Image.fromarray(pixels.astype(np.uint8))


def coarse_noise(rng: np.random.Generator) -> Image.Image:
    cells = int(rng.integers(4, 33))
    small = rng.integers(0, 256, (cells, cells, 3)).astype(np.uint8)
    return Image.fromarray(small).resize((SIZE, SIZE), Image.Resampling.BICUBIC)


def gradient(rng: np.random.Generator) -> Image.Image:
    a, b = _colour(rng), _colour(rng)
    angle = rng.uniform(0, np.pi)
    y, x = np.mgrid[0:SIZE, 0:SIZE] / (SIZE - 1)
    t = (x * np.cos(angle) + y * np.sin(angle))
    t = (t - t.min()) / (t.max() - t.min())
    return Image.fromarray((a + (b - a) * t[..., None]).astype(np.uint8))


def radial_gradient(rng: np.random.Generator) -> Image.Image:
    a, b = _colour(rng), _colour(rng)
    cy, cx = rng.uniform(0, SIZE, 2)
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    t = np.hypot(x - cx, y - cy)
    t = t / t.max()
    return Image.fromarray((a + (b - a) * t[..., None]).astype(np.uint8))


def blur(rng: np.random.Generator) -> Image.Image:
    """Noise blurred until only soft colour blotches remain."""
    pixels = rng.integers(0, 256, (SIZE, SIZE, 3)).astype(np.uint8)
    return Image.fromarray(pixels).filter(ImageFilter.GaussianBlur(float(rng.uniform(4, 24))))


MAKERS = dict(zip(KINDS, (flat, noise, coarse_noise, gradient, radial_gradient, blur), strict=True))


def objectless_images(per_kind: int = 20, seed: int = 24) -> Iterator[tuple[str, Image.Image]]:
    rng = np.random.default_rng(seed)
    for kind in KINDS:
        for _ in range(per_kind):
            yield kind, MAKERS[kind](rng)
