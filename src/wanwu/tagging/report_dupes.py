"""The report's everyday-category filter and its duplicates section (issue 25).

Categories: a card carries the ids of the categories its image scores at least ``CATEGORY_MIN`` in (a dog photo:
dog, canine, mammal, animal), and the filter shows one. Duplicates: ``wanwu.tagging.dupes`` on the output and its
vectors sidecar, the first ``MAX_GROUPS`` groups of each tier with up to ``MAX_THUMBS`` thumbnails each.
"""

from __future__ import annotations

from collections import Counter
from html import escape
from pathlib import Path

CATEGORY_MIN = 0.5
MAX_GROUPS = 100
MAX_THUMBS = 8


def card_categories(record: dict) -> str:
    """The ``data-cats`` of a card: space-separated category ids."""
    return " ".join(c["id"] for c in record.get("categories") or [] if c["score"] >= CATEGORY_MIN)


def category_options(ok: list[dict]) -> str:
    counts: Counter = Counter()
    names: dict[str, str] = {}
    for record in ok:
        for c in record.get("categories") or []:
            if c["score"] >= CATEGORY_MIN:
                counts[c["id"]] += 1
                names[c["id"]] = f"{c.get('label_zh', '')} ({c.get('label', c['id'])})"
    return "".join(f'<option value="{escape(i)}">{escape(names[i])} ({n})</option>' for i, n in counts.most_common())


def find_groups(out: str) -> list[dict]:
    """The output's duplicate groups (none if its vectors sidecar is missing: exact ones still are)."""
    from wanwu.tagging.dupes import find_dupes
    from wanwu.tagging.library import load_library

    groups = find_dupes(load_library([Path(out)]))
    kept: list[dict] = []
    for tier in ("exact", "near", "similar"):
        kept += [g for g in groups if g["tier"] == tier][:MAX_GROUPS]
    return kept


def shown_paths(groups: list[dict]) -> list[str]:
    return list(dict.fromkeys(p for g in groups for p in g["paths"][:MAX_THUMBS]))


def dupes_section(groups: list[dict], thumbs: dict[str, str | None]) -> str:
    counts = Counter(g["tier"] for g in groups)
    parts = []
    for group in groups:
        images = "".join(
            f'<figure class="dupe"><img src="{thumbs[p]}" alt="{escape(p)}"><figcaption>{escape(p)}</figcaption></figure>'
            if thumbs.get(p) else f'<figure class="dupe"><figcaption>{escape(p)}</figcaption></figure>'
            for p in group["paths"][:MAX_THUMBS])
        more = len(group["paths"]) - MAX_THUMBS
        parts.append(f'<div class="group {group["tier"]}" data-tier="{group["tier"]}"><h3>{group["tier"]} · '
                     f'{len(group["paths"])} images · distance {group["distance"]}</h3>{images}'
                     f'{f"<span class=note>and {more} more</span>" if more > 0 else ""}</div>')
    summary = ", ".join(f"{counts[t]} {t}" for t in ("exact", "near", "similar"))
    return (f'<section id="dupes"><h2>Duplicates: {summary}</h2><p class="note">exact: the same bytes; near: the same '
            f'photo edited (pHash and embedding agree); similar: the same scene or subject. '
            f'<code>wanwu dupes</code> lists every group.</p>{"".join(parts)}</section>')


CSS = """
#dupes .group{border:1px solid #e2e8f0;border-radius:6px;padding:6px;margin:8px 0}
#dupes h3{font-size:14px;margin:2px 0 6px}#dupes .dupe{display:inline-block;margin:0 8px 4px 0;width:120px;vertical-align:top}
#dupes .dupe img{display:block;max-width:112px;max-height:112px}#dupes .dupe figcaption{font-size:11px;overflow-wrap:anywhere}
#dupes .near{border-color:#dd6b20}#dupes .exact{border-color:#e53e3e}
"""
