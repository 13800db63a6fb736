"""The web page (server-rendered, so the plain form post works without JavaScript)."""

from __future__ import annotations

import html


def render_page(model: str | None = None, results: list[dict] | None = None, error: dict | None = None) -> str:
    rows = ""
    for result in results or []:
        if "error" in result:
            rows += f"<p class=error>{html.escape(result['error']['message'])}</p>"
            continue
        items = "".join(
            f"<li>{html.escape(p.get('label_zh', ''))} {html.escape(p.get('label', ''))} {p['score']:.1%}</li>"
            for p in result["predictions"]
        )
        rows += f"<ol>{items}</ol>"
    err = f"<p class=error>{html.escape(error['message'])}</p>" if error else ""
    return f"""<!doctype html><html lang=zh><head><meta charset=utf-8><title>万物识别</title></head><body>
<h1>万物识别</h1><p>{html.escape(model or '')}</p>
<form method=post enctype=multipart/form-data><input type=file name=image accept="image/*" multiple required>
<button type=submit>识别</button></form>{err}{rows}</body></html>"""
