"""``wanwu tag --report report.html``: one offline HTML file about a tagged library.

Thumbnails are small JPEG data URIs (no file beside the page, nothing fetched), the label histogram is
inline SVG, and the filters are a few lines of plain JavaScript. A large library gets thumbnails for a
sample (every low-confidence image first, then an even spread of the rest, ``limit`` in all); the
histogram, the counts and the failed list cover every image.
"""

from __future__ import annotations

import base64
import io
import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from PIL import Image

from wanwu.cpu import usable_cores
from wanwu.errors import ImageError
from wanwu.preprocess import ImageLimits, decode_image
from wanwu.store import write_file
from wanwu.tagging.ledger import TagSummary
from wanwu.tagging.report_dupes import dupes_section, find_groups, shown_paths
from wanwu.tagging.report_page import render_page
from wanwu.tagging.writers import latest_only

THUMB_SIZE = 112
_THUMB_LIMITS = ImageLimits(max_bytes=256 * 1024 * 1024, max_pixels=64_000_000)


def thumbnail(path: str) -> str | None:
    """A JPEG data URI at most ``THUMB_SIZE`` pixels a side, upright; None for a file that no longer decodes."""
    try:
        with open(path, "rb") as file:
            img = decode_image(file.read(), _THUMB_LIMITS, draft_size=THUMB_SIZE)  # JPEG: decoded at 1/2-1/8 scale
    except (OSError, ImageError):
        return None
    img.thumbnail((THUMB_SIZE, THUMB_SIZE), Image.Resampling.BILINEAR, reducing_gap=2.0)
    buffer = io.BytesIO()
    img.save(buffer, "JPEG", quality=70, optimize=True)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def top_score(record: dict) -> float:
    return record["predictions"][0]["score"] if record["predictions"] else 0.0


def choose(records: list[dict], limit: int, low: float) -> list[dict]:
    """The images that get a thumbnail: every low-confidence one first, then an even spread of the rest."""
    lows = [r for r in records if top_score(r) < low]
    rest = [r for r in records if top_score(r) >= low]
    picked = lows[:limit]
    room = limit - len(picked)
    if room > 0 and rest:
        step = max(1.0, len(rest) / room)
        picked += [rest[int(i * step)] for i in range(min(room, len(rest)))]
    return sorted(picked, key=lambda r: r["path"])


def current_records(summary: TagSummary) -> Iterator[dict]:
    """The output's last record per image, for this run's model and weights (any precision: a run at ``auto`` takes
    records of every precision of them, and on Ray each node resolves its own)."""
    from wanwu.tagging.api import open_output

    settings = summary.settings
    key = (settings["model"], settings["weights_sha256"])
    output = open_output(Path(summary.out), settings["format"])
    try:
        for record in latest_only(output.read):
            if (record["model"], record["weights_sha256"]) == key:
                yield record
    finally:
        output.close()


def thumbnails(paths: list[str], workers: int | None = None) -> list[str | None]:
    if not paths:
        return []
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers or usable_cores(), mp_context=context) as pool:
        return list(pool.map(thumbnail, paths, chunksize=16))


def write_report(path: Path, summary: TagSummary, limit: int = 3000, low: float = 0.3) -> Path:
    """Write the report for ``summary``'s output (atomically) and return its path."""
    records = list(current_records(summary))
    ok = [r for r in records if r["error"] is None]
    failed = [r for r in records if r["error"] is not None]
    chosen = choose(ok, limit, low)
    base = summary.settings["base"]
    groups = find_groups(summary.out)
    extra = [p for p in shown_paths(groups) if p not in {r["path"] for r in chosen}]
    thumbs = thumbnails([os.path.join(base, p) for p in [r["path"] for r in chosen] + extra])
    by_path = dict(zip([r["path"] for r in chosen] + extra, thumbs, strict=True))
    page = render_page(summary, ok, failed, [(r, by_path[r["path"]]) for r in chosen], low,
                       dupes_section(groups, by_path))
    write_file(path, page, in_store=False)
    return path
