"""``wanwu tag --report``: the offline HTML report in headless Chromium (filters, histogram, failed list, no network)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import FakeEngine, fake_classifier
from tests.unit.test_tagging import photo, read_jsonl
from wanwu.tagging.api import TagOptions, tag
from wanwu.tagging.report import write_report

pytestmark = pytest.mark.browser
BAD_NAME = "bad <i>&amp; 'x'.jpg"  # markup in a file name must show as text


class SpreadEngine(FakeEngine):
    """Like FakeEngine, but how sure it is also depends on the image, so some answers are low-confidence."""

    def run(self, batch: np.ndarray) -> np.ndarray:
        logits = super().run(batch)
        sureness = np.array([0.2 + (float(image.mean()) % 10) for image in batch], np.float32)
        return logits * sureness[:, None]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    tmp = tmp_path_factory.mktemp("report")
    lib = tmp / "lib"
    for i in range(40):
        photo(lib / f"album{i % 3}" / f"img{i:02d}.jpg", i)
    (lib / BAD_NAME).write_text("not an image")
    engine = SpreadEngine()
    summary = tag([lib], tmp / "tags.jsonl", options=TagOptions(decode_workers=1, batch_size=8),
                  tagger=(fake_classifier(tmp / "home", engine), [engine]))
    page = write_report(tmp / "out" / "report.html", summary)
    return page, read_jsonl(tmp / "tags.jsonl")


@pytest.fixture()
def page(chromium, report):  # type: ignore[no-untyped-def]
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    requests: list[str] = []
    errors: list[str] = []
    page = context.new_page()
    page.on("request", lambda r: requests.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(report[0].as_uri())
    yield page
    context.close()
    assert errors == [], f"JavaScript errors: {errors}"
    assert [u for u in requests if not u.startswith(("data:", "file:"))] == [], "the report must load nothing"
    assert [u for u in requests if u.startswith("file:")] == [report[0].as_uri()]


def _visible(page) -> list[str]:  # type: ignore[no-untyped-def]
    return page.eval_on_selector_all("#grid .card:not([hidden])", "cards => cards.map(c => c.dataset.index)")


def test_the_grid_shows_every_image_with_a_thumbnail(page, report) -> None:  # type: ignore[no-untyped-def]
    records = [r for r in report[1] if r["error"] is None]
    assert page.locator("#grid .card").count() == len(records) == 40
    widths = page.eval_on_selector_all("#grid img", "imgs => imgs.map(i => i.naturalWidth)")
    assert len(widths) == 40 and all(0 < w <= 112 for w in widths)
    assert page.locator("#shown").text_content() == "showing 40 of 40"
    assert "efficientnet_lite0" in page.locator("#settings").text_content()


def test_the_label_filter_and_the_histogram_bars_select_one_label(page, report) -> None:  # type: ignore[no-untyped-def]
    counts = Counter(r["predictions"][0]["index"] for r in report[1] if r["error"] is None)
    assert page.locator("#histogram .bar").count() == min(30, len(counts))
    index, n = counts.most_common(1)[0]
    page.select_option("#label-filter", str(index))
    assert _visible(page) == [str(index)] * n
    page.click("#reset")
    assert len(_visible(page)) == 40
    label, count = page.locator("#histogram .bar").nth(1).get_attribute("data-index"), counts.most_common(2)[1][1]
    page.locator("#histogram .bar rect").nth(1).click()
    assert _visible(page) == [label] * count


def test_confidence_filters_and_the_low_confidence_list(page, report) -> None:  # type: ignore[no-untyped-def]
    scores = sorted(r["predictions"][0]["score"] for r in report[1] if r["error"] is None)
    low = sum(s < 0.3 for s in scores)
    assert 0 < low < 40, "the fixture should have both confident and unsure answers"
    page.fill("#min-score", "50")
    page.dispatch_event("#min-score", "input")
    assert len(_visible(page)) == sum(s >= 0.5 for s in scores)
    page.click("#show-low")
    assert len(_visible(page)) == low == page.locator("#low table tr").count()
    assert page.locator("#grid .card.low").count() == low


def test_failed_images_are_listed_with_their_code_and_escaped(page) -> None:  # type: ignore[no-untyped-def]
    rows = page.locator("#failed table tr")
    assert rows.count() == 2
    assert rows.nth(1).locator("td").nth(0).text_content() == BAD_NAME
    assert page.locator("#failed i").count() == 0
    assert rows.nth(1).locator("code").text_content() == "unsupported_media_type"
