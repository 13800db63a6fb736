"""/docs and /redoc render in headless Chromium with every request outside the server refused (an offline machine)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


@pytest.mark.parametrize(("path", "rendered"), [("/docs", "[id^='operations-classify-']"), ("/redoc", "text=Classify one or more images")])
def test_api_docs_render_offline(new_page, live_server, path: str, rendered: str) -> None:  # type: ignore[no-untyped-def]
    page = new_page()
    outside: list[str] = []

    def route(r):  # type: ignore[no-untyped-def]
        if r.request.url.startswith(live_server.base_url + "/"):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.goto(path)
    page.locator(rendered).first.wait_for()
    # ReDoc's sidebar badge ("API docs by Redocly") has its picture on Redocly's CDN: offline the badge
    # shows no picture, and nothing else is asked of the internet.
    assert [u for u in outside if u != "https://cdn.redoc.ly/redoc/logo-mini.svg"] == []
