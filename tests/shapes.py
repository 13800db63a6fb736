"""Synthesized ImageFolder sets for the training tests: coloured shapes on noisy backgrounds (seeded, tiny PNGs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

# folder name -> (colour, shape); folder names mix `english|中文` and a plain Chinese name on purpose
SHAPES = {
    "blue square|蓝色方块": ((40, 80, 220), "square"),
    "green triangle|绿色三角": ((40, 170, 60), "triangle"),
    "红色圆形": ((220, 40, 40), "circle"),
}


def shape_image(colour: tuple[int, int, int], shape: str, rng: np.random.Generator, size: int = 64) -> Image.Image:
    background = rng.integers(150, 256, (size, size, 3), dtype=np.uint8)
    img = Image.fromarray(background, "RGB")
    draw = ImageDraw.Draw(img)
    r = int(rng.integers(size // 6, size // 3))
    cx, cy = (int(v) for v in rng.integers(r, size - r, 2))
    jitter = tuple(int(np.clip(c + rng.integers(-25, 26), 0, 255)) for c in colour)
    if shape == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=jitter)
    elif shape == "square":
        draw.rectangle((cx - r, cy - r, cx + r, cy + r), fill=jitter)
    else:
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=jitter)
    return img


def write_shapes(root: Path, per_class: int = 8, seed: int = 0, classes: dict | None = None, start: int = 0) -> Path:
    """``root/<class>/<n>.png``; ``start`` numbers the files (to add images to an existing set)."""
    rng = np.random.default_rng(seed)
    for folder, (colour, shape) in (classes or SHAPES).items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        for i in range(start, start + per_class):
            shape_image(colour, shape, rng).save(root / folder / f"{i:03d}.png")
    return root
