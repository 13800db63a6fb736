"""examples/: the photos the repo ships are listed with a redistributable licence, decode, and stay small."""

from __future__ import annotations

from pathlib import Path

from wanwu.preprocess import decode_image

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
FREE_LICENCES = {"public domain", "CC0"}


def _licence_rows() -> dict[str, dict[str, str]]:
    """The first table of examples/README.md (file, what it shows, author, licence, source), keyed by file."""
    lines = (EXAMPLES / "README.md").read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| file |"))
    header = [cell.strip() for cell in lines[start].strip("|").split("|")]
    rows = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = dict(zip(header, (cell.strip() for cell in line.strip("|").split("|")), strict=True))
        rows[cells["file"]] = cells
    return rows


def test_every_shipped_photo_is_listed_with_a_free_licence() -> None:
    rows = _licence_rows()
    shipped = sorted(p.name for p in EXAMPLES.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    assert 5 <= len(shipped) <= 8
    assert sorted(rows) == shipped
    for name, row in rows.items():
        assert row["licence"] in FREE_LICENCES, name
        assert row["author"] and row["source"], name


def test_every_listed_photo_decodes_and_is_small() -> None:
    total = 0
    for name in _licence_rows():
        data = (EXAMPLES / name).read_bytes()
        img = decode_image(data)
        assert img.mode == "RGB" and min(img.size) >= 224, name
        assert len(data) <= 300_000, name
        total += len(data)
    assert total <= 1_500_000
