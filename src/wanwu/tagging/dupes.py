"""Duplicates in a tagged library, in three tiers that never mix (``wanwu dupes``).

- ``exact``: the same bytes (the records' SHA-256);
- ``near``: the same photo resized, re-encoded, lightly cropped, brightened or converted: pHash within
  ``NEAR_BITS`` bits *and* embedding cosine at least ``NEAR_COS`` (both, measured in docs/tagging.md);
- ``similar``: the same scene or subject: cosine at least ``SIMILAR_COS`` between images not in one near group.

Nothing is O(n²) in Python. Candidate pairs come from two indexes, both vectorised: pHash buckets (multi-index
hashing: the 64 bits in 4 bands of 16; two hashes within 3 bits share a band exactly, most within ~10 do) and a
blocked exact cosine search (one float32 matrix product per block of rows against the rows after it: n²·d/2
multiply-adds in BLAS, ~0.3 GB of scores at a time). Groups are connected components (vectorised union-find).
One content (a SHA-256) is one node: identical files are the exact tier, and join near/similar groups together.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from wanwu.tagging.library import Library
from wanwu.tagging.phash import hamming

NEAR_BITS = 22  # of 64: a light crop moves the model's crop, and its pHash, by up to ~22 bits
NEAR_COS = 0.75  # edited copies measured >= 0.83; different photos <= 0.55
SIMILAR_COS = 0.65  # second shots of one scene: 90 % of pairs grouped, no other photo (docs/tagging.md)
TIERS = ("exact", "near", "similar")
BANDS = 4
MAX_BUCKET = 256  # a band value shared by more hashes (flat, blank images) is left to the cosine search
BLOCK_SCORES = 1 << 26  # scores (float32) per block of the cosine search: 256 MiB


@dataclass(frozen=True)
class Thresholds:
    near_bits: int = NEAR_BITS
    near_cos: float = NEAR_COS
    similar_cos: float = SIMILAR_COS


def hash_pairs(hashes: np.ndarray) -> np.ndarray:
    """Pairs ``(i, j)``, i < j, of hashes equal on at least one of ``BANDS`` 16-bit bands (int64 ``(m, 2)``)."""
    found = []
    for band in range(BANDS):
        keys = (hashes >> np.uint64(16 * band)) & np.uint64(0xFFFF)
        order = np.argsort(keys, kind="stable")
        ordered = keys[order]
        starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
        sizes = np.diff(np.r_[starts, len(ordered)])
        small = np.repeat(sizes <= MAX_BUCKET, sizes)
        for offset in range(1, int(min(sizes.max(initial=1), MAX_BUCKET))):
            same = (ordered[offset:] == ordered[:-offset]) & small[offset:]
            at = np.flatnonzero(same)
            found.append(np.stack([order[at], order[at + offset]], axis=1))
    return _unique_pairs(np.concatenate(found) if found else np.zeros((0, 2), np.int64))


def _unique_pairs(pairs: np.ndarray) -> np.ndarray:
    if not len(pairs):
        return np.zeros((0, 2), np.int64)
    pairs = np.sort(pairs.astype(np.int64), axis=1)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    return np.unique(pairs, axis=0)


def cosine_pairs(vectors: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Pairs ``(i, j)``, i < j, of unit vectors with cosine >= ``threshold``, and their cosines (exact search)."""
    n = len(vectors)
    unit = np.ascontiguousarray(vectors, np.float32)
    block = max(16, BLOCK_SCORES // max(n, 1))
    pairs, scores = [], []
    for start in range(0, n, block):
        rows = unit[start:start + block]
        sims = rows @ unit[start:].T  # only the columns from here on: each pair once
        r, c = np.nonzero(sims >= threshold)
        keep = c > r  # above the diagonal
        pairs.append(np.stack([r[keep] + start, c[keep] + start], axis=1))
        scores.append(sims[r[keep], c[keep]])
    if not pairs:
        return np.zeros((0, 2), np.int64), np.zeros(0, np.float32)
    return np.concatenate(pairs).astype(np.int64), np.concatenate(scores)


def components(n: int, edges: np.ndarray) -> np.ndarray:
    """Connected components: per node, the smallest node of its component (vectorised union-find)."""
    labels = np.arange(n)
    if not len(edges):
        return labels
    a, b = edges[:, 0], edges[:, 1]
    while True:
        low = np.minimum(labels[a], labels[b])
        before = labels.copy()
        np.minimum.at(labels, a, low)
        np.minimum.at(labels, b, low)
        labels = labels[labels]  # pointer jumping
        if np.array_equal(labels, before):
            return labels


def find_dupes(library: Library, thresholds: Thresholds = Thresholds(), tiers: tuple[str, ...] = TIERS) -> list[dict]:
    """Groups ``{"tier", "paths", "distance"}``: exact first, then near, then similar; largest groups first.

    ``distance``: 0 for exact; for near, the largest pHash distance (bits) between linked images; for similar,
    the largest cosine distance (1 - cosine) between linked images."""
    by_sha: dict[str, list[str]] = defaultdict(list)
    for record, path in zip(library.records, library.paths, strict=True):
        if record.get("sha256") and not record.get("error"):
            by_sha[record["sha256"]].append(path)
    groups = [{"tier": "exact", "paths": sorted(p), "distance": 0} for p in by_sha.values() if len(p) > 1]
    nodes = _nodes(library)
    if ("near" in tiers or "similar" in tiers) and len(nodes) > 1:
        node_paths = [by_sha[library.records[row]["sha256"]] for row in nodes]
        groups += _linked(library.phash[nodes], library.vectors[nodes], node_paths, thresholds, tiers)
    order = {tier: n for n, tier in enumerate(TIERS)}
    return sorted((g for g in groups if g["tier"] in tiers), key=lambda g: (order[g["tier"]], -len(g["paths"]), g["paths"]))


def _nodes(library: Library) -> np.ndarray:
    """One row per content with a vector (the first record of each SHA-256)."""
    seen: set[str] = set()
    rows = []
    for row, (record, has) in enumerate(zip(library.records, library.has_vector, strict=True)):
        if has and record["sha256"] not in seen:
            seen.add(record["sha256"])
            rows.append(row)
    return np.array(rows, np.int64)


def _linked(hashes: np.ndarray, vectors: np.ndarray, paths: list[list[str]], t: Thresholds, tiers: tuple[str, ...]) -> list[dict]:
    unit = vectors.astype(np.float32)
    by_hash = hash_pairs(hashes)
    by_vector, _ = cosine_pairs(unit, min(t.near_cos, t.similar_cos))
    pairs = _unique_pairs(np.concatenate([by_hash, by_vector]))
    cos = np.einsum("ij,ij->i", unit[pairs[:, 0]], unit[pairs[:, 1]]) if len(pairs) else np.zeros(0, np.float32)
    bits = hamming(hashes[pairs[:, 0]], hashes[pairs[:, 1]]) if len(pairs) else np.zeros(0, np.uint8)
    near = (bits <= t.near_bits) & (cos >= t.near_cos)
    labels = components(len(hashes), pairs[near])
    groups = list(_groups("near", labels, pairs[near], bits[near].astype(float), paths)) if "near" in tiers else []
    if "similar" in tiers:
        linked = (cos >= t.similar_cos) & (labels[pairs[:, 0]] != labels[pairs[:, 1]])
        merged = components(len(hashes), np.concatenate([pairs[near], pairs[linked]]))
        groups += _groups("similar", merged, pairs[linked], 1.0 - cos[linked], paths)
    return groups


def _groups(tier: str, labels: np.ndarray, edges: np.ndarray, distances: np.ndarray, paths: list[list[str]]) -> Iterator[dict]:
    worst: dict[int, float] = defaultdict(float)
    for label, distance in zip(labels[edges[:, 0]].tolist(), distances.tolist(), strict=True):
        worst[label] = max(worst[label], distance)
    members: dict[int, list[int]] = defaultdict(list)
    for node in np.flatnonzero(np.isin(labels, list(worst))).tolist():
        members[int(labels[node])].append(node)
    for label, nodes in members.items():
        distance = worst[label]
        yield {"tier": tier, "paths": sorted(p for node in nodes for p in paths[node]),
               "distance": int(distance) if tier == "near" else round(float(distance), 4)}
