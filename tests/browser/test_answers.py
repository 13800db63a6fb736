"""The answer on the page (issue 24): the summary line first, everyday category chips above the fine labels, an honest
"not sure", a trained model's own classes and threshold, and the language the browser asks for (or the one chosen)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.browser.conftest import LiveServer, _serve
from tests.helpers import encode, fake_trained_classifier, gradient_image, missing, require_module

pytestmark = pytest.mark.browser

httpx = require_module("httpx")
Image = require_module("PIL.Image")


@pytest.fixture(scope="module")
def photo(examples_dir: Path) -> Path:
    path = examples_dir / "chelsea.jpg"  # a cat: "猫 cat" with its parents, and a fine breed
    if not path.is_file():
        missing(f"{path} not found")
    return path


@pytest.fixture(scope="module")
def grey(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An object-less image: one flat grey."""
    path = tmp_path_factory.mktemp("grey") / "grey.png"
    Image.new("RGB", (320, 240), (128, 128, 128)).save(path)
    return path


@pytest.fixture(scope="module")
def detailed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("detailed") / "hedgehog.png"
    path.write_bytes(encode(gradient_image(320, 240), "PNG"))
    return path


@pytest.fixture(scope="module")
def trained_server(shared_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The app serving only a fake trained version: 6 classes, its own threshold, "mammals" in both languages."""
    classifier = fake_trained_classifier(tmp_path_factory.mktemp("tux"))
    with _serve(shared_home, tmp_path_factory.getbasetemp(), classifier=classifier) as server:
        yield server


def _api(server: LiveServer, path: Path, lang: str = "both") -> dict:
    with path.open("rb") as fh:
        response = httpx.post(f"{server.base_url}/v1/classify", params={"top_k": 5, "lang": lang},
                              files={"image": (path.name, fh, "image/png")})
    assert response.status_code == 200, response.text
    return response.json()["results"][0]


def _upload(page, server: LiveServer, *files: Path):  # type: ignore[no-untyped-def]
    page.goto("/")
    page.wait_for_selector(f"#model-value:has-text('{server.model}')")
    page.set_input_files("#file-input", [str(f) for f in files])
    card = page.locator(".card").first
    card.locator(".summary").wait_for()
    return card


def _check_screenshot(path: Path, page, selector: str) -> None:  # type: ignore[no-untyped-def]
    """The screenshot is not blank, and the element (the chips, the "not sure" line) is drawn in it: not one flat colour."""
    pixels = np.asarray(Image.open(path).convert("L"), np.float32)
    assert pixels.std() > 10, f"{path} looks blank"
    box = page.locator(selector).first.bounding_box()
    assert box and box["width"] > 20 and box["height"] > 10, selector
    x, y = int(box["x"]), int(box["y"] + page.evaluate("window.scrollY"))
    region = pixels[y:y + int(box["height"]), x:x + int(box["width"])]
    assert region.size and region.std() > 10, f"{selector} is not visible in {path}"


def test_a_confident_photo_shows_the_summary_then_chips_then_labels(  # type: ignore[no-untyped-def]
    new_page, live_server, photo, tmp_path, screenshot_dir
) -> None:
    both, english = _api(live_server, photo), _api(live_server, photo, "en")
    assert both["unknown"] is False and both["categories"]
    page = new_page()
    card = _upload(page, live_server, photo)
    assert "is-unknown" not in card.get_attribute("class")
    # The same line as the API's summary, in the page's language (both names in Chinese, English alone in English).
    assert card.locator(".summary").inner_text() == both["summary"]
    order = card.evaluate("c => [...c.querySelectorAll('.summary, .chips, .preds')].map(n => n.className.split(' ')[0])")
    assert order == ["summary", "chips", "preds"]
    head = card.locator(".chip.head")
    assert head.locator(".zh").inner_text() == "猫" and head.locator(".en").inner_text() == "cat"
    assert card.locator(".chip").first.get_attribute("data-id") == "cat"  # the most specific first
    parents = card.locator(".chip.parent").evaluate_all("els => els.map(e => e.dataset.id)")
    assert "animal" in parents and "mammal" in parents  # de-emphasised, after
    weight = lambda sel: card.locator(sel).first.evaluate("e => parseFloat(getComputedStyle(e).fontSize)")  # noqa: E731
    assert weight(".chip.parent") < weight(".chip.head")
    assert card.locator(".pred").count() == 5 and card.locator(".guesses").count() == 0
    shot = tmp_path / "confident-zh.png"
    page.screenshot(path=str(shot), full_page=True, animations="disabled")
    _check_screenshot(shot, page, ".card .chips")
    page.click(".lang-switch [data-lang=en]")
    assert card.locator(".summary").inner_text() == english["summary"]
    assert card.locator(".chip.head").inner_text() == f"cat {round(next(c['score'] for c in both['categories'] if c['id'] == 'cat') * 100)} %"
    if screenshot_dir:
        page.screenshot(path=str(screenshot_dir / "answer-confident-en.png"), full_page=True, animations="disabled")


def test_an_object_less_image_is_not_sure(new_page, live_server, grey, tmp_path, screenshot_dir) -> None:  # type: ignore[no-untyped-def]
    answer = _api(live_server, grey)
    assert answer["unknown"] is True
    page = new_page()
    card = _upload(page, live_server, grey)
    assert "is-unknown" in card.get_attribute("class")
    summary = card.locator(".summary")
    assert summary.locator(".sum-head").inner_text() == "不确定 not sure"
    assert summary.inner_text() == answer["summary"]
    assert card.locator(".not-sure-hint").is_visible()
    guesses = card.locator(".guesses")
    assert guesses.locator(".guesses-title").inner_text() == "最可能的猜测"
    assert guesses.locator(".pred").count() == 5  # still listed, de-emphasised
    assert float(guesses.evaluate("e => getComputedStyle(e).opacity")) < 1
    shot = tmp_path / "not-sure-zh.png"
    page.screenshot(path=str(shot), full_page=True, animations="disabled")
    _check_screenshot(shot, page, ".card .summary .sum-head")
    page.click(".lang-switch [data-lang=en]")
    assert summary.locator(".sum-head").inner_text() == "not sure"
    assert guesses.locator(".guesses-title").inner_text().lower() == "best guesses"
    if screenshot_dir:
        page.screenshot(path=str(screenshot_dir / "answer-not-sure-en.png"), full_page=True, animations="disabled")


def test_a_trained_model_shows_its_own_classes_and_threshold(  # type: ignore[no-untyped-def]
    new_page, trained_server, detailed, grey, tmp_path, screenshot_dir
) -> None:
    page = new_page(trained_server)
    _upload(page, trained_server, grey, detailed)
    page.locator(".card.is-done").nth(1).wait_for()
    subtitle = page.locator(".subtitle")
    assert "1000" not in subtitle.inner_text() and "ImageNet" not in subtitle.inner_text()
    assert subtitle.inner_text() == "离线图像识别 · tux@1：6 类"
    sure, unsure = (page.locator(".card", has=page.locator(f".filename:text-is('{f.name}')")) for f in (detailed, grey))
    assert sure.locator(".summary").inner_text() == "mammals 100 %"  # once, not "mammals mammals"
    assert sure.locator(".chips").count() == 0  # a trained model has no ImageNet categories
    assert sure.locator(".pred.top .pred-label").inner_text() == "mammals"
    assert sure.locator(".pred").nth(1).locator(".pred-label").inner_text() == "鸟 birds"
    # The hedgehog case: "mammals 40 %" is under the model's own threshold, so the page says "not sure".
    assert "is-unknown" in unsure.get_attribute("class")
    assert unsure.locator(".summary").inner_text() == "不确定 not sure · 可能是mammals 40 %"
    assert "mammals mammals" not in page.locator("#cards").inner_text()
    shot = tmp_path / "trained-zh.png"
    page.screenshot(path=str(shot), full_page=True, animations="disabled")
    _check_screenshot(shot, page, ".card.is-unknown .summary .sum-head")
    page.click(".lang-switch [data-lang=en]")
    assert subtitle.inner_text() == "Offline image recognition · tux@1: 6 classes"
    assert unsure.locator(".summary").inner_text() == "not sure · maybe mammals 40 %"
    if screenshot_dir:
        page.screenshot(path=str(screenshot_dir / "answer-trained-en.png"), full_page=True, animations="disabled")


def test_out_of_set_says_why_it_is_not_sure(new_page, trained_server, grey) -> None:  # type: ignore[no-untyped-def]
    """The script's card for a result with ``out_of_set`` (a real one: tests/integration/test_train.py); the API's
    answer for the grey image is marked so, as a version with out-of-set evidence answers a photo unlike its classes."""
    page = new_page(trained_server)
    with grey.open("rb") as fh:  # Playwright's route.fetch() drops a multipart body: ask the API here
        answer = httpx.post(f"{trained_server.base_url}/v1/classify", params={"top_k": 5},
                            files={"image": (grey.name, fh, "image/png")}).json()
    answer["results"][0]["out_of_set"] = True
    assert answer["results"][0]["unknown"] is True

    def mark(route) -> None:  # type: ignore[no-untyped-def]
        route.fulfill(json=answer)

    page.route("**/v1/classify*", mark)
    card = _upload(page, trained_server, grey)
    page.locator(".card.is-done").first.wait_for()
    assert "is-unknown" in card.get_attribute("class")
    assert card.locator(".not-sure-hint").inner_text() == "这张图不像这个模型学过的任何一类：它可能是别的东西。"
    page.click(".lang-switch [data-lang=en]")
    assert card.locator(".not-sure-hint").inner_text().startswith("This image is like none of the classes")
    page.unroute("**/v1/classify*")
    plain = _upload(page, trained_server, grey)
    page.locator(".card.is-done").first.wait_for()
    assert plain.locator(".not-sure-hint").inner_text().startswith("No confident answer")


def test_the_browser_language_decides_until_a_choice_is_made(new_page, live_server) -> None:  # type: ignore[no-untyped-def]
    english = new_page(locale="en-US")
    response = english.goto("/")
    assert '<html lang="en"' in response.text()  # server-rendered in English, not switched by the script
    assert english.locator("h1").inner_text() == "Recognize Anything"
    assert english.locator(".subtitle").inner_text() == "Offline image recognition · 1000 ImageNet classes"
    chinese = new_page(locale="zh-CN")
    chinese.goto("/")
    assert chinese.locator("html").get_attribute("lang") == "zh" and chinese.locator("h1").inner_text() == "万物识别"
    # An English browser that picks 中文 keeps it: the server renders Chinese next time, and the script agrees.
    english.click(".lang-switch [data-lang=zh]")
    assert english.locator("h1").inner_text() == "万物识别"
    again = english.goto("/")
    assert '<html lang="zh"' in again.text()
    assert english.locator("h1").inner_text() == "万物识别" and english.locator("html").get_attribute("lang") == "zh"
    # ?lang= is a choice too, remembered the same way.
    chinese.goto("/?lang=en")
    assert chinese.locator("h1").inner_text() == "Recognize Anything"
    chinese.goto("/")
    assert chinese.locator("h1").inner_text() == "Recognize Anything"
    assert chinese.evaluate("localStorage.getItem('wanwu.lang')") == "en"


def test_without_javascript_the_answer_is_the_same(new_page, live_server, photo, grey) -> None:  # type: ignore[no-untyped-def]
    page = new_page(java_script_enabled=False)
    page.goto("/")
    page.set_input_files("#file-input", [str(photo), str(grey)])
    with page.expect_navigation():
        page.click(".submit-btn")
    cards = page.locator(".card.is-done")
    assert cards.count() == 2
    assert cards.nth(0).locator(".summary").inner_text() == _api(live_server, photo)["summary"]
    assert cards.nth(0).locator(".chip.head").get_attribute("data-id") == "cat"
    assert "is-unknown" in cards.nth(1).get_attribute("class")
    assert cards.nth(1).locator(".summary").inner_text() == _api(live_server, grey)["summary"]
    assert cards.nth(1).locator(".guesses .pred").count() == 5
