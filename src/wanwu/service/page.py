"""The web page: server-rendered, so the plain form post works without JavaScript.

``static/app.js`` enhances it (drag-and-drop, paste, one ``/v1/classify`` request per image, the
language switch). The UI strings live in ``page_strings`` and the result cards in ``page_cards``.
"""

from __future__ import annotations

import json

from wanwu.service.page_cards import card as _card
from wanwu.service.page_cards import error_block as _error_block
from wanwu.service.page_strings import LANG_COOKIE, LANGS, STRINGS, page_lang
from wanwu.service.page_strings import esc as _e
from wanwu.service.page_strings import i18n as _text
from wanwu.service.page_strings import tr as _t

__all__ = ["LANG_COOKIE", "LANGS", "STRINGS", "page_lang", "render_page", "subtitle_for"]

_LOGO = (
    '<svg class="logo" viewBox="0 0 32 32" aria-hidden="true"><rect width="32" height="32" rx="9" fill="currentColor"/>'
    '<circle cx="16" cy="16" r="6.5" fill="none" stroke="#fff" stroke-width="2.6"/><circle cx="16" cy="16" r="2.2" fill="#fff"/>'
    '<path d="M7 11V8.5A1.5 1.5 0 0 1 8.5 7H11M21 7h2.5A1.5 1.5 0 0 1 25 8.5V11M25 21v2.5a1.5 1.5 0 0 1-1.5 1.5H21'
    'M11 25H8.5A1.5 1.5 0 0 1 7 23.5V21" fill="none" stroke="#fff" stroke-width="2" stroke-linecap="round"/></svg>'
)
_UPLOAD_ICON = (
    '<svg class="drop-icon" viewBox="0 0 48 48" aria-hidden="true"><rect x="5" y="9" width="38" height="30" rx="6" fill="none" '
    'stroke="currentColor" stroke-width="2.5"/><circle cx="17" cy="20" r="3.5" fill="currentColor"/>'
    '<path d="M9 35l10-10 7 7 5-5 8 8" fill="none" stroke="currentColor" stroke-width="2.5" stroke-linejoin="round"/></svg>'
)


def _i18n_json() -> str:
    text = json.dumps(STRINGS, ensure_ascii=False, separators=(",", ":"))
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def render_page(
    model: str | None = None,
    results: list[dict] | None = None,
    error: dict | None = None,
    *,
    lang: str = "zh",
    top_k: int = 5,
    models: list[str] | None = None,
    picked: str | None = None,
    active: dict | None = None,
) -> str:
    """``models``: the loaded models, offered in a picker when there are several (``picked`` selected);
    ``active``: the answering model's ``{"model", "classes", "imagenet"}`` (``models.class_info``), for the subtitle."""
    lang = lang if lang in LANGS else "zh"
    notice = _error_block(lang, error) if error else ""
    cards = "".join(_card(lang, model, r) for r in results or [])
    return f"""<!doctype html>
<html lang="{lang}" class=no-js>
{_head(lang)}
<body>
{_topbar(lang, model, active)}
<main class=wrap>
{_upload_form(lang, top_k, _model_picker(lang, models or [], picked))}
{_api_key_panel(lang)}
  <div id=notice class=notice>{notice}</div>
  <section class="results{" has-cards" if cards else ""}" aria-live=polite>
    <div class=results-head>{_text(lang, "results", "h2")}<button type=button id=clear-btn class=link-btn
     data-i18n=clear>{_e(_t(lang, "clear"))}</button></div>
    <div id=cards class=cards>{cards}</div>
  </section>
</main>
<footer class=page-foot>{_text(lang, "privacy")}</footer>
</body>
</html>
"""


