"""The page's model picker (``serve --model A --model B``): each upload goes to the model picked."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.conftest import LiveServer, _serve
from tests.shapes import write_shapes

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def two_models(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Path]]:
    """efficientnet_lite0 (the default) and shapes@1, trained here on synthesized shapes."""
    from wanwu.cli import main

    home, data = tmp_path_factory.mktemp("picker-home"), tmp_path_factory.mktemp("picker-shapes")
    write_shapes(data, per_class=6)
    assert main(["--home", str(home), "train", str(data), "--name", "shapes", "--threads", "2"]) == 0
    probe = next(write_shapes(tmp_path_factory.mktemp("probe"), per_class=1, seed=4).glob("红色圆形/*.png"))
    with _serve(home, tmp_path_factory.getbasetemp(), extra_models=["shapes@1"]) as server:
        yield server, probe


def test_the_picked_model_answers(new_page, two_models) -> None:  # type: ignore[no-untyped-def]
    server, probe = two_models
    page = new_page(server)
    page.goto("/")
    page.wait_for_selector("#model-value:has-text('onnxruntime')")
    picker = page.locator("#model-picker")
    assert picker.is_visible()
    assert picker.locator("option").all_inner_texts() == ["efficientnet_lite0", "shapes@1"]
    picker.select_option("shapes")
    page.set_input_files("#file-input", str(probe))
    card = page.locator(".card").first
    card.locator(".preds").wait_for()
    assert "shapes@1" in card.locator(".card-meta").inner_text()
    assert card.locator(".pred.top .zh").inner_text() == "红色圆形"
    picker.select_option("efficientnet_lite0")
    page.set_input_files("#file-input", str(probe))
    page.locator(".card").nth(1).wait_for()
    newest = page.locator(".card").first
    newest.locator(".preds").wait_for()
    assert "efficientnet_lite0" in newest.locator(".card-meta").inner_text()
