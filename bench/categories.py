#!/usr/bin/env python3
"""Everyday categories (issue 24): what they cost a request, and the numbers behind the ``unknown`` rule.

    .venv/bin/python bench/categories.py [--model efficientnet_lite0] [--engine openvino] [--runs 200] [--json-out r.json]

Cost: one request is an image's bytes -> decode and crop -> the engine -> its answer; timed on the 100 ImageNet
samples with the answer as before (top 5 classes) and as now (plus categories, ``unknown`` and the summary), the
median of ``--runs`` requests each. Goal: categories add < 2 % (docs/categories.md).

Calibration: on the labelled samples and ../shared/data/photos plus the object-less images of tests/objectless.py,
the share flagged ``unknown``, category top-1, and for the kinds issue 24 lists, the share of photos whose right
everyday category scores >= 0.4.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a file: bench/ and tests/ are not installed, import them from this checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.objectless import KINDS, objectless_images  # noqa: E402

from bench.suite.common import SHARED, write_json  # noqa: E402
from wanwu.categories import category_table, unknown_batch  # noqa: E402
from wanwu.classifier import Classifier  # noqa: E402
from wanwu.ranking import label, rank, softmax  # noqa: E402

ISSUE_KINDS = ("dog", "cat", "bird", "fish", "insect", "reptile", "car", "boat", "aircraft", "fruit", "instrument",
               "furniture", "clothing")
HAND_LABELLED = {"dog.jpg": "dog", "eagle.jpg": "bird"}  # ../shared/data/photos whose kind is plain


def time_requests(clf: Classifier, images: list[bytes], runs: int) -> dict:
    """Median seconds per request, as before and with categories; requests alternate so drift hits both alike."""
    def before(data: bytes) -> object:
        return [label(r, clf.labels) for r in rank(clf.logits(clf.preprocess(data)[None]), 5)]

    def after(data: bytes) -> object:
        (result,) = clf.results(clf.logits(clf.preprocess(data)[None]), 5)
        return result.summary("both")

    for data in images[:5]:
        before(data), after(data)
    times: dict[str, list[float]] = {"before": [], "after": []}
    for n in range(runs):
        data = images[n % len(images)]
        for name, fn in (("before", before), ("after", after)) if n % 2 else (("after", after), ("before", before)):
            start = time.perf_counter()
            fn(data)
            times[name].append(time.perf_counter() - start)
    logits = clf.logits(clf.preprocess(images[0])[None])
    start = time.perf_counter()
    for _ in range(1000):
        clf.results(logits, 5)[0].summary("both")
    with_categories = (time.perf_counter() - start) / 1000
    start = time.perf_counter()
    for _ in range(1000):
        [label(r, clf.labels) for r in rank(logits, 5)]
    plain = (time.perf_counter() - start) / 1000
    request = statistics.median(times["before"])
    paired = statistics.median(a - b for a, b in zip(times["after"], times["before"], strict=True))
    return {"request_ms": request * 1e3, "with_categories_ms": statistics.median(times["after"]) * 1e3,
            "added": paired / request, "answer_ms": plain * 1e3, "answer_with_categories_ms": with_categories * 1e3,
            "added_by_the_answer": (with_categories - plain) / request}


def probabilities(clf: Classifier, images: list) -> np.ndarray:
    rows = [softmax(clf.logits(np.stack([clf.pixels(i) for i in images[s : s + 16]]))) for s in range(0, len(images), 16)]
    return np.concatenate(rows)


def calibration(clf: Classifier) -> dict:
    table = category_table()
    samples = sorted((SHARED / "data" / "imagenet-samples").glob("*.JPEG"))
    photos = sorted((SHARED / "data" / "photos").glob("*.jpg")) + sorted(Path("examples").glob("*.jpg"))
    targets = [clf.labels.index_of_wnid(p.name.split("_")[0]) for p in samples]
    real = probabilities(clf, [*samples, *photos])
    generated = list(objectless_images(40))
    blank = probabilities(clf, [image for _, image in generated])
    kinds = np.array([kind for kind, _ in generated])
    flagged_blank = np.array(unknown_batch(blank))
    scores = table.scores(real)
    kind_of = [_kind(table, t) for t in targets] + [HAND_LABELLED.get(p.name) for p in photos]
    mine = [(k, scores[i, table.ids.index(k)]) for i, k in enumerate(kind_of) if k]
    own = table.own_category(real[: len(samples)])
    truth = [table.category_index(t) for t in targets]
    return {
        "real_photos": len(real), "real_flagged": float(np.mean(unknown_batch(real))),
        "real_flagged_names": [p.name for p, u in zip([*samples, *photos], unknown_batch(real), strict=True) if u],
        "objectless": len(blank), "objectless_flagged": float(flagged_blank.mean()),
        "objectless_flagged_by_kind": {k: float(flagged_blank[kinds == k].mean()) for k in KINDS},
        "kind_photos": len(mine), "kind_at_least_0.4": float(np.mean([s >= 0.4 for _, s in mine])),
        "kind_misses": [(k, round(float(s), 3)) for k, s in mine if s < 0.4],
        "class_top1": float(np.mean(real[: len(samples)].argmax(1) == np.array(targets))),
        "category_top1": float(np.mean([o == t for o, t in zip(own, truth, strict=True) if t is not None])),
    }


def _kind(table, target: int) -> str | None:  # type: ignore[no-untyped-def]
    """The kind in ISSUE_KINDS that a class belongs to (its category or an ancestor), if any."""
    j = table.category_index(target)
    while j is not None:
        if table.ids[j] in ISSUE_KINDS:
            return table.ids[j]
        parent = table.parents[j]
        j = None if parent is None else table.ids.index(parent)
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--engine", default="openvino")
    parser.add_argument("--home", type=Path, default=None)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    clf = Classifier.load(args.model, engine=args.engine, home=args.home)
    samples = sorted((SHARED / "data" / "imagenet-samples").glob("*.JPEG"))
    if not samples:
        raise SystemExit(f"no ImageNet samples in {SHARED / 'data' / 'imagenet-samples'} (set WANWU_SHARED)")
    cost = time_requests(clf, [p.read_bytes() for p in samples], args.runs)
    print(f"{clf!r}\nrequest {cost['request_ms']:.2f} ms, with categories {cost['with_categories_ms']:.2f} ms: "
          f"{cost['added']:+.2%} (median of paired differences); the answer alone {cost['answer_ms'] * 1e3:.0f} µs -> "
          f"{cost['answer_with_categories_ms'] * 1e3:.0f} µs with categories, unknown and summary: "
          f"{cost['added_by_the_answer']:+.2%} of a request")
    cal = calibration(clf)
    print(f"unknown: {cal['real_flagged']:.1%} of {cal['real_photos']} real photos flagged {cal['real_flagged_names']}; "
          f"{cal['objectless_flagged']:.1%} of {cal['objectless']} object-less images "
          + ", ".join(f"{k} {v:.0%}" for k, v in cal["objectless_flagged_by_kind"].items()))
    print(f"right everyday category >= 0.4: {cal['kind_at_least_0.4']:.1%} of {cal['kind_photos']} photos of the issue's "
          f"kinds (misses {cal['kind_misses']}); class top-1 {cal['class_top1']:.1%}, category top-1 {cal['category_top1']:.1%}")
    if args.json_out:
        write_json(args.json_out, {"cost": cost, "calibration": cal})


if __name__ == "__main__":
    main()
