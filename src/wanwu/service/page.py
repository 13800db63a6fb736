"""The web page: server-rendered, so the plain form post works without JavaScript.

``static/app.js`` enhances it (drag-and-drop, paste, one ``/v1/classify`` request per image, the
language switch). The UI strings live here, once: the server renders them in the page's language
and embeds both tables as JSON for the script, so the two never drift apart.
"""

from __future__ import annotations

import html
import json

LANGS = ("zh", "en")

STRINGS: dict[str, dict[str, str]] = {
    "zh": {
        "title": "万物识别",
        "subtitle": "离线图像识别 · 1000 类 ImageNet 物体",
        "model": "模型",
        "loading_model": "模型加载中…",
        "drop_title": "拖放图片到这里",
        "drop_hint": "或点击选择 · 支持多张 · 可直接粘贴 (Ctrl+V)",
        "choose": "选择图片",
        "submit": "识别",
        "formats": "JPEG、PNG、WebP、GIF、BMP、TIFF",
        "results": "识别结果",
        "clear": "清空",
        "pending": "识别中…",
        "cached": "已缓存",
        "latency": "耗时",
        "server_message": "服务器信息",
        "retry": "重试",
        "api_key_title": "需要 API 密钥",
        "api_key_hint": "该服务设置了访问密钥。输入后会保存在本浏览器中。",
        "api_key_placeholder": "API 密钥",
        "api_key_save": "保存并重试",
        "privacy": "全部在本机运行：图片不会离开这台服务器。",
        "noscript": "JavaScript 已关闭：选择图片后点击“识别”即可。",
        "no_results": "没有达到阈值的结果",
        "err.unsupported_media_type": "这不是图片文件",
        "err.payload_too_large": "文件太大了",
        "err.too_many_pixels": "图片像素太多，请缩小后再试",
        "err.corrupt_image": "图片已损坏，无法读取",
        "err.overloaded": "服务繁忙，请稍后重试",
        "err.unauthorized": "需要有效的 API 密钥",
        "err.not_ready": "模型还在加载，请稍候再试",
        "err.invalid_request": "请求无效",
        "err.inference_failed": "识别失败",
        "err.network": "无法连接到服务",
        "err.unknown": "出错了",
    },
    "en": {
        "title": "Recognize Anything",
        "subtitle": "Offline image recognition · 1000 ImageNet classes",
        "model": "Model",
        "loading_model": "Loading model…",
        "drop_title": "Drop images here",
        "drop_hint": "or click to choose · several at once · paste with Ctrl+V",
        "choose": "Choose images",
        "submit": "Recognize",
        "formats": "JPEG, PNG, WebP, GIF, BMP, TIFF",
        "results": "Results",
        "clear": "Clear",
        "pending": "Recognizing…",
        "cached": "cached",
        "latency": "Time",
        "server_message": "Server says",
        "retry": "Retry",
        "api_key_title": "API key needed",
        "api_key_hint": "This service requires a key. It is saved in this browser.",
        "api_key_placeholder": "API key",
        "api_key_save": "Save and retry",
        "privacy": "Runs entirely on this machine: images never leave this server.",
        "noscript": "JavaScript is off: choose images, then press “Recognize”.",
        "no_results": "No label above the threshold",
        "err.unsupported_media_type": "Not an image file",
        "err.payload_too_large": "The file is too large",
        "err.too_many_pixels": "The image has too many pixels; shrink it and retry",
        "err.corrupt_image": "The image is damaged and can't be read",
        "err.overloaded": "The service is busy; retry shortly",
        "err.unauthorized": "A valid API key is needed",
        "err.not_ready": "The model is still loading; retry shortly",
        "err.invalid_request": "Invalid request",
        "err.inference_failed": "Recognition failed",
        "err.network": "Can't reach the service",
        "err.unknown": "Something went wrong",
    },
}

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


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _t(lang: str, key: str) -> str:
    return STRINGS[lang].get(key) or STRINGS["en"].get(key) or key


