"""The web page in headless Chromium: upload, errors, language, phone layout, no-JS form, offline assets."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import missing, require_module

pytestmark = pytest.mark.browser

httpx = require_module("httpx")


@pytest.fixture(scope="module")
def photo(examples_dir: Path) -> Path:
    """Any real photo will do (the page must agree with the API on it): the repo's own cat."""
    path = examples_dir / "chelsea.jpg"
    if not path.is_file():
        missing(f"{path} not found")
    return path


@pytest.fixture(scope="module")
def expected_top(live_server, photo: Path) -> dict:  # type: ignore[no-untyped-def]
    """What the JSON API says about the photo: the page must show the same top label."""
    with photo.open("rb") as fh:
        response = httpx.post(
            f"{live_server.base_url}/v1/classify", params={"top_k": 5}, files={"image": (photo.name, fh, "image/jpeg")}
        )
    assert response.status_code == 200, response.text
    return response.json()["results"][0]["predictions"][0]


@pytest.fixture
def not_an_image(tmp_path: Path) -> Path:
    path = tmp_path / "notes.jpg"
    path.write_text("these are notes, not a picture\n")
    return path


def _upload(page, *files: Path):  # type: ignore[no-untyped-def]
    page.goto("/")
    page.wait_for_selector("#model-value:has-text('onnxruntime')")
    page.set_input_files("#file-input", [str(f) for f in files])


def test_photo_shows_its_labels(new_page, live_server, photo, expected_top, screenshot_dir):  # type: ignore[no-untyped-def]
    page = new_page()
    _upload(page, photo)
    card = page.locator(".card").first
    card.locator(".preds").wait_for()
    assert "is-done" in card.get_attribute("class")
    assert card.locator(".filename").inner_text() == photo.name
    assert card.locator(".pred").count() == 5
    top = card.locator(".pred.top")
    assert top.locator(".zh").inner_text() == expected_top["label_zh"]
    assert top.locator(".en").inner_text() == expected_top["label"]
    assert top.locator(".pct").inner_text() == f"{expected_top['score'] * 100:.1f}%"
    widths = card.locator(".bar span").evaluate_all("els => els.map(e => e.getBoundingClientRect().width)")
    assert widths[0] > 0 and widths == sorted(widths, reverse=True)
    assert card.locator("img").get_attribute("src").startswith("blob:")
    meta = card.locator(".card-meta").inner_text()
    assert live_server.model in meta and "ms" in meta
    assert card.locator(".spinner").is_hidden()
    # The same photo again comes from the cache and says so.
    page.set_input_files("#file-input", str(photo))
    page.locator(".card").first.locator(".badge").wait_for()
    assert page.locator(".card").count() == 2
    assert page.locator(".card").first.locator(".badge").inner_text() == "已缓存"
    if screenshot_dir:
        page.screenshot(path=str(screenshot_dir / "desktop-zh.png"), full_page=True, animations="disabled")


def test_non_image_shows_a_friendly_error(new_page, not_an_image):  # type: ignore[no-untyped-def]
    page = new_page()
    _upload(page, not_an_image)
    card = page.locator(".card.is-error")
    card.wait_for()
    assert card.locator(".filename").inner_text() == "notes.jpg"
    assert card.locator(".error-title").inner_text() == "这不是图片文件"
    assert card.locator(".error-box").get_attribute("data-code") == "unsupported_media_type"
    assert "JPEG" in card.locator(".server-message").inner_text()  # the server's own words, too
    assert card.locator(".thumb-ext").inner_text() == "JPG"


def _chinese_ui_strings(page) -> list[str]:  # type: ignore[no-untyped-def]
    return page.evaluate(
        """() => [...document.querySelectorAll("[data-i18n], [data-i18n-placeholder]")]
            .map((n) => n.textContent + (n.placeholder || "")).filter((s) => /[\\u4e00-\\u9fff]/.test(s))"""
    )


def test_english_switch(new_page, photo, not_an_image, expected_top):  # type: ignore[no-untyped-def]
    page = new_page()
    page.goto("/")
    assert page.locator("h1").inner_text() == "万物识别"
    assert page.locator("html").get_attribute("lang") == "zh"
    assert len(_chinese_ui_strings(page)) > 10
    page.click(".lang-switch [data-lang=en]")
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("h1").inner_text() == "Recognize Anything"
    assert page.title() == "Recognize Anything"
    assert page.locator(".drop-title").inner_text() == "Drop images here"
    assert page.locator(".choose-btn").inner_text() == "Choose images"
    assert page.locator(".lang-switch [data-lang=en]").get_attribute("aria-pressed") == "true"
    assert _chinese_ui_strings(page) == []  # every UI string switched
    page.set_input_files("#file-input", [str(photo), str(not_an_image)])
    page.locator(".card.is-done").wait_for()
    page.locator(".card.is-error").wait_for()
    top = page.locator(".card.is-done .pred.top")
    assert top.locator(".zh").is_hidden()  # English only in English mode
    assert top.locator(".pred-label").inner_text() == expected_top["label"]
    assert page.locator(".card.is-error .error-title").inner_text() == "Not an image file"
    assert "Time" in page.locator(".card.is-done .card-meta").inner_text()
    # The choice sticks across a reload, and switching back turns everything Chinese again.
    page.reload()
    assert page.locator("h1").inner_text() == "Recognize Anything"
    page.click(".lang-switch [data-lang=zh]")
    assert page.locator(".drop-title").inner_text() == "拖放图片到这里"
    assert page.title() == "万物识别"


