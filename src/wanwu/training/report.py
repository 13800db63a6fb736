"""The HTML report of a version: one offline file (no scripts, no external links; pictures inline)."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np

from wanwu.errors import ImageError
from wanwu.preprocess import ImageLimits, decode_image
from wanwu.ranking import softmax
from wanwu.training.run import NAMED_CROP, Run

MISTAKES = 16
THUMB = 112
_STYLE = """body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}
td.n{text-align:right}.grid{display:flex;flex-wrap:wrap;gap:10px}.grid figure{margin:0;width:132px;font-size:12px}
.grid img{display:block;border:1px solid #ccc}code{background:#f4f4f4;padding:1px 4px}.dim{color:#777}"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _finetune_rows(head: dict) -> list[tuple[str, str]]:
    if "blocks" not in head:
        return []
    epochs = ", ".join(f"{r['epoch']}: {_pct(r.get('val_top1'))}" for r in head["history"])
    what = f"the base's last {head['blocks']} block(s) + a new Linear, {head['trained_parameters']:,} parameters"
    stopped = " (stopped early)" if head["stopped_early"] else ""
    return [("fine-tuned", f"{what}; best epoch {head['best_epoch']} of {head['epochs_run']}{stopped}"),
            ("validation top-1 by epoch", epochs or "—")]


def _choice_rows(choice: dict | None) -> list[tuple[str, str]]:
    """How the base and features were chosen: by cross-validation (every candidate's score), --base, or the default."""
    if not choice:
        return []
    rows = [("base and features", f"{choice['summary']}; chosen by {choice['how']}")]
    for c in choice["candidates"]:
        pair = f"{c['base']}+{c['companion']}" if c.get("companion") else c["base"]
        rows.append((f"  CV {pair} {c['features']}", f"top-1 {c['cv_top1']:.1%} ({c['correct']} of {c['images']}), "
                     f"{c['seconds']:.1f} s"))
    return rows


CROP_MEANING = {"full": "the shorter side whole, cropped square", "pad": "the whole image letterboxed on white",
               "center": "the base model's ImageNet crop"}


def _crop(pre: dict) -> str:
    """"pad: the whole image letterboxed on white (40 of 48 training images are cut-outs with transparent pixels)"."""
    crop = pre.get("crop", "full")
    why = pre.get("crop_why")
    return f"{crop}: {CROP_MEANING.get(crop, crop)}" + (f" ({why})" if why and why != NAMED_CROP else "")


def _summary(m: dict) -> str:
    metrics, unknown, ex = m.get("metrics") or {}, m.get("unknown"), m["extraction"]
    rows = [
        ("base model", f"{m['base']['model']} (weights {m['base']['weights_sha256'][:12]}…)"),
        *_choice_rows(m.get("base_choice")),
        ("crop", _crop(m["preprocessing"])),
        ("created", m["created_at"]),
        ("command", " ".join(m["command"]) or "—"),
        ("images", f"{m['data']['train_images']} training × views {', '.join(m['data']['views'])}; "
                   f"{m['data']['val_images']} validation ({m['data']['validation']})"),
        ("embeddings" if m.get("kind") != "finetune" else "activations",
         f"{ex['extracted']} extracted, {ex['cached']} from the cache"
         + (f", {ex['images_per_s']} images/s on {ex['engine']}" if ex.get("images_per_s") else "")
         + (f"; {m['head']['features']['kind']} features ({m['head']['embedding_size']:,} floats)"
            if "features" in m["head"] else "")),
        *_finetune_rows(m["head"]),
        ("stored model" if m.get("kind") == "finetune" else "stored head",
         "fitted on training + validation images, after the validation below (a held-out estimate)"
         if m["head"]["fitted_on"] == "train+val" else "fitted on the training images (the validation below is its own)"),
        ("validation top-1", _pct(metrics.get("top1"))),
        ("validation top-5", _pct(metrics.get("top5")) if metrics.get("top5") is not None else "— (5 classes or fewer)"),
        ("unknown below", "— (no validation images)" if not unknown else
         f"{unknown['threshold']:.3f}: {unknown['rule']}; flags {_pct(unknown['wrong_flagged'])} of the wrong ones"),
        ("out of set below", "— (no validation images, or a version without it)" if not m.get("out_of_set") else
         f"{m['out_of_set']['threshold']:.3f}: {m['out_of_set']['rule']}"),
        ("time", ", ".join(f"{k} {v:.1f} s" for k, v in m["timings_s"].items())),
    ]
    cells = (f"<tr><th>{_e(k)}</th><td>{f'<code>{_e(v)}</code>' if k == 'command' else _e(v)}</td></tr>" for k, v in rows)
    return "<table>" + "".join(cells) + "</table>"


def _per_class(m: dict) -> str:
    per = {c["index"]: c for c in (m.get("metrics") or {}).get("per_class", [])}
    head = "".join(f"<th>{h}</th>" for h in ("#", "label", "中文", "folder", "train", "val", "precision", "recall"))
    rows = []
    for c in m["classes"]:
        scores = per.get(c["index"], {})
        texts = (_e(c["label"]), _e(c["label_zh"]), _e(c["folder"]))
        numbers = (c["train"], c["val"], _pct(scores.get("precision")), _pct(scores.get("recall")))
        rows.append(f"<tr><td class=n>{c['index']}</td>" + "".join(f"<td>{t}</td>" for t in texts)
                    + "".join(f"<td class=n>{n}</td>" for n in numbers) + "</tr>")
    return f"<table><tr>{head}</tr>" + "".join(rows) + "</table>"


def confusion_svg(matrix: list[list[int]], labels: list[str]) -> str:
    """Rows: true class, columns: predicted; shade: share of the row; counts written where they fit."""
    n = len(labels)
    cell = max(14, min(40, 640 // max(n, 1)))
    margin = 150
    size = margin + n * cell
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{size + 10}" height="{size + 10}" font-size="11" '
             f'font-family="sans-serif" role="img" aria-label="confusion matrix">']
    rows = np.asarray(matrix, np.float64)
    shares = rows / np.maximum(rows.sum(axis=1, keepdims=True), 1)
    for i, name in enumerate(labels):
        short, at = _e(name[:22]), margin + i * cell + cell * 0.65
        parts.append(f'<text x="{margin - 4}" y="{at:.1f}" text-anchor="end">{short}</text>')
        parts.append(f'<text transform="translate({at:.1f},{margin - 4}) rotate(-60)">{short}</text>')
        for j in range(n):
            shade = int(255 - 200 * shares[i, j])
            color = f"rgb({shade},{shade},255)" if i == j else f"rgb(255,{shade},{shade})"
            x, y = margin + j * cell, margin + i * cell
            parts.append(f'<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="{color}" stroke="#ddd"/>')
            if cell >= 22 and rows[i, j]:
                parts.append(f'<text x="{x + cell / 2}" y="{y + cell * 0.65:.1f}" text-anchor="middle">{int(rows[i, j])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def thumbnail(path: Path) -> str | None:
    """A JPEG data URI of the image, at most ``THUMB`` px; None when it cannot be read."""
    try:
        img = decode_image(path.read_bytes(), ImageLimits())
    except (OSError, ImageError):
        return None
    img.thumbnail((THUMB, THUMB))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def _mistakes(run: Run, labels: list[str]) -> str:
    if run.val_logits is None:
        return "<p class=dim>No validation images.</p>"
    probs = softmax(run.val_logits)
    predicted, scores = probs.argmax(axis=1), probs.max(axis=1)
    wrong = [i for i, s in enumerate(run.data.val) if predicted[i] != s.label]
    if not wrong:
        return "<p>No mistakes on the validation images.</p>"
    figures = []
    for i in sorted(wrong, key=lambda i: -scores[i])[:MISTAKES]:
        sample, uri = run.data.val[i], thumbnail(run.data.val[i].path)
        img = f'<img src="{uri}" alt="">' if uri else "<p class=dim>(unreadable)</p>"
        figures.append(f"<figure>{img}<figcaption>true: <b>{_e(labels[sample.label])}</b><br>predicted: "
                       f"{_e(labels[predicted[i]])} ({scores[i]:.0%})<br><span class=dim>{_e(sample.path.name)}</span>"
                       "</figcaption></figure>")
    intro = f"<p>{len(wrong)} of {len(run.data.val)} wrong; the most confident mistakes first.</p>"
    return f"{intro}<div class=grid>{''.join(figures)}</div>"


def _listing(title: str, items: list[str], limit: int = 50) -> str:
    if not items:
        return ""
    more = f"<li class=dim>… and {len(items) - limit} more (see version.json)</li>" if len(items) > limit else ""
    return f"<h3>{_e(title)} ({len(items)})</h3><ul>" + "".join(f"<li>{_e(i)}</li>" for i in items[:limit]) + more + "</ul>"


def render_report(m: dict, run: Run) -> str:
    labels = [c["label"] for c in m["classes"]]
    metrics = m.get("metrics")
    matrix = confusion_svg(metrics["confusion"], labels) if metrics else "<p class=dim>No validation images.</p>"
    d = m["data"]
    conflicts = [f"{', '.join(c['classes'])}: {', '.join(c['paths'])}" for c in d["conflicts"]]
    files = (
        _listing("skipped files", [f"{s['path']}: {s['why']}" for s in d["skipped"]])
        + _listing("identical files under different classes (left out)", conflicts)
        + _listing("duplicates within a class (one kept)", [f"{x['path']} = {x['same_as']}" for x in d["duplicates"]])
        + _listing("validation files identical to training files (left out)", d["val_overlap"])
    )
    title = f"{m['name']}@{m['version']}"
    return (f"<!doctype html><html lang=en><meta charset=utf-8><title>{_e(title)} · wanwu training report</title>"
            f"<style>{_STYLE}</style><h1>{_e(title)}</h1>{_summary(m)}<h2>Classes</h2>{_per_class(m)}"
            f"<h2>Confusion matrix (validation)</h2><p class=dim>Rows: true class; columns: predicted.</p>{matrix}"
            f"<h2>Worst mistakes</h2>{_mistakes(run, labels)}<h2>Data</h2>{files or '<p>Every file was used.</p>'}</html>\n")