def _head(lang: str) -> str:
    title = _e(_t(lang, "title"))
    return f"""<head>
<meta charset=utf-8>
<meta name=viewport content="width=device-width, initial-scale=1">
<meta name=color-scheme content="light dark">
<title data-i18n=title>{title}</title>
<link rel=icon href="/static/favicon.svg" type="image/svg+xml">
<link rel=stylesheet href="/static/app.css">
<script>document.documentElement.className = "js";</script>
<script type="application/json" id=i18n>{_i18n_json()}</script>
<script src="/static/app.js" defer></script>
</head>"""


def subtitle_for(lang: str, active: dict | None) -> str:
    """"1000 ImageNet classes" for an ImageNet model (or while loading); a trained model's own name and class count."""
    if not active or active.get("imagenet", True):
        return _text(lang, "subtitle", "p", " class=subtitle id=subtitle")
    values = {"model": active.get("model", ""), "n": active.get("classes", "?")}
    return _text(lang, "subtitle_trained", "p", " class=subtitle id=subtitle", values)


def _topbar(lang: str, model: str | None, active: dict | None = None) -> str:
    value = _e(model) if model else _text(lang, "loading_model")
    zh_on, en_on = ("true", "false") if lang == "zh" else ("false", "true")
    title, subtitle = _e(_t(lang, "title")), subtitle_for(lang, active)
    return f"""<header class=topbar>
  <div class=brand>{_LOGO}<div><h1 data-i18n=title>{title}</h1>{subtitle}</div></div>
  <div class=top-actions>
    <span class=model-chip title="{_e(_t(lang, "model"))}"><span class=dot></span><span
     class=model-value id=model-value>{value}</span></span>
    <div class=lang-switch role=group aria-label="Language / 语言">
      <button type=button data-lang=zh aria-pressed={zh_on} lang=zh>中文</button><button
       type=button data-lang=en aria-pressed={en_on} lang=en>English</button>
    </div>
  </div>
</header>"""


def _model_picker(lang: str, models: list[str], picked: str | None) -> str:
    """A ``<select name=model>`` in the form (posted without JavaScript too); hidden until there are two models."""
    options = "".join(
        f'<option value="{_e(m.partition("@")[0])}"{" selected" if m == picked else ""}>{_e(m)}</option>' for m in models
    )
    hidden = "" if len(models) > 1 else " hidden"
    return (f'<label class=model-picker id=model-picker-label{hidden}><span data-i18n=model>{_e(_t(lang, "model"))}</span>'
            f" <select id=model-picker name=model>{options}</select></label>")


def _upload_form(lang: str, top_k: int, picker: str = "") -> str:
    t = lambda key: _e(_t(lang, key))  # noqa: E731
    action = "/?lang=en" if lang == "en" else "/"
    return f"""  <form id=upload-form class=dropzone method=post action="{action}" enctype="multipart/form-data">
    <label for=file-input class=drop-target>
      {_UPLOAD_ICON}
      {_text(lang, "drop_title", "strong", " class=drop-title")}
      {_text(lang, "drop_hint", "span", " class=drop-hint")}
      <span class=choose-btn>{_text(lang, "choose")}</span>
      {_text(lang, "formats", "span", " class=formats")}
    </label>
    <div class=nojs-controls>
      <input type=file id=file-input name=image accept="image/*" multiple required>
      <input type=hidden name=top_k value="{int(top_k)}">
      <button type=submit class=submit-btn data-i18n=submit>{t("submit")}</button>
    </div>
    {picker}
    <noscript><p class=muted>{t("noscript")}</p></noscript>
  </form>"""


def _api_key_panel(lang: str) -> str:
    t = lambda key: _e(_t(lang, key))  # noqa: E731
    return f"""  <section id=api-key-panel class=api-key-panel hidden>
    {_text(lang, "api_key_title", "h2")}
    {_text(lang, "api_key_hint", "p", " class=muted")}
    <form id=api-key-form class=api-key-form>
      <input id=api-key-input type=password autocomplete=off data-i18n-placeholder=api_key_placeholder
       placeholder="{t("api_key_placeholder")}">
      <button type=submit data-i18n=api_key_save>{t("api_key_save")}</button>
    </form>
  </section>"""
