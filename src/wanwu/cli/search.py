"""``wanwu search`` (by tag, in Chinese or English) and ``wanwu similar`` (by image) over a tagged library."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from wanwu.cli.common import OPTIONS_MODEL, add_home, add_options, err_line, home_of


def add_parser(sub) -> argparse.ArgumentParser:  # type: ignore[no-untyped-def]
    from wanwu.tagging.search import DEFAULT_MIN_SCORE

    search = sub.add_parser(
        "search", help="find tagged images by category or label, in Chinese or English (狗, dog, 金毛猎犬)",
        description="Matches everyday categories (狗/dog finds every breed) and predicted labels, ranked by score.")
    search.add_argument("tags", type=Path, metavar="TAGS", help="a tags file (wanwu tag --out)")
    search.add_argument("query", metavar="QUERY", help="a category or label; several, separated by commas, match any")
    search.add_argument("--min-score", type=float, default=DEFAULT_MIN_SCORE, metavar="P",
                        help=f"drop images whose match scores below this probability (default {DEFAULT_MIN_SCORE})")
    search.add_argument("--json", action="store_true", help="one JSON object per image")
    search.set_defaults(handler=run_search)
    _add_similar(sub)
    return search


def _add_similar(sub) -> None:  # type: ignore[no-untyped-def]
    similar = sub.add_parser(
        "similar", help="the tagged images nearest to an image (by embedding)",
        description="IMAGE: a file of the library (its stored embedding) or any other image, which is classified with "
        "the library's model (--model, default: the one in TAGS) to get its embedding.")
    similar.add_argument("tags", type=Path, metavar="TAGS", help="a tags file (wanwu tag --out)")
    similar.add_argument("image", type=Path, metavar="IMAGE", help="an image file")
    similar.add_argument("--top", type=int, default=10, metavar="N", help="how many (default 10)")
    similar.add_argument("--json", action="store_true", help="one JSON object per image")
    add_options(similar, OPTIONS_MODEL)
    similar.set_defaults(handler=run_similar)
    add_home(similar)  # wanwu.cli adds it to the parser add_parser returns (search's)


def run_search(args: argparse.Namespace) -> int:
    from wanwu.tagging.library import load_library
    from wanwu.tagging.search import search

    hits = search(load_library([args.tags]), args.query, args.min_score)
    for hit in hits:
        print(json.dumps(hit.as_dict(), ensure_ascii=False) if args.json else f"{hit.score:7.1%}  {hit.path}  ({hit.matched})")
    if not args.json:
        err_line(f"{len(hits):,} images match {args.query!r}", style="dim")
    return 0


def run_similar(args: argparse.Namespace) -> int:
    from wanwu.tagging.library import load_library
    from wanwu.tagging.search import embed_image, nearest, vector_of

    library = load_library([args.tags])
    vector, sha = vector_of(library, args.image)
    if vector is None:
        from wanwu.classifier import Classifier

        model = args.model or next((r["model"] for r in library.records if r.get("model")), None)
        classifier = Classifier.load(model, args.engine, args.weights, home_of(args), args.threads, args.precision or "auto")
        vector = embed_image(classifier, args.image)
    for path, score in nearest(library, vector, args.top, exclude_sha=sha):
        print(json.dumps({"path": path, "cosine": score}, ensure_ascii=False) if args.json else f"{score:.3f}  {path}")
    return 0
