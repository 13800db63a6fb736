"""Search a tagged library by tag, in Chinese or English, and by image (``wanwu search``, ``wanwu similar``).

A query matches a record's everyday categories (``id``, English or Chinese name) and its predicted labels, whole
and case-insensitively: 狗 or dog matches the ``dog`` category, whose score is the sum of every dog breed's
probability, so it finds every breed; ``golden retriever`` / 金毛猎犬 matches that label. An image's score is
the best of its matches; results are ranked by it.
"""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wanwu.tagging.library import Library
from wanwu.tagging.vectors import embed

DEFAULT_MIN_SCORE = 0.2  # measured: search 狗 on the 100 ImageNet samples (docs/tagging.md)


def _norm(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().replace("_", " ").split())


@dataclass(frozen=True)
class Hit:
    path: str
    score: float
    matched: str  # the category or label that matched, as the record names it (zh / en)
    record: dict

    def as_dict(self) -> dict:
        top = (self.record.get("predictions") or [{}])[0]
        return {"path": self.path, "score": self.score, "matched": self.matched, "label": top.get("label"),
                "label_zh": top.get("label_zh")}


def _names(entry: dict, *keys: str) -> set[str]:
    return {_norm(str(entry[k])) for k in keys if entry.get(k)}


def match_score(record: dict, query: str) -> tuple[float, str] | None:
    """The best score among the record's categories and predictions that ``query`` names, and which matched."""
    wanted = _norm(query)
    best: tuple[float, str] | None = None
    entries = [(c, ("id", "label", "label_zh")) for c in record.get("categories") or []]
    entries += [(p, ("label", "label_zh")) for p in record.get("predictions") or []]
    for entry, keys in entries:
        if wanted in _names(entry, *keys) and (best is None or entry["score"] > best[0]):
            best = (float(entry["score"]), f"{entry.get('label_zh', '')} / {entry.get('label', '')}")
    return best


def search(library: Library, query: str, min_score: float = DEFAULT_MIN_SCORE) -> list[Hit]:
    """Records matching ``query`` (several words or names: separate them with ``,`` to match any), best first."""
    hits = []
    for record, path in zip(library.records, library.paths, strict=True):
        found = [m for q in query.split(",") if q.strip() and (m := match_score(record, q)) is not None]
        if found:
            score, matched = max(found)
            if score >= min_score:
                hits.append(Hit(path, score, matched, record))
    return sorted(hits, key=lambda h: (-h.score, h.path))


def nearest(library: Library, vector: np.ndarray, top: int = 10, exclude_sha: str | None = None) -> list[tuple[str, float]]:
    """The ``top`` library images closest to ``vector`` (cosine), best first; ``exclude_sha``: the query itself."""
    if not library.has_vector.any():
        return []
    cos = library.vectors.astype(np.float32) @ np.asarray(vector, np.float32)
    cos[~library.has_vector] = -np.inf
    if exclude_sha:
        cos[[r.get("sha256") == exclude_sha for r in library.records]] = -np.inf
    order = np.argsort(-cos, kind="stable")[:top]
    return [(library.paths[i], round(float(cos[i]), 4)) for i in order if np.isfinite(cos[i])]


def vector_of(library: Library, image: Path) -> tuple[np.ndarray | None, str]:
    """A file's stored embedding when the library holds its content (by SHA-256), and that hash."""
    sha = hashlib.sha256(image.read_bytes()).hexdigest()
    for row, record in enumerate(library.records):
        if record.get("sha256") == sha and library.has_vector[row]:
            return library.vectors[row], sha
    return None, sha


def embed_image(classifier: object, image: Path) -> np.ndarray:
    """A new image's embedding, from the same model's logits as the tagger's (``vectors.embed``)."""
    pixels = classifier.pixels(image)  # type: ignore[attr-defined]
    return embed(classifier.logits(pixels[None]))[0]  # type: ignore[attr-defined]
