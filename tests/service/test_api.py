"""Every endpoint and every class of bad input, against the app with a deterministic fake engine."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import FakeEngine, encode, gradient_image
from tests.service.conftest import running_client
from wanwu.labels import get_labels
from wanwu.models import get_model_spec
from wanwu.preprocess import preprocess_pixels

PNG = encode(gradient_image(320, 240), "PNG")
JPEG = encode(gradient_image(500, 375), "JPEG")
LABELS = get_labels()


def _expected_top(data: bytes) -> int:
    return FakeEngine.expected_top(preprocess_pixels(data, get_model_spec("efficientnet_lite0").preprocessing))


def _assert_error(response, status: int, code: str, *fragments: str) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code
    for fragment in fragments:
        assert fragment in body["error"]["message"]


def test_classify_multipart_returns_labels_scores_and_timings(client) -> None:  # type: ignore[no-untyped-def]
    response = client.post("/v1/classify", files={"image": ("photo.png", PNG, "image/png")})
    assert response.status_code == 200
    body = response.json()
    assert (body["model"], body["weights_sha256"], body["engine"], body["precision"]) == (
        "efficientnet_lite0", "f" * 64, "fake", "fp32"
    )
    (result,) = body["results"]
    top = _expected_top(PNG)
    assert [p["index"] for p in result["predictions"]] == [top, (top + 1) % 1000, (top + 2) % 1000, 0, 1]
    first = result["predictions"][0]
    assert (first["label"], first["label_zh"]) == (LABELS.english[top], LABELS.chinese[top])
    scores = [p["score"] for p in result["predictions"]]
    assert scores == sorted(scores, reverse=True) and 0.6 < scores[0] < 0.7  # softmax of 8 against 997 zeros
    assert result["filename"] == "photo.png" and result["cached"] is False
    assert set(result["timings_ms"]) == {"decode", "queue", "inference", "total"}


def test_top_k_min_score_and_lang_together(client) -> None:  # type: ignore[no-untyped-def]
    response = client.post("/v1/classify?top_k=3&min_score=0.05&lang=zh", files={"image": ("a.jpg", JPEG)})
    predictions = response.json()["results"][0]["predictions"]
    assert len(predictions) == 2  # the third class scores ~0.015, under min_score
    assert all(set(p) == {"index", "label_zh", "score"} for p in predictions)
    english = client.post("/v1/classify", data={"lang": "en", "top_k": "1"}, files={"image": ("a.jpg", JPEG)}).json()
    assert set(english["results"][0]["predictions"][0]) == {"index", "label", "score"}


def test_json_base64_matches_multipart(client) -> None:  # type: ignore[no-untyped-def]
    multipart = client.post("/v1/classify", files={"image": ("a.jpg", JPEG)}).json()["results"][0]
    payload = {"images": [base64.b64encode(JPEG).decode(), {"data": "data:image/png;base64," + base64.b64encode(PNG).decode(), "filename": "b.png"}], "top_k": 2}
    results = client.post("/v1/classify", json=payload).json()["results"]
    assert [p["index"] for p in results[0]["predictions"]] == [p["index"] for p in multipart["predictions"][:2]]
    assert results[1]["filename"] == "b.png" and results[1]["predictions"][0]["index"] == _expected_top(PNG)


def test_several_images_keep_their_order_and_a_bad_one_fails_alone(client) -> None:  # type: ignore[no-untyped-def]
    files = [("image", ("a.jpg", JPEG)), ("image", ("notes.jpg", b"plain text")), ("image", ("b.png", PNG))]
    response = client.post("/v1/classify", files=files)
    assert response.status_code == 200
    first, bad, third = response.json()["results"]
    assert first["predictions"][0]["index"] == _expected_top(JPEG)
    assert (bad["filename"], bad["status"], bad["error"]["code"]) == ("notes.jpg", 415, "unsupported_media_type")
    assert third["predictions"][0]["index"] == _expected_top(PNG)


def test_identical_bytes_come_from_cache_whatever_the_options(client, engine: FakeEngine) -> None:  # type: ignore[no-untyped-def]
    warmup_calls = engine.calls_after_warmup()
    first = client.post("/v1/classify", files={"image": ("a.jpg", JPEG)}).json()["results"][0]
    second = client.post("/v1/classify?top_k=2&lang=en", files={"image": ("again.jpg", JPEG)}).json()["results"][0]
    assert (first["cached"], second["cached"]) == (False, True)
    assert [p["index"] for p in second["predictions"]] == [p["index"] for p in first["predictions"][:2]]
    assert engine.batches[warmup_calls:] == [1]


@pytest.mark.parametrize(
    ("files", "status", "code", "fragment"),
    [
        ({"image": ("doc.pdf", b"%PDF-1.7 not an image")}, 415, "unsupported_media_type", "not an image"),
        ({"image": ("empty.jpg", b"")}, 415, "unsupported_media_type", "empty"),
        ({"image": ("cut.jpg", JPEG[: len(JPEG) // 2])}, 422, "corrupt_image", "corrupt"),
        ({"photo": ("a.jpg", JPEG)}, 422, "invalid_request", "'image'"),
    ],
)
def test_bad_uploads_get_clear_4xx(client, files, status, code, fragment) -> None:  # type: ignore[no-untyped-def]
    _assert_error(client.post("/v1/classify", files=files), status, code, fragment)


def test_missing_image_field_is_422(client) -> None:  # type: ignore[no-untyped-def]
    _assert_error(client.post("/v1/classify", data={"top_k": "3"}, files={}), 415, "unsupported_media_type")
    _assert_error(client.post("/v1/classify", files={"other": ("x", b"1", "text/plain")}, data={"a": "b"}), 422, "invalid_request")
    _assert_error(client.post("/v1/classify", json={"imgs": []}), 422, "invalid_request", "'images'")
    _assert_error(client.post("/v1/classify", json={"images": []}), 422, "invalid_request", "no image")


@pytest.mark.parametrize(
    ("query", "fragment"),
    [("top_k=0", "top_k"), ("top_k=500", "WANWU_MAX_TOP_K"), ("min_score=2", "min_score"), ("lang=fr", "lang"), ("top_k=abc", "top_k")],
)
def test_wrong_option_values_are_422_naming_the_field(client, query: str, fragment: str) -> None:  # type: ignore[no-untyped-def]
    _assert_error(client.post(f"/v1/classify?{query}", files={"image": ("a.jpg", JPEG)}), 422, "invalid_request", fragment)


def test_wrong_content_type_and_bad_json_and_bad_base64(client) -> None:  # type: ignore[no-untyped-def]
    _assert_error(client.post("/v1/classify", content=JPEG, headers={"content-type": "image/jpeg"}), 415, "unsupported_media_type", "multipart/form-data")
    _assert_error(client.post("/v1/classify", content=b"{nope", headers={"content-type": "application/json"}), 422, "invalid_request", "not valid JSON")
    _assert_error(client.post("/v1/classify", json={"images": ["%%%"]}), 422, "invalid_request", "images[0] is not valid base64")
    _assert_error(client.post("/v1/classify", json={"images": [42]}), 422, "invalid_request", "images[0]")


def test_limits_are_enforced_and_named(tmp_path: Path) -> None:
    with running_client(tmp_path, max_upload_bytes=4096, max_pixels=10_000, max_images_per_request=2) as client:
        big = client.post("/v1/classify", files={"image": ("big.jpg", JPEG)})
        _assert_error(big, 413, "payload_too_large", "limit is 4,096 bytes", "WANWU_MAX_UPLOAD_BYTES")
        many_pixels = encode(gradient_image(200, 100), "PNG")
        assert len(many_pixels) < 4096
        _assert_error(client.post("/v1/classify", files={"image": ("p.png", many_pixels)}), 422, "too_many_pixels", "WANWU_MAX_PIXELS")
        three = [("image", ("a.png", b"x")) for _ in range(3)]
        _assert_error(client.post("/v1/classify", files=three), 422, "invalid_request")
        huge = b"0" * (client.app.state.wanwu.settings.max_request_bytes + 1)
        _assert_error(client.post("/v1/classify", files={"image": ("huge.jpg", huge)}), 413, "payload_too_large", "WANWU_MAX_UPLOAD_BYTES")


def test_decompression_bomb_is_422_not_a_hang(client) -> None:  # type: ignore[no-untyped-def]
    from tests.unit.test_preprocess import _png_header_only

    response = client.post("/v1/classify", files={"image": ("bomb.png", _png_header_only(100_000, 100_000))})
    _assert_error(response, 422, "too_many_pixels", "10,000,000,000 pixels")


def test_api_key_protects_v1_only(tmp_path: Path) -> None:
    with running_client(tmp_path, api_key="s3cret") as client:
        _assert_error(client.post("/v1/classify", files={"image": ("a.jpg", JPEG)}), 401, "unauthorized", "X-API-Key")
        _assert_error(client.get("/v1/models", headers={"X-API-Key": "wrong"}), 401, "unauthorized")
        assert client.post("/v1/classify", files={"image": ("a.jpg", JPEG)}, headers={"X-API-Key": "s3cret"}).status_code == 200
        assert client.get("/v1/models", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert client.get("/healthz").status_code == 200 and client.get("/readyz").status_code == 200


def test_not_ready_until_warm(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from tests.helpers import fake_classifier
    from wanwu.service.app import create_app
    from wanwu.service.settings import ServiceSettings

    engine = FakeEngine()
    engine.gate.clear()  # warm-up blocks until released
    app = create_app(ServiceSettings(home=tmp_path), classifier=fake_classifier(tmp_path, engine))
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        not_ready = client.get("/readyz")
        _assert_error(not_ready, 503, "not_ready", "still loading")
        assert not_ready.headers["retry-after"]
        _assert_error(client.post("/v1/classify", files={"image": ("a.jpg", JPEG)}), 503, "not_ready")
        engine.gate.set()
        from tests.service.conftest import wait_ready

        wait_ready(client.get)
        assert client.post("/v1/classify", files={"image": ("a.jpg", JPEG)}).status_code == 200


def test_models_health_docs_and_unknown_routes(client) -> None:  # type: ignore[no-untyped-def]
    models = client.get("/v1/models").json()
    assert models["active"]["model"] == "efficientnet_lite0"
    assert {m["name"] for m in models["models"]} == {"resnet18", "efficientnet_lite0", "efficientnet_lite2"}
    assert client.get("/healthz").json()["status"] == "alive"
    assert client.get("/readyz").json()["status"] == "ready"
    assert client.get("/docs").status_code == 200
    assert "/v1/classify" in client.get("/openapi.json").json()["paths"]
    _assert_error(client.get("/nope"), 404, "not_found")
    _assert_error(client.get("/v1/classify"), 405, "method_not_allowed")


def test_metrics_count_routes_batches_and_cache(client) -> None:  # type: ignore[no-untyped-def]
    client.post("/v1/classify", files={"image": ("a.jpg", JPEG)})
    client.post("/v1/classify", files={"image": ("a.jpg", JPEG)})
    client.post("/v1/classify", files={"image": ("x.jpg", b"junk")})
    text = client.get("/metrics").text
    assert 'wanwu_requests_total{method="POST",route="/v1/classify",status="200"} 2.0' in text
    assert 'wanwu_requests_total{method="POST",route="/v1/classify",status="415"} 1.0' in text
    assert "wanwu_cache_hits_total 1.0" in text
    assert "wanwu_batch_size_count" in text and "wanwu_queue_depth" in text
    assert 'wanwu_request_seconds_bucket{le="0.005",route="/v1/classify"}' in text


def test_plain_form_post_returns_the_page_with_results(client) -> None:  # type: ignore[no-untyped-def]
    page = client.post("/", files={"image": ("a.jpg", JPEG)})
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert LABELS.chinese[_expected_top(JPEG)] in page.text
    bad = client.post("/", files={"image": ("a.txt", b"hello")})
    assert bad.status_code == 415 and "not an image" in bad.text


def test_fuzzed_uploads_never_cause_a_5xx(client) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    seeds = [JPEG, PNG, encode(gradient_image(64, 64), "GIF"), encode(gradient_image(64, 64), "WEBP")]
    for i in range(60):
        data = bytearray(seeds[i % len(seeds)])
        for _ in range(int(rng.integers(1, 20))):
            data[int(rng.integers(0, len(data)))] = int(rng.integers(0, 256))
        if i % 3 == 0:
            data = data[: int(rng.integers(1, len(data)))]
        response = client.post("/v1/classify", files={"image": (f"f{i}.jpg", bytes(data))})
        assert response.status_code < 500, (i, response.text)


def test_plain_page_speaks_english_with_lang_en_and_keeps_it_on_post(client) -> None:  # type: ignore[no-untyped-def]
    page = client.get("/?lang=en").text
    assert '<html lang="en"' in page or "<html lang=en" in page
    assert 'action="/?lang=en"' in page
    posted = client.post("/?lang=en", files={"image": ("a.txt", b"hello")})
    assert posted.status_code == 415 and "Not an image file" in posted.text


def test_categories_unknown_and_the_view_option(client) -> None:  # type: ignore[no-untyped-def]
    """Everyday categories are summed over the full probabilities (cached with the classes); view picks what comes back."""
    from wanwu.categories import categorize, category_table

    top = _expected_top(JPEG)
    logits = np.zeros(1000)
    logits[[top, (top + 1) % 1000, (top + 2) % 1000]] = 8.0, 6.0, 4.0
    probs = np.exp(logits) / np.exp(logits).sum()
    expected = [(c.id, round(c.score, 6)) for c in categorize(probs)]

    both = client.post("/v1/classify", files={"image": ("a.jpg", JPEG)}).json()["results"][0]
    assert [(c["id"], c["score"]) for c in both["categories"]] == expected
    assert set(both) >= {"summary", "unknown", "categories", "predictions"} and both["unknown"] is False
    assert all(set(c) == {"id", "label", "label_zh", "score", "parent"} for c in both["categories"])
    table = category_table()
    assert all(c["parent"] is None or c["parent"] in table.ids for c in both["categories"])

    only = client.post("/v1/classify?view=categories&lang=en", files={"image": ("a.jpg", JPEG)}).json()["results"][0]
    assert only["cached"] is True and "predictions" not in only and only["categories"]
    assert all(set(c) == {"id", "label", "score", "parent"} for c in only["categories"])
    classes = client.post("/v1/classify", data={"view": "classes"}, files={"image": ("a.jpg", JPEG)}).json()["results"][0]
    assert "categories" not in classes and classes["predictions"] and "summary" in classes
    _assert_error(client.post("/v1/classify?view=nope", files={"image": ("a.jpg", JPEG)}), 422, "invalid_request", "view")


# ---------- the server-rendered page (the form post, no JavaScript): issue 24 ----------


def _text(fragment: str) -> str:
    import html
    import re

    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", "", fragment))).strip()


def _summaries(page: str) -> list[str]:
    import re

    return [_text(m) for m in re.findall(r'<p class="summary[^"]*">(.*?)</p>', page)]


class FlatEngine(FakeEngine):
    """Every class equally likely: no confident answer at any level."""

    def run(self, batch: np.ndarray) -> np.ndarray:
        self.batches.append(len(batch))
        return np.zeros((len(batch), 1000), np.float32)


def test_form_post_shows_the_summary_then_chips_then_labels(client) -> None:  # type: ignore[no-untyped-def]
    api = client.post("/v1/classify", files={"image": ("a.jpg", JPEG)}).json()["results"][0]
    page = client.post("/", files={"image": ("a.jpg", JPEG)}).text
    assert _summaries(page) == [api["summary"]]  # the API's line: both names on the Chinese page
    assert 'class="card is-done plain"' in page and "is-unknown" not in page
    card = page[page.index("<article"):]
    positions = [card.index(marker) for marker in ('class="summary', "class=chips", "class=preds")]
    assert positions == sorted(positions)
    head = api["categories"][0]  # the fake's answer is one sure class: its own category heads the chips
    assert f'<li class="chip head" data-id="{head["id"]}">' in card or head["parent"] is not None
    english = client.post("/", headers={"Accept-Language": "en-US,en;q=0.9"}, files={"image": ("a.jpg", JPEG)}).text
    assert '<html lang="en"' in english and ">Results<" in english and ">maybe <" in english


def test_form_post_says_not_sure_with_the_guesses_below(tmp_path: Path) -> None:
    with running_client(tmp_path, FlatEngine()) as flat:
        api = flat.post("/v1/classify", files={"image": ("grey.png", PNG)}).json()["results"][0]
        assert api["unknown"] is True
        page = flat.post("/", files={"image": ("grey.png", PNG)}).text
        assert 'class="card is-done is-unknown plain"' in page
        assert _summaries(page) == [api["summary"]] and api["summary"].startswith("不确定 not sure · 可能是")
        guesses = page[page.index("<div class=guesses>"):]
        assert "最可能的猜测" in guesses and guesses.count('<li class="pred') == 5
        english = flat.post("/?lang=en", files={"image": ("grey.png", PNG)}).text
        assert ">Best guesses<" in english and "No confident answer" in english


def test_the_page_with_a_trained_model(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient
    from PIL import Image

    from tests.helpers import fake_trained_classifier
    from tests.service.conftest import wait_ready
    from wanwu.service.app import create_app
    from wanwu.service.settings import ServiceSettings

    settings = ServiceSettings(home=tmp_path, decode_threads=1, inference_threads=1)
    with TestClient(create_app(settings, classifier=fake_trained_classifier(tmp_path))) as trained:
        wait_ready(trained.get)
        import re

        subtitle = lambda page: _text(re.search(r"<p [^>]*class=subtitle[^>]*>.*?</p>", page).group(0))  # noqa: E731
        assert subtitle(trained.get("/").text) == "离线图像识别 · tux@1：6 类"  # not "1000 类 ImageNet 物体"
        assert subtitle(trained.get("/?lang=en").text) == "Offline image recognition · tux@1: 6 classes"
        trained.cookies.clear()  # ?lang=en is remembered: back to the default
        models = trained.get("/v1/models").json()
        assert (models["active"]["classes"], models["active"]["imagenet"]) == (6, False)
        assert (models["loaded"][0]["classes"], models["loaded"][0]["imagenet"]) == (6, False)
        sure = trained.post("/", files={"image": ("hedgehog.png", PNG)}).text
        assert _summaries(sure) == ["mammals 100 %"] and "class=chips" not in sure
        assert "mammals mammals" not in _text(sure) and "鸟 birds" in _text(sure)
        flat = encode(Image.new("RGB", (64, 48), (128, 128, 128)), "PNG")
        assert trained.post("/v1/classify", files={"image": ("grey.png", flat)}).json()["results"][0]["unknown"] is True
        unsure = trained.post("/", files={"image": ("grey.png", flat)}).text
        assert "is-unknown" in unsure and _summaries(unsure) == ["不确定 not sure · 可能是mammals 40 %"]


@pytest.mark.parametrize(
    ("headers", "lang"),
    [({}, "zh"), ({"Accept-Language": "en-US,en;q=0.9"}, "en"), ({"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"}, "zh"),
     ({"Accept-Language": "fr-FR,fr;q=0.9"}, "en"), ({"Accept-Language": "fr,zh-TW;q=0.8,en;q=0.5"}, "zh"),
     ({"Accept-Language": "en-US", "Cookie": "wanwu_lang=zh"}, "zh"), ({"Accept-Language": "zh-CN", "Cookie": "wanwu_lang=en"}, "en")],
)
def test_the_page_language_follows_the_browser_until_a_choice(client, headers: dict, lang: str) -> None:  # type: ignore[no-untyped-def]
    page = client.get("/", headers=headers)
    assert f'<html lang="{lang}"' in page.text
    assert "Accept-Language" in page.headers["vary"] and "set-cookie" not in page.headers


def test_lang_in_the_query_wins_and_is_remembered(client) -> None:  # type: ignore[no-untyped-def]
    chosen = client.get("/?lang=zh", headers={"Accept-Language": "en-US"})
    assert '<html lang="zh"' in chosen.text and "wanwu_lang=zh" in chosen.headers["set-cookie"]
    client.cookies.set("wanwu_lang", "zh")
    assert '<html lang="zh"' in client.get("/", headers={"Accept-Language": "en-US"}).text
    posted = client.post("/", headers={"Accept-Language": "en-US"}, files={"image": ("a.txt", b"hello")})
    assert posted.status_code == 415 and "这不是图片文件" in posted.text