def _text(lang: str, key: str, tag: str = "span", attrs: str = "") -> str:
    """An element whose text the script swaps when the language changes."""
    return f'<{tag} data-i18n="{_e(key)}"{attrs}>{_e(_t(lang, key))}</{tag}>'


def _error_key(code: object) -> str:
    key = f"err.{code}"
    return key if key in STRINGS["en"] else "err.unknown"


def _error_block(lang: str, error: dict) -> str:
    code = error.get("code", "")
    message = error.get("message", "")
    detail = (
        f"<p class=error-detail>{_text(lang, 'server_message')}: <span class=server-message>{_e(message)}</span></p>"
        if message
        else ""
    )
    return (
        f'<div class=error-box role=alert data-code="{_e(code)}">'
        f"<p class=error-title>{_text(lang, _error_key(code))}</p>{detail}</div>"
    )


def _label(prediction: dict) -> str:
    zh, en = prediction.get("label_zh"), prediction.get("label")
    both = " both" if zh and en else ""
    parts = (f"<span class=zh>{_e(zh)}</span>" if zh else "") + (f"<span class=en>{_e(en)}</span>" if en else "")
    return f'<span class="pred-label{both}">{parts}</span>'


def _predictions(lang: str, predictions: list[dict]) -> str:
    if not predictions:
        return f"<p class=muted>{_text(lang, 'no_results')}</p>"
    rows = []
    for rank, p in enumerate(predictions):
        score = float(p.get("score", 0.0))
        pct = f"{score * 100:.1f}%"
        width = f"{max(0.0, min(score, 1.0)) * 100:.1f}%"
        rows.append(
            f'<li class="pred{" top" if rank == 0 else ""}"><div class=pred-line>{_label(p)}'
            f"<span class=pct>{pct}</span></div>"
            f'<div class=bar role=presentation><span style="width:{width}"></span></div></li>'
        )
    return f"<ol class=preds>{''.join(rows)}</ol>"


def _card(lang: str, model: str | None, result: dict) -> str:
    name = result.get("filename") or "image"
    if "error" in result:
        body, state = _error_block(lang, result["error"]), " is-error"
        meta = ""
    else:
        body, state = _predictions(lang, result.get("predictions") or []), " is-done"
        total = (result.get("timings_ms") or {}).get("total")
        bits = [f"<span class=model-name>{_e(model)}</span>"] if model else []
        if total is not None:
            bits.append(f"<span class=latency>{_text(lang, 'latency')} {_ms(float(total))}</span>")
        if result.get("cached"):
            bits.append(f"<span class=badge>{_text(lang, 'cached')}</span>")
        meta = f"<footer class=card-meta>{''.join(bits)}</footer>"
    return (
        f'<article class="card{state} plain">'  # no thumbnail: the server does not echo uploads back
        f'<div class=card-body><h3 class=filename title="{_e(name)}">{_e(name)}</h3>{body}{meta}</div></article>'
    )


def _ms(value: float) -> str:
    return f"{value:.1f} ms" if value < 10 else f"{value:.0f} ms"


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
) -> str:
    """``models``: the loaded models, offered in a picker when there are several (``picked`` selected)."""
    lang = lang if lang in LANGS else "zh"
    notice = _error_block(lang, error) if error else ""
    cards = "".join(_card(lang, model, r) for r in results or [])
    return f"""<!doctype html>
<html lang="{lang}" class=no-js>
{_head(lang)}
<body>
{_topbar(lang, model)}
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


def _topbar(lang: str, model: str | None) -> str:
    value = _e(model) if model else _text(lang, "loading_model")
    zh_on, en_on = ("true", "false") if lang == "zh" else ("false", "true")
    title, subtitle = _e(_t(lang, "title")), _text(lang, "subtitle", "p", " class=subtitle")
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
