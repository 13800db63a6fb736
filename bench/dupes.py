#!/usr/bin/env python3
"""``wanwu dupes`` at library scale (issue 25): synthetic embeddings and pHashes, 10k and 100k images.

    .venv/bin/python bench/dupes.py [--sizes 10000 100000] [--json-out r.json]

Each library: unit random 256-d float16 vectors and random 64-bit pHashes, with 1 % of the images planted as
near copies of another (a vector a cosine ~0.95 away, 0-20 pHash bits flipped) and 1 % as byte-identical copies.
Times the pHash buckets, the blocked cosine search (threshold: the similar tier's) and the whole ``find_dupes``,
and checks that every planted pair is found. Prints a table naming the CPU.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wanwu.cpu import cpu_info  # noqa: E402
from wanwu.tagging.dupes import SIMILAR_COS, cosine_pairs, find_dupes, hash_pairs  # noqa: E402
from wanwu.tagging.library import Library  # noqa: E402
from wanwu.tagging.vectors import DIM  # noqa: E402


def synthetic(n: int, seed: int = 0) -> tuple[Library, int]:
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    hashes = rng.integers(0, 2**63, n, dtype=np.uint64) | (rng.integers(0, 2, n, dtype=np.uint64) << np.uint64(63))
    planted = n // 100
    src, dst = np.arange(planted), np.arange(planted, 2 * planted)
    noise = rng.standard_normal((planted, DIM)).astype(np.float32)
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    mixed = 0.95 * vectors[src] + np.sqrt(1 - 0.95**2) * noise
    vectors[dst] = mixed / np.linalg.norm(mixed, axis=1, keepdims=True)
    flips = [sum(1 << int(b) for b in rng.choice(64, int(k), replace=False)) for k in rng.integers(0, 21, planted)]
    hashes[dst] = hashes[src] ^ np.array(flips, np.uint64)
    records = [{"path": f"{i}.jpg", "sha256": f"{i:064x}", "error": None} for i in range(n)]
    for i in range(2 * planted, 3 * planted):  # byte-identical copies of images 3p..4p
        records[i]["sha256"] = records[i + planted]["sha256"]
    lib = Library(records, [r["path"] for r in records], hashes, vectors.astype(np.float16), np.ones(n, bool))
    return lib, planted


def timed(fn, *args):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - start


def run(n: int) -> dict:
    lib, planted = synthetic(n)
    unit = lib.vectors.astype(np.float32)
    buckets, t_hash = timed(hash_pairs, lib.phash)
    (pairs, _), t_cos = timed(cosine_pairs, unit, SIMILAR_COS)
    groups, t_all = timed(find_dupes, lib)
    near = {frozenset(g["paths"]) for g in groups if g["tier"] == "near"}
    found = sum(frozenset((f"{i}.jpg", f"{i + planted}.jpg")) in near for i in range(planted))
    exact = sum(g["tier"] == "exact" for g in groups)
    return {"images": n, "hash_pairs_s": round(t_hash, 2), "hash_candidates": len(buckets), "cosine_s": round(t_cos, 2),
            "cosine_pairs": len(pairs), "find_dupes_s": round(t_all, 2), "near_found": f"{found}/{planted}",
            "exact_found": f"{exact}/{planted}", "similar_groups": sum(g["tier"] == "similar" for g in groups)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    rows = [run(n) for n in args.sizes]
    print(f"wanwu dupes on {cpu_info().describe()}")
    print(f"| images | pHash buckets | candidates | cosine search | pairs ≥ {SIMILAR_COS} | find_dupes (all tiers) | near found | exact found |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['images']:,} | {r['hash_pairs_s']} s | {r['hash_candidates']:,} | {r['cosine_s']} s | {r['cosine_pairs']:,} "
              f"| {r['find_dupes_s']} s | {r['near_found']} | {r['exact_found']} |")
    if args.json_out:
        args.json_out.write_text(json.dumps({"cpu": cpu_info().describe(), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
