"""The page's words in Chinese and English, once, and which language a visitor gets.

The server renders the strings in the page's language and embeds both tables as JSON for ``static/app.js``, so
the two never drift apart. ``{name}`` placeholders are filled from an element's ``data-i18n-vars`` (JSON).
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
        "subtitle_trained": "离线图像识别 · {model}：{n} 类",
        "maybe": "可能是",
        "not_sure_hint": "没有足够把握的答案：图中可能没有这个模型认识的物体。",
        "out_of_set_hint": "这张图不像这个模型学过的任何一类：它可能是别的东西。",
        "best_guesses": "最可能的猜测",
        "categories": "类别",
        "fine_labels": "细分类别",
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
        "subtitle_trained": "Offline image recognition · {model}: {n} classes",
        "maybe": "maybe ",
        "not_sure_hint": "No confident answer: the image may show nothing this model knows.",
        "out_of_set_hint": "This image is like none of the classes this model was taught: it may be something else.",
        "best_guesses": "Best guesses",
        "categories": "Categories",
        "fine_labels": "Fine labels",
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


LANG_COOKIE = "wanwu_lang"  # an explicit choice (the switch, or ?lang=), remembered; the script writes it too


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def tr(lang: str, key: str, values: dict | None = None) -> str:
    text = STRINGS[lang].get(key) or STRINGS["en"].get(key) or key
    for name, value in (values or {}).items():
        text = text.replace("{" + name + "}", str(value))
    return text


def i18n(lang: str, key: str, tag: str = "span", attrs: str = "", values: dict | None = None) -> str:
    """An element whose text the script swaps when the language changes (``values`` fill its placeholders)."""
    if values:
        attrs += f" data-i18n-vars='{esc(json.dumps(values, ensure_ascii=False))}'"
    return f'<{tag} data-i18n="{esc(key)}"{attrs}>{esc(tr(lang, key, values))}</{tag}>'


def page_lang(query: str | None, cookie: str | None, accept_language: str | None) -> str:
    """``?lang=`` first, then the remembered choice (cookie), then the browser's ``Accept-Language``: the preferred
    of zh and en (any other language alone: en). No header at all: Chinese."""
    for chosen in (query, cookie):
        if chosen in LANGS:
            return chosen
    if not accept_language or not accept_language.strip():
        return "zh"
    best, best_q = "en", 0.0
    for part in accept_language.split(","):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGS and q > best_q:
            best, best_q = primary, q  # equal weights: the first listed wins
    return best
