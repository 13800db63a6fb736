"""Cut-outs with transparency of everyday things, rendered from the Noto Color Emoji font: a proxy for issue 24's set.

Issue 24 measures few-shot `wanwu train` on cut-out photos (with transparency) of everyday objects; that set is not
available here. This one is drawn, not photographed, so it is only a proxy: 6 everyday classes, each a hand-picked
list of emojis that really belong to it (base emojis only: no skin-tone, gender or "oncoming" variants, one emoji
per species or kind, so that near-duplicates do not leak between the training and the test images). Each emoji is
rendered from Debian's font (`apt-get install fonts-noto-color-emoji`: Google's Noto Color Emoji, colour bitmaps,
licensed under the SIL Open Font License 1.1) on a transparent canvas, cropped to its alpha, padded and enlarged
to 224 px: an RGBA PNG whose background is transparent (wanwu composites it on white).
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

import numpy as np

FONT = Path(os.environ.get("WANWU_EMOJI_FONT", "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"))
SIZE = 109  # the font's one bitmap size (CBDT strikes are 136 × 128 px at 109 pt)
PIXELS = 224
PAD = 0.06  # of the cropped glyph's longer side, on each side

# Class folder (`english|中文`, as tests/fashion.py names them) -> its emojis, each rendered as one glyph by the font.
MEMBERS: dict[str, tuple[str, ...]] = {
    "mammal|哺乳动物": (
        "🐒", "🦍", "🦧", "🐕", "🐺", "🦊", "🦝", "🐈", "🦁", "🐅", "🐆", "🐎", "🫎", "🫏", "🦓", "🦌", "🦬", "🐂",
        "🐃", "🐄", "🐖", "🐗", "🐑", "🐐", "🐪", "🦙", "🦒", "🐘", "🦏", "🦛", "🐁", "🐀", "🐹", "🐇", "🐿️",
        "🦫", "🦔", "🦇", "🐻", "🐻‍❄️", "🐨", "🐼", "🦥", "🦦", "🦨", "🦘", "🦡", "🐋", "🐬", "🦭",
    ),
    "produce|蔬果": (
        "🍇", "🍈", "🍉", "🍊", "🍋", "🍌", "🍍", "🥭", "🍎", "🍐", "🍑", "🍒", "🍓", "🫐", "🥝", "🍅", "🫒",
        "🥥", "🥑", "🍆", "🥔", "🥕", "🌽", "🌶️", "🫑", "🥒", "🥬", "🥦", "🧄", "🧅", "🥜", "🫘", "🌰", "🫚",
        "🫛", "🍄‍🟫",
    ),
    "ground vehicle|陆地车辆": (
        "🚂", "🚃", "🚄", "🚅", "🚆", "🚇", "🚈", "🚊", "🚝", "🚞", "🚋", "🚌", "🚎", "🚐", "🚑", "🚒", "🚓",
        "🚕", "🚗", "🚙", "🛻", "🚚", "🚛", "🚜", "🏎️", "🏍️", "🛵", "🛺", "🚲", "🛴",
    ),
    "clothing and footwear|服装鞋帽": (
        "🥼", "🦺", "👔", "👕", "👖", "🧣", "🧤", "🧥", "🧦", "👗", "👘", "🥻", "🩱", "🩲", "🩳", "👙", "👚",
        "🎽", "🥋", "🩴", "👞", "👟", "🥾", "🥿", "👠", "👡", "🩰", "👢", "👒", "🎩", "🎓", "🧢", "⛑️",
    ),
    "prepared food|熟食": (
        "🍞", "🥐", "🥖", "🫓", "🥨", "🥯", "🥞", "🧇", "🍖", "🍗", "🥓", "🍔", "🍟", "🍕", "🌭", "🥪", "🌮",
        "🌯", "🫔", "🥙", "🧆", "🍳", "🥘", "🍲", "🫕", "🥗", "🍿", "🍱", "🍙", "🍛", "🍜", "🍝", "🍢", "🍣",
        "🍤", "🥟", "🍠",
    ),
    "sports equipment|体育用品": (
        "⚽", "⚾", "🏀", "🏐", "🏈", "🏉", "🎾", "🥏", "🎳", "🏏", "🏑", "🏒", "🥍", "🏓", "🏸", "🥊", "🥅",
        "⛳", "⛸️", "🎣", "🤿", "🎿", "🛷", "🥌", "🪁", "🛹", "🛼", "🏹", "🪃", "🎱", "🎯",
    ),
}
CLASSES: tuple[str, ...] = tuple(MEMBERS)


def available() -> bool:
    return FONT.is_file()


@cache
def _font():  # type: ignore[no-untyped-def]
    from PIL import ImageFont

    return ImageFont.truetype(str(FONT), SIZE)


def render(emoji: str):  # type: ignore[no-untyped-def]
    """One emoji -> an RGBA cut-out, PIXELS square: the glyph cropped to its alpha, padded, on transparency.

    Raises ValueError when the font does not draw it as one glyph (a character it lacks draws nothing; a sequence
    it does not join draws one glyph per part, wider than one advance).
    """
    from PIL import Image, ImageDraw

    font = _font()
    width = font.getlength(emoji)
    canvas = Image.new("RGBA", (round(width) + 40, 180), (0, 0, 0, 0))
    ImageDraw.Draw(canvas).text((20, 20), emoji, font=font, embedded_color=True)
    box = canvas.getbbox(alpha_only=True)
    if box is None or width > font.getlength("🐕") * 1.5:
        raise ValueError(f"{emoji!r} ({' '.join(f'U+{ord(c):04X}' for c in emoji)}) is not one glyph in {FONT}")
    glyph = canvas.crop(box)
    side = round(max(glyph.size) * (1 + 2 * PAD))
    square = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    square.paste(glyph, ((side - glyph.width) // 2, (side - glyph.height) // 2))
    return square.resize((PIXELS, PIXELS), Image.Resampling.LANCZOS)


def write_split(dst_train: Path, dst_test: Path, per_class: int, seed: int) -> None:
    """Per class, the members shuffled with the seed: the first ``per_class`` to ``dst_train/<class>/<n>.png``,
    all the others to ``dst_test/<class>/<n>.png`` (n: the member's place in MEMBERS)."""
    rng = np.random.default_rng(seed)
    for name, members in MEMBERS.items():
        order = rng.permutation(len(members))
        for dst, picked in ((dst_train, order[:per_class]), (dst_test, order[per_class:])):
            (dst / name).mkdir(parents=True, exist_ok=True)
            for n in picked:
                render(members[n]).save(dst / name / f"{n:02d}.png")
