"""The report's category filter and duplicates section in headless Chromium, on real photos (issue 25)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests import dupes_set
from wanwu.tagging.api import TagOptions, tag
from wanwu.tagging.report import write_report

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def report(photos_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("report-dupes")
    dupes_set.build(photos_dir, tmp / "lib")
    summary = tag([tmp / "lib"], tmp / "tags.jsonl", model="efficientnet_lite0", engine="onnxruntime",
                  home=tmp / "home", options=TagOptions(decode="threads"))
    return write_report(tmp / "report.html", summary)


def test_category_filter_and_duplicates(chromium, report: Path, photos_dir: Path, screenshot_dir) -> None:  # type: ignore[no-untyped-def]
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(report.as_uri())
    page.select_option("#category-filter", "dog")
    shown = page.eval_on_selector_all("#grid .card:not([hidden])", "cs => cs.map(c => [c.dataset.cats, c.innerText])")
    assert shown and all("dog" in cats.split() for cats, _ in shown)
    assert any("dog/dog.jpg" in text for _, text in shown) and not any("giraffe/" in text for _, text in shown)
    page.select_option("#category-filter", "")
    assert page.locator("#grid .card:not([hidden])").count() == page.locator("#grid .card").count()
    groups = page.eval_on_selector_all("#dupes .group", "gs => gs.map(g => g.dataset.tier)")
    assert groups.count("exact") == len(dupes_set.originals(photos_dir))  # each original and its byte-identical copy
    assert groups.count("near") >= 12 and "similar" not in groups[: groups.count("exact") + groups.count("near")]
    loaded = page.eval_on_selector_all("#dupes img", "is => is.map(i => i.complete && i.naturalWidth > 0)")
    assert loaded and all(loaded)
    shot = page.locator("#dupes .group.near").first.screenshot(animations="disabled")
    pixels = np.asarray(Image.open(io.BytesIO(shot)).convert("L"), np.float32)
    assert pixels.shape[1] > 400 and pixels.std() > 20  # thumbnails drawn, not an empty box
    if screenshot_dir:
        page.locator("#dupes").screenshot(path=str(screenshot_dir / "tag-report-dupes.png"), animations="disabled")
    context.close()
    assert errors == []
