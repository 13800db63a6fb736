"""The report's HTML: settings and speed, a label histogram (inline SVG), a filterable grid, the low-confidence
and failed images. Every value from a record is escaped; the page loads nothing from anywhere."""

from __future__ import annotations

import time
from collections import Counter
from html import escape

from wanwu.tagging.ledger import TagSummary
from wanwu.tagging.report_dupes import CSS as DUPES_CSS
from wanwu.tagging.report_dupes import card_categories, category_options

HISTOGRAM_BARS = 30

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1200px;padding:0 16px 40px;color:#1d2430}
h1{font-size:22px;margin:18px 0 4px}h2{font-size:17px;margin:26px 0 8px}.lead{color:#4a5568;margin:0}
table{border-collapse:collapse}td,th{text-align:left;padding:3px 10px 3px 0;vertical-align:top}
th{color:#4a5568;font-weight:600}code{font-size:12px}
.filters{display:flex;gap:18px;flex-wrap:wrap;align-items:center;margin:8px 0 12px}
#grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:10px}
.card{margin:0;border:1px solid #e2e8f0;border-radius:6px;padding:6px;background:#fff}
.card img{display:block;margin:0 auto;max-width:112px;max-height:112px}
.card figcaption{font-size:12px;margin-top:4px;overflow-wrap:anywhere}.card .score{color:#4a5568}
.card.low{border-color:#e53e3e}[hidden]{display:none!important}
svg text{font-size:12px;fill:#1d2430}svg .bar rect{fill:#3182ce}svg .bar:hover rect{fill:#2b6cb0}svg .bar{cursor:pointer}
.failed td{font-size:13px}.note{color:#4a5568;font-size:13px}button{font:inherit}
"""

_JS = """
(() => {
  const cards = [...document.querySelectorAll('#grid .card')];
  const label = document.getElementById('label-filter'), category = document.getElementById('category-filter');
  const min = document.getElementById('min-score'), max = document.getElementById('max-score');
  const shown = document.getElementById('shown');
  function apply() {
    const lo = Number(min.value) / 100, hi = Number(max.value) / 100;
    document.getElementById('min-score-value').textContent = min.value + '%';
    document.getElementById('max-score-value').textContent = max.value + '%';
    let n = 0;
    for (const card of cards) {
      const score = Number(card.dataset.score);
      // 'to' is exclusive except at 100 %, so 'show low confidence' (to = the threshold) is exactly the list below
      const inCategory = !category.value || card.dataset.cats.split(' ').includes(category.value);
      const ok = (!label.value || card.dataset.index === label.value) && inCategory && score >= lo && (hi >= 1 || score < hi);
      card.hidden = !ok;
      n += ok;
    }
    shown.textContent = `showing ${n} of ${cards.length}`;
  }
  for (const el of [label, category, min, max]) el.addEventListener('input', apply);
  for (const bar of document.querySelectorAll('#histogram .bar')) {
    bar.addEventListener('click', () => { label.value = bar.dataset.index; apply(); label.scrollIntoView(); });
  }
  document.getElementById('show-low').addEventListener('click', () => {
    label.value = ''; min.value = 0; max.value = max.dataset.low; apply(); label.scrollIntoView();
  });
  document.getElementById('reset').addEventListener('click', () => {
    label.value = ''; category.value = ''; min.value = 0; max.value = 100; apply();
  });
  apply();
})();
"""


def _top(record: dict) -> dict:
    return record["predictions"][0] if record["predictions"] else {"index": -1, "label": "—", "label_zh": "—", "score": 0.0}


def _name(pred: dict) -> str:
    return f"{pred['label_zh']} ({pred['label']})"


def _settings_rows(summary: TagSummary, images: int, failed: int) -> str:
    s = summary.settings
    rows = {
        "images in the output": f"{images:,} ({failed:,} failed)",
        "this run": f"tagged {summary.tagged:,}, reused {summary.reused:,}, skipped {summary.skipped:,}, "
                    f"failed {summary.failed:,} in {summary.elapsed_s:.1f} s ({summary.images_per_s:.1f} images/s)",
        "model": f"{s['model']} (weights {s['weights_sha256'][:12]}…), {s['engine']}, {s['precision']}",
        "workers": f"decode: {s['decode_workers']}, inference: {s['inference_workers']}; {s['runner']}, "
                   f"{s['cores']} cores here",
        "options": f"top-k {s['top_k']}, min-score {s['min_score']}, batch {s['batch_size']}, "
                   f"fast decode {'on' if s['fast_decode'] else 'off'}",
        "sources": ", ".join(s["sources"]),
        "output": f"{s['out']} ({s['format']}), wanwu {s['wanwu_version']}",
        "written": time.strftime("%Y-%m-%d %H:%M:%S %z"),
    }
    return "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows.items())


def _histogram(ok: list[dict]) -> tuple[str, Counter, dict[int, dict]]:
    counts: Counter = Counter()
    names: dict[int, dict] = {}
    for record in ok:
        top = _top(record)
        counts[top["index"]] += 1
        names[top["index"]] = top
    bars = counts.most_common(HISTOGRAM_BARS)
    peak = bars[0][1] if bars else 1
    row, left, width = 20, 260, 420
    parts = []
    for i, (index, n) in enumerate(bars):
        y = i * row
        name = escape(_name(names[index]))
        parts.append(
            f'<g class="bar" data-index="{index}"><title>{name}: {n}</title>'
            f'<text x="{left - 6}" y="{y + 14}" text-anchor="end">{name}</text>'
            f'<rect x="{left}" y="{y + 3}" width="{max(1.0, width * n / peak):.1f}" height="{row - 6}"></rect>'
            f'<text x="{left + width * n / peak + 6:.1f}" y="{y + 14}">{n}</text></g>'
        )
    svg = (f'<svg role="img" aria-label="top-1 label histogram" width="{left + width + 60}" '
           f'height="{max(row, len(bars) * row)}" xmlns="http://www.w3.org/2000/svg">{"".join(parts)}</svg>')
    return svg, counts, names


def _card(record: dict, thumb: str | None, low: float) -> str:
    top = _top(record)
    image = f'<img src="{thumb}" alt="{escape(record["path"])}">' if thumb else '<div class="note">(no thumbnail)</div>'
    css = "card low" if top["score"] < low else "card"
    return (f'<figure class="{css}" data-index="{top["index"]}" data-score="{top["score"]:.6f}" '
            f'data-cats="{escape(card_categories(record))}">{image}'
            f'<figcaption><b>{escape(_name(top))}</b> <span class="score">{top["score"]:.0%}</span><br>'
            f'{escape(record["path"])}</figcaption></figure>')


def _low_rows(ok: list[dict], low: float) -> str:
    lows = sorted((r for r in ok if _top(r)["score"] < low), key=lambda r: _top(r)["score"])
    return "".join(
        f"<tr><td>{escape(r['path'])}</td><td>"
        + "; ".join(f"{escape(_name(p))} {p['score']:.0%}" for p in r["predictions"][:3]) + "</td></tr>"
        for r in lows
    )


def render_page(summary: TagSummary, ok: list[dict], failed: list[dict], cards: list[tuple[dict, str | None]],
                low: float, dupes: str = "") -> str:
    svg, counts, names = _histogram(ok)
    options = "".join(f'<option value="{i}">{escape(_name(names[i]))} ({n})</option>' for i, n in counts.most_common())
    failed_rows = "".join(f"<tr><td>{escape(r['path'])}</td><td><code>{escape(r['error']['code'])}</code></td>"
                          f"<td>{escape(r['error']['message'])}</td></tr>" for r in failed)
    low_rows = _low_rows(ok, low)
    note = (f"Thumbnails for {len(cards):,} of {len(ok):,} images: every low-confidence image first, then an even "
            f"spread of the rest; every record is in {escape(summary.out)}." if len(cards) < len(ok) else "")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>wanwu tag report: {len(ok) + len(failed):,} images</title><style>{_CSS}{DUPES_CSS}</style></head><body>
<h1>wanwu tag report</h1>
<p class="lead">{len(ok) + len(failed):,} images · {len(counts):,} top-1 labels · {len(failed):,} failed</p>
<section id="settings"><h2>Settings and speed</h2>
<table>{_settings_rows(summary, len(ok) + len(failed), len(failed))}</table></section>
<section id="histogram"><h2>Top-1 labels</h2><p class="note">The {min(HISTOGRAM_BARS, len(counts))} most frequent;
click a bar to show its images.</p>{svg}</section>
<section id="browse"><h2>Images</h2><div class="filters">
<label>Category <select id="category-filter"><option value="">all categories</option>{category_options(ok)}</select></label>
<label>Label <select id="label-filter"><option value="">all labels</option>{options}</select></label>
<label>Confidence from <input type="range" id="min-score" min="0" max="100" value="0">
<output id="min-score-value">0%</output></label>
<label>below <input type="range" id="max-score" min="0" max="100" value="100" data-low="{round(low * 100)}">
<output id="max-score-value">100%</output></label>
<button id="reset" type="button">reset</button><span id="shown"></span></div>
<p class="note">{note}</p><div id="grid">{"".join(_card(r, t, low) for r, t in cards)}</div></section>
{dupes}
<section id="low"><h2>Low confidence (top-1 below {low:.0%}): {low_rows.count("<tr>"):,}</h2>
<button id="show-low" type="button">show them in the grid</button>
<table class="low">{low_rows}</table></section>
<section id="failed"><h2>Failed: {len(failed):,}</h2>
<table class="failed"><tr><th>path</th><th>code</th><th>message</th></tr>{failed_rows}</table></section>
<script>{_JS}</script></body></html>
"""
