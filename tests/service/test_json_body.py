"""The JSON classify body: images taken out before parsing give the same result at about one copy of the body."""

from __future__ import annotations

import base64
import json
import os
import tracemalloc

import pytest

from wanwu.service.errors import InvalidRequestError
from wanwu.service.json_body import image_bytes, is_marker, parse_classify_json


def _images(payload: object, blobs: dict[str, object]) -> list[tuple[str | None, bytes]]:
    assert isinstance(payload, dict)
    found = [image_bytes(entry, i, blobs) for i, entry in enumerate(payload["images"])]
    assert all(size == -1 for _, _, size in found)
    return [(name, data) for name, data, _ in found]


def test_every_way_of_sending_an_image_gives_its_bytes() -> None:
    raw = [os.urandom(3000 + i) for i in range(4)]
    b64 = [base64.b64encode(r).decode() for r in raw]
    body = json.dumps({
        "images": [b64[0], f"data:image/png;base64,{b64[1]}", {"data": b64[2], "filename": "c.jpg"}, base64.b64encode(b"tiny").decode()],
        "top_k": 3,
    }).encode()
    payload, blobs = parse_classify_json(bytearray(body), max_blobs=16, max_image_bytes=1 << 30)
    assert len(blobs) == 3  # the three long strings were taken out; the short one is parsed as usual
    assert _images(payload, blobs) == [(None, raw[0]), (None, raw[1]), ("c.jpg", raw[2]), (None, b"tiny")]
    assert payload["top_k"] == 3


def test_an_escaped_slash_falls_back_to_the_parser() -> None:
    raw = bytes(range(256)) * 20  # its base64 has '/', which some encoders write as '\/'
    body = json.dumps({"images": [base64.b64encode(raw).decode()]}).replace("/", "\\/").encode()
    payload, blobs = parse_classify_json(bytearray(body), max_blobs=16, max_image_bytes=1 << 30)
    assert blobs == {}
    assert _images(payload, blobs) == [(None, raw)]


def test_invalid_base64_is_named_by_its_index() -> None:
    good = base64.b64encode(os.urandom(2000)).decode()
    bad = "A" * 2001  # base64 alphabet, wrong length
    payload, blobs = parse_classify_json(bytearray(json.dumps({"images": [good, bad]}).encode()), max_blobs=16, max_image_bytes=1 << 30)
    image_bytes(payload["images"][0], 0, blobs)
    with pytest.raises(InvalidRequestError, match=r"images\[1\] is not valid base64"):
        image_bytes(payload["images"][1], 1, blobs)


def test_a_long_option_is_a_marker_and_not_an_image() -> None:
    body = json.dumps({"images": ["x"], "lang": "A" * 4000}).encode()
    payload, blobs = parse_classify_json(bytearray(body), max_blobs=16, max_image_bytes=1 << 30)
    assert is_marker(payload["lang"]) and not is_marker(payload["images"][0])


def test_more_blobs_than_allowed_are_left_to_the_parser() -> None:
    b64 = [base64.b64encode(os.urandom(1500)).decode() for _ in range(5)]
    payload, blobs = parse_classify_json(bytearray(json.dumps({"images": b64}).encode()), max_blobs=2, max_image_bytes=1 << 30)
    assert len(blobs) == 2
    assert [data for _, data in _images(payload, blobs)] == [base64.b64decode(b) for b in b64]


def test_a_large_body_peaks_near_one_copy_of_itself() -> None:
    tracemalloc.start()
    try:
        images = [base64.b64encode(os.urandom(6 << 20)).decode() for _ in range(4)]
        body = bytearray(json.dumps({"images": images}).encode())
        size = len(body)
        del images
        tracemalloc.reset_peak()
        payload, blobs = parse_classify_json(body, max_blobs=16, max_image_bytes=1 << 30)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(blobs) == 4 and len(body) == 0
    # body + decoded images (3/4 of it) at the worst moment, less as the body is cut back; json.loads alone
    # (text + strings, then strings + images) peaked at ~2.7x
    assert peak < 1.65 * size, f"parsing a {size:,}-byte body took {peak / size:.2f}x its size at the peak"


def test_an_image_over_the_limit_is_sized_not_decoded() -> None:
    raw = os.urandom(5000)
    body = json.dumps({"images": [base64.b64encode(raw).decode(), base64.b64encode(raw[:4999]).decode()]}).encode()
    payload, blobs = parse_classify_json(bytearray(body), max_blobs=16, max_image_bytes=4999)
    assert image_bytes(payload["images"][0], 0, blobs) == (None, b"", 5000)  # exact size, padding counted
    assert image_bytes(payload["images"][1], 1, blobs) == (None, raw[:4999], -1)
