"""One result card of the server-rendered page (the form post without JavaScript); ``static/app.js`` builds the same.

Per image: the summary line first ("猫 cat 92 % · 可能是埃及猫 Egyptian cat 39 %", the rule of
``wanwu.categories.summary``), then the everyday category chips (the headline and the other most specific ones first,
their parents de-emphasised), then the fine labels. When ``unknown`` is true the line says "不确定 not sure" and the
chips and labels are listed, de-emphasised, under "best guesses" (with why, when a trained version found the image
like none of its training images: ``out_of_set``). A name whose Chinese and English are the same (a
trained model's "mammals") is shown once. Names carry both languages; the stylesheet hides the Chinese in English.
"""

from __future__ import annotations

from wanwu.categories import category_table, most_specific, percent
from wanwu.service.page_strings import STRINGS, esc, i18n, tr

NOT_SURE = {"label": "not sure", "label_zh": "不确定"}


def _error_key(code: object) -> str:
    key = f"err.{code}"
    return key if key in STRINGS["en"] else "err.unknown"


def error_block(lang: str, error: dict) -> str:
    code = error.get("code", "")
    message = error.get("message", "")
    detail = (
        f"<p class=error-detail>{i18n(lang, 'server_message')}: <span class=server-message>{esc(message)}</span></p>"
        if message
        else ""
    )
    return (
        f'<div class=error-box role=alert data-code="{esc(code)}">'
        f"<p class=error-title>{i18n(lang, _error_key(code))}</p>{detail}</div>"
    )


def _name(item: dict, cls: str = "pred-label") -> str:
    """Both languages, each in its span (``.zh``, ``.en``); one span when they are the same or only one is given."""
    zh, en = item.get("label_zh"), item.get("label")
    if zh and en and zh != en:
        return f'<span class="{cls} both"><span class=zh>{esc(zh)}</span> <span class=en>{esc(en)}</span></span>'
    only = zh or en or ""
    kind = "zh" if any("\u4e00" <= ch <= "\u9fff" for ch in only) else "en"
    return f'<span class="{cls}"><span class={kind}>{esc(only)}</span></span>'


def headline(categories: list[dict]) -> dict | None:
    """The category a person would answer with (``wanwu.categories.headline``'s rule, on the JSON's dicts)."""
    return most_specific(categories, _id_score)


def _id_score(item: dict) -> tuple[str, float]:
    return item["id"], item["score"]


def chip_order(categories: list[dict]) -> list[tuple[dict, str]]:
    """(category, role): the headline, then the other most specific ones (no listed child) by score, then the parents
    of listed ones, nearest first (role ``parent``: de-emphasised)."""
    head = headline(categories)
    depth = category_table().depth_of
    parents = {c.get("parent") for c in categories}
    leaves = [c for c in categories if c["id"] not in parents and c is not head]
    rest = sorted((c for c in categories if c["id"] in parents and c is not head), key=lambda c: -depth.get(c["id"], 0))
    return [(c, "head") for c in ([head] if head else [])] + [(c, "leaf") for c in leaves] + [(c, "parent") for c in rest]


def _scored(item: dict, cls: str) -> str:
    return f'{_name(item, cls)} <span class=pct>{percent(item["score"])}</span>'


def _chips(lang: str, categories: list[dict]) -> str:
    if not categories:
        return ""
    items = "".join(f'<li class="chip {role}" data-id="{esc(c["id"])}">{_scored(c, "chip-label")}</li>'
                    for c, role in chip_order(categories))
    return f'<ul class=chips aria-label="{esc(tr(lang, "categories"))}">{items}</ul>'


def summary_line(lang: str, result: dict) -> str:
    """The one line, in both languages (the stylesheet shows the page's): the server's ``summary`` rule."""
    unknown = bool(result.get("unknown"))
    categories, predictions = result.get("categories") or [], result.get("predictions") or []
    not_sure = f'<span class=sum-head>{_name(NOT_SURE, "sum-label")}</span>'
    parts = []
    if unknown:
        parts.append(not_sure)
    elif (top := headline(categories)) is not None:
        parts.append(f"<span class=sum-head>{_scored(top, 'sum-label')}</span>")
    if predictions and parts:  # the top class as a "maybe"; alone (a trained model's answer), it is the headline
        maybe = i18n(lang, "maybe", attrs=" class=maybe")
        parts.append(f"<span class=sum-maybe>{maybe}{_scored(predictions[0], 'sum-label')}</span>")
    elif predictions:
        parts.append(f"<span class=sum-head>{_scored(predictions[0], 'sum-label')}</span>")
    return f'<p class="summary{" is-unknown" if unknown else ""}">{"<span class=sep> · </span>".join(parts or [not_sure])}</p>'


def predictions_list(lang: str, predictions: list[dict]) -> str:
    if not predictions:
        return f"<p class=muted>{i18n(lang, 'no_results')}</p>"
    rows = []
    for rank, p in enumerate(predictions):
        score = float(p.get("score", 0.0))
        pct = f"{score * 100:.1f}%"
        width = f"{max(0.0, min(score, 1.0)) * 100:.1f}%"
        rows.append(
            f'<li class="pred{" top" if rank == 0 else ""}"><div class=pred-line>{_name(p)}'
            f"<span class=pct>{pct}</span></div>"
            f'<div class=bar role=presentation><span style="width:{width}"></span></div></li>'
        )
    return f'<ol class=preds aria-label="{esc(tr(lang, "fine_labels"))}">{"".join(rows)}</ol>'


def answer(lang: str, result: dict) -> str:
    """Summary, chips, fine labels; under "best guesses", de-emphasised, when ``unknown``."""
    details = _chips(lang, result.get("categories") or []) + predictions_list(lang, result.get("predictions") or [])
    if result.get("unknown"):
        hint = "out_of_set_hint" if result.get("out_of_set") else "not_sure_hint"
        details = (f"<p class=not-sure-hint>{i18n(lang, hint)}</p>"
                   f"<div class=guesses>{i18n(lang, 'best_guesses', 'h4', ' class=guesses-title')}{details}</div>")
    return summary_line(lang, result) + details


def card(lang: str, model: str | None, result: dict) -> str:
    name = result.get("filename") or "image"
    if "error" in result:
        body, state = error_block(lang, result["error"]), " is-error"
        meta = ""
    else:
        body = f"<div class=card-content>{answer(lang, result)}</div>"  # as the script's cards
        state = " is-done" + (" is-unknown" if result.get("unknown") else "")
        total = (result.get("timings_ms") or {}).get("total")
        bits = [f"<span class=model-name>{esc(model)}</span>"] if model else []
        if total is not None:
            bits.append(f"<span class=latency>{i18n(lang, 'latency')} {_ms(float(total))}</span>")
        if result.get("cached"):
            bits.append(f"<span class=badge>{i18n(lang, 'cached')}</span>")
        meta = f"<footer class=card-meta>{''.join(bits)}</footer>"
    return (
        f'<article class="card{state} plain">'  # no thumbnail: the server does not echo uploads back
        f'<div class=card-body><h3 class=filename title="{esc(name)}">{esc(name)}</h3>{body}{meta}</div></article>'
    )


def _ms(value: float) -> str:
    return f"{value:.1f} ms" if value < 10 else f"{value:.0f} ms"
