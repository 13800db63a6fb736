"""Duplicates, search and the vectors sidecar on synthetic data (issue 25): the indexes agree with brute force."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageEnhance

from tests.helpers import gradient_image
from wanwu.tagging.dupes import Thresholds, components, cosine_pairs, find_dupes, hash_pairs
from wanwu.tagging.library import Library, load_library
from wanwu.tagging.phash import hamming, phash
from wanwu.tagging.search import match_score, nearest, search
from wanwu.tagging.vectors import DIM, HEADER, VectorFile, embed, model_key, read_vectors, row_dtype, sidecar


def _pixels(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB").resize((224, 224)))


def test_phash_survives_edits_and_tells_images_apart() -> None:
    rng = np.random.default_rng(0)
    base = Image.fromarray((rng.random((60, 60, 3)) * 255).astype(np.uint8)).resize((448, 448), Image.Resampling.BICUBIC)
    out = io.BytesIO()
    base.save(out, "JPEG", quality=30)
    edits = [Image.open(io.BytesIO(out.getvalue())), ImageEnhance.Brightness(base).enhance(1.3), base.resize((200, 200))]
    h = phash(_pixels(base))
    assert all(int(hamming(h, phash(_pixels(e)))[0]) <= 6 for e in edits)
    other = phash(_pixels(gradient_image(448, 448)))
    assert int(hamming(h, other)[0]) > 16
    assert 0 <= h < 2**64


def test_hamming_is_popcount() -> None:
    a = np.array([0, 2**64 - 1, 0b1011], np.uint64)
    assert hamming(a, np.uint64(0)).tolist() == [0, 64, 3]


def test_hash_pairs_find_every_pair_within_3_bits() -> None:
    rng = np.random.default_rng(1)
    base = rng.integers(0, 2**63, 500, dtype=np.uint64)
    flips = np.array([sum(1 << int(b) for b in rng.choice(64, int(k), replace=False)) for k in rng.integers(0, 4, 500)],
                     np.uint64)
    hashes = np.concatenate([base, base ^ flips])
    pairs = {tuple(p) for p in hash_pairs(hashes).tolist()}
    brute = {(i, j) for i in range(len(hashes)) for j in range(i + 1, len(hashes))
             if bin(int(hashes[i]) ^ int(hashes[j])).count("1") <= 3}
    assert brute <= pairs and {(i, i + 500) for i in range(500)} <= pairs


def test_cosine_pairs_match_brute_force(monkeypatch: pytest.MonkeyPatch) -> None:
    import wanwu.tagging.dupes as dupes

    monkeypatch.setattr(dupes, "BLOCK_SCORES", 7 * 300)  # many blocks
    rng = np.random.default_rng(2)
    v = rng.standard_normal((300, 16)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    pairs, scores = cosine_pairs(v, 0.5)
    sims = v @ v.T
    brute = {(i, j) for i in range(300) for j in range(i + 1, 300) if sims[i, j] >= 0.5}
    assert {tuple(p) for p in pairs.tolist()} == brute
    assert np.allclose(scores, sims[pairs[:, 0], pairs[:, 1]], atol=1e-5)


def test_components() -> None:
    labels = components(6, np.array([[4, 5], [1, 2], [2, 4]]))
    assert labels.tolist() == [0, 1, 1, 3, 1, 1]


def test_embed_is_unit_float16_and_centred() -> None:
    logits = np.random.default_rng(3).standard_normal((4, 1000)).astype(np.float32)
    e = embed(logits)
    assert e.shape == (4, DIM) and e.dtype == np.float16
    assert np.allclose(np.linalg.norm(e.astype(np.float32), axis=1), 1, atol=1e-2)
    assert np.allclose(e.astype(np.float32), embed(logits + 7.0).astype(np.float32), atol=1e-3)  # log-softmax = same
    assert embed(logits[:, :10]).shape == (4, DIM)  # a trained model's few classes: padded


def test_vector_file_appends_repairs_and_drops_another_models_rows(tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "tags.jsonl"
    path, key = sidecar(out), model_key("m", "w" * 64)
    vecs = embed(np.random.default_rng(4).standard_normal((3, 50)))
    f = VectorFile(path, key)
    f.add(["aa" * 32, "bb" * 32], [1, 2**64 - 1], vecs[:2])
    f.add(["aa" * 32, "cc" * 32], [1, 3], vecs[[0, 2]])  # a known hash is not stored twice
    f.close()
    assert path.stat().st_size == HEADER + 3 * row_dtype().itemsize
    with open(path, "ab") as file:
        file.write(b"\1" * 100)  # a killed run's torn row
    VectorFile(path, key).close()
    stored = read_vectors(path, key)
    assert stored.sha256 == ["aa" * 32, "bb" * 32, "cc" * 32] and stored.phash.tolist() == [1, 2**64 - 1, 3]
    assert np.array_equal(stored.vectors, vecs)
    assert read_vectors(path, model_key("other", "w" * 64)).sha256 == []
    VectorFile(path, model_key("other", "w" * 64)).close()  # another model's run starts the sidecar over
    assert read_vectors(path).sha256 == []


def _library(n: int, seed: int = 5) -> Library:
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    hashes = rng.integers(0, 2**63, n, dtype=np.uint64)
    records = [{"path": f"{i}.jpg", "sha256": f"{i:064x}", "error": None} for i in range(n)]
    return Library(records, [r["path"] for r in records], hashes, vectors.astype(np.float16), np.ones(n, bool))


def test_find_dupes_tiers_never_mix() -> None:
    lib = _library(50)
    lib.records[1]["sha256"] = lib.records[0]["sha256"]  # 0 and 1: the same bytes
    lib.phash[3], lib.vectors[3] = lib.phash[2] ^ np.uint64(0b111), lib.vectors[2]  # 2 and 3: near
    mix = lib.vectors[4].astype(np.float32) * 0.8 + lib.vectors[5].astype(np.float32) * 0.6
    lib.vectors[5] = (mix / np.linalg.norm(mix)).astype(np.float16)  # 4 and 5: similar (cosine 0.8), hashes far apart
    groups = find_dupes(lib, Thresholds(near_bits=10, near_cos=0.9, similar_cos=0.7))
    assert [(g["tier"], g["paths"]) for g in groups] == [
        ("exact", ["0.jpg", "1.jpg"]), ("near", ["2.jpg", "3.jpg"]), ("similar", ["4.jpg", "5.jpg"])]
    assert groups[1]["distance"] == 3 and 0.15 < groups[2]["distance"] < 0.25
    assert [g["tier"] for g in find_dupes(lib, tiers=("near",))] == ["near"]


def test_search_matches_categories_and_labels_in_both_languages() -> None:
    dog = {"path": "d.jpg", "sha256": "a", "error": None,
           "categories": [{"id": "dog", "label": "dog", "label_zh": "狗", "score": 0.9, "parent": "canine"}],
           "predictions": [{"index": 207, "label": "golden retriever", "label_zh": "金毛猎犬", "score": 0.7}]}
    hotdog = {"path": "h.jpg", "sha256": "b", "error": None, "categories": [],
              "predictions": [{"index": 934, "label": "hotdog", "label_zh": "热狗", "score": 0.8}]}
    assert match_score(dog, "狗") == (0.9, "狗 / dog") and match_score(dog, " Dog ") is not None
    assert match_score(hotdog, "狗") is None and match_score(dog, "GOLDEN retriever")[0] == 0.7  # type: ignore[index]
    lib = Library([dog, hotdog], ["d.jpg", "h.jpg"], np.zeros(2, np.uint64), np.zeros((2, DIM), np.float16),
                  np.zeros(2, bool))
    assert [h.path for h in search(lib, "狗,热狗", 0.1)] == ["d.jpg", "h.jpg"]
    assert search(lib, "狗", 0.95) == []


def test_nearest_and_library_round_trip(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    lib = _library(20)
    out = tmp_path / "tags.jsonl"
    records = [{**r, "model": "m", "weights_sha256": "w", "precision": "fp32", "predictions": []} for r in lib.records]
    out.write_text("".join(json.dumps(r) + "\n" for r in records) + '{"torn')
    f = VectorFile(sidecar(out), model_key("m", "w"))
    f.add([r["sha256"] for r in records[:-1]], lib.phash[:-1].tolist(), lib.vectors[:-1])
    f.close()
    back = load_library([out])
    assert back.paths == lib.paths and back.missing_vectors == 1 and np.array_equal(back.vectors[:-1], lib.vectors[:-1])
    assert nearest(back, lib.vectors[7], 3)[0] == ("7.jpg", pytest.approx(1.0, abs=1e-2))
    assert nearest(back, lib.vectors[7], 3, exclude_sha=records[7]["sha256"])[0][0] != "7.jpg"