def test_phone_layout_does_not_overflow(new_page, photo, not_an_image, screenshot_dir):  # type: ignore[no-untyped-def]
    page = new_page(viewport={"width": 375, "height": 740}, device_scale_factor=2, is_mobile=True, has_touch=True)
    _upload(page, photo, not_an_image)
    page.locator(".card.is-done").wait_for()
    page.locator(".card.is-error").wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    for selector in (".topbar", ".dropzone", ".card.is-done", ".card.is-error"):
        box = page.locator(selector).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 375, selector
    if screenshot_dir:
        page.screenshot(path=str(screenshot_dir / "phone-zh.png"), full_page=True, animations="disabled")
        page.click(".lang-switch [data-lang=en]")
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        page.screenshot(path=str(screenshot_dir / "phone-en.png"), full_page=True, animations="disabled")


def test_form_works_without_javascript(new_page, live_server, photo, expected_top, not_an_image, screenshot_dir):  # type: ignore[no-untyped-def]
    page = new_page(java_script_enabled=False)
    page.goto("/")
    assert page.locator("#file-input").is_visible()
    page.set_input_files("#file-input", str(photo))
    with page.expect_navigation():
        page.click(".submit-btn")
    assert page.locator(".card.is-done .pred.top .zh").inner_text() == expected_top["label_zh"]
    assert page.locator(".card.is-done .pred").count() == 5
    if screenshot_dir:
        page.screenshot(path=str(screenshot_dir / "nojs.png"), full_page=True, animations="disabled")

    base = live_server.base_url
    with photo.open("rb") as fh:
        ok = httpx.post(base + "/", files={"image": (photo.name, fh, "image/jpeg")})
    assert ok.status_code == 200 and ok.headers["content-type"].startswith("text/html")
    assert expected_top["label_zh"] in ok.text and expected_top["label"] in ok.text

    bad = httpx.post(base + "/", files={"image": ("notes.jpg", not_an_image.read_bytes(), "image/jpeg")})
    assert bad.status_code == 415
    assert "这不是图片文件" in bad.text and "<form" in bad.text

    # Several files, one bad, with a hostile name: each gets its own card, and the name is escaped.
    files = [
        ("image", (photo.name, photo.read_bytes(), "image/jpeg")),
        ("image", ("<script>alert(1)</script>.jpg", not_an_image.read_bytes(), "image/jpeg")),
    ]
    mixed = httpx.post(base + "/", files=files)
    assert mixed.status_code == 200
    assert "<script>alert(1)</script>" not in mixed.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.jpg" in mixed.text
    assert mixed.text.count('class="card is-done') == 1 and mixed.text.count('class="card is-error') == 1


def test_page_loads_nothing_from_outside(new_page, live_server, photo):  # type: ignore[no-untyped-def]
    page = new_page()
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    _upload(page, photo)
    page.locator(".card.is-done").wait_for()
    local = (live_server.base_url + "/", f"blob:{live_server.base_url}/", "data:")
    assert urls, "no requests recorded"
    assert [u for u in urls if not u.startswith(local)] == []
    assert any(u.startswith(live_server.base_url + "/static/app.css") for u in urls)
    assert any(u.startswith(live_server.base_url + "/v1/classify?top_k=5") for u in urls)


def test_api_key_prompt_and_retry(new_page, keyed_server, photo, expected_top):  # type: ignore[no-untyped-def]
    from tests.browser.conftest import API_KEY

    page = new_page(server=keyed_server)
    page.goto("/")
    panel = page.locator("#api-key-panel")
    panel.wait_for()  # /v1/models answered 401
    page.set_input_files("#file-input", str(photo))
    card = page.locator(".card.is-error")
    card.wait_for()
    assert card.locator(".error-box").get_attribute("data-code") == "unauthorized"
    assert card.locator(".error-title").inner_text() == "需要有效的 API 密钥"
    page.fill("#api-key-input", API_KEY)
    page.click("#api-key-form button[type=submit]")
    page.locator(".card.is-done").wait_for()
    assert panel.is_hidden()
    assert page.locator(".card.is-done .pred.top .zh").inner_text() == expected_top["label_zh"]
    page.wait_for_selector("#model-value:has-text('onnxruntime')")
    assert page.evaluate("localStorage.getItem('wanwu.apiKey')") == API_KEY
    # A reload keeps the key: no prompt, and the header shows the model.
    page.reload()
    page.wait_for_selector("#model-value:has-text('onnxruntime')")
    assert panel.is_hidden()


def test_drop_and_paste(new_page, photo, expected_top):  # type: ignore[no-untyped-def]
    import base64

    page = new_page()
    page.goto("/")
    payload = base64.b64encode(photo.read_bytes()).decode()
    page.evaluate(
        """async (b64) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const transfer = (name) => {
                const dt = new DataTransfer();
                dt.items.add(new File([bytes], name, { type: "image/jpeg" }));
                return dt;
            };
            const form = document.getElementById("upload-form");
            form.dispatchEvent(new DragEvent("dragenter", { bubbles: true, cancelable: true, dataTransfer: transfer("x.jpg") }));
            if (!form.classList.contains("is-dragging")) throw new Error("no drag highlight");
            form.dispatchEvent(new DragEvent("drop", { bubbles: true, cancelable: true, dataTransfer: transfer("dropped.jpg") }));
            document.body.dispatchEvent(new ClipboardEvent("paste", { bubbles: true, cancelable: true, clipboardData: transfer("pasted.jpg") }));
        }""",
        payload,
    )
    page.locator(".card.is-done").nth(1).wait_for()
    names = page.locator(".card .filename").all_inner_texts()
    assert sorted(names) == ["dropped.jpg", "pasted.jpg"]
    assert page.locator(".card .pred.top .zh").all_inner_texts() == [expected_top["label_zh"]] * 2
    assert "is-dragging" not in (page.locator("#upload-form").get_attribute("class") or "")
    page.click("#clear-btn")
    assert page.locator(".card").count() == 0
    assert page.locator(".results").is_hidden()
