"""``wanwu dupes``: exact, near and similar duplicates in a tagged library (tiers that never mix)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from wanwu.cli.common import OPTIONS_MODEL, add_options, err_line, home_of

TAGS_SUFFIXES = (".jsonl", ".csv", ".parquet", ".pq")


def add_parser(sub) -> argparse.ArgumentParser:  # type: ignore[no-untyped-def]
    from wanwu.tagging.dupes import NEAR_BITS, NEAR_COS, SIMILAR_COS

    dupes = sub.add_parser(
        "dupes", help="find exact, near and similar duplicates in a tagged library",
        description="Groups images in tiers: exact (same bytes), near (the same photo resized, re-encoded, lightly "
        "cropped, brightened or converted: pHash and embedding agree), similar (same scene or subject: embedding only). "
        "SRC: tags files (wanwu tag --out; their .vectors sidecar is read, nothing is decoded), or image folders and "
        "files, which are tagged (resumably) into --tags first.")
    dupes.add_argument("sources", nargs="+", type=Path, metavar="SRC", help="tags files (.jsonl/.csv/.parquet) or images/folders")
    dupes.add_argument("--tags", type=Path, default=Path("tags.jsonl"), metavar="FILE",
                       help="where images/folders given as SRC are tagged first (default tags.jsonl; re-running resumes)")
    dupes.add_argument("--tier", action="append", choices=("exact", "near", "similar"), metavar="TIER",
                       help="only these tiers (repeatable: exact, near, similar; default all)")
    dupes.add_argument("--near-bits", type=int, default=NEAR_BITS, metavar="B", help=f"near: pHash bits (default {NEAR_BITS})")
    dupes.add_argument("--near-cos", type=float, default=NEAR_COS, metavar="C", help=f"near: cosine (default {NEAR_COS})")
    dupes.add_argument("--similar-cos", type=float, default=SIMILAR_COS, metavar="C",
                       help=f"similar: cosine (default {SIMILAR_COS})")
    dupes.add_argument("--json", action="store_true", help='one JSON object per group: {"tier", "paths", "distance"}')
    add_options(dupes, OPTIONS_MODEL)
    dupes.set_defaults(handler=run)
    return dupes


def tags_files(args: argparse.Namespace) -> list[Path]:
    """The tags files to read: those given, plus ``--tags`` once the images and folders given are tagged into it."""
    files = [s for s in args.sources if s.is_file() and s.suffix.lower() in TAGS_SUFFIXES]
    images = [s for s in args.sources if s not in files]
    if images:
        from wanwu.tagging.api import TagOptions, tag

        summary = tag(images, args.tags, model=args.model, engine=args.engine, weights=args.weights, home=home_of(args),
                      precision=args.precision or "auto", options=TagOptions(threads=args.threads))
        err_line(summary.line(), style="dim")
        files.append(args.tags)
    return files


def run(args: argparse.Namespace) -> int:
    from wanwu.tagging.dupes import TIERS, Thresholds, find_dupes
    from wanwu.tagging.library import load_library

    library = load_library(tags_files(args))
    if missing := library.missing_vectors:
        err_line(f"wanwu: {missing:,} images have no embedding (tagged by an older wanwu, or the sidecar is gone): "
                 "they are only in exact groups; running the same `wanwu tag` again fills them (records kept)", style="yellow")
    groups = find_dupes(library, Thresholds(args.near_bits, args.near_cos, args.similar_cos), tuple(args.tier or TIERS))
    for group in groups:
        if args.json:
            print(json.dumps(group, ensure_ascii=False))
        else:
            print(f"{group['tier']} ({len(group['paths'])} images, distance {group['distance']}):")
            for path in group["paths"]:
                print(f"  {path}")
    if not args.json:
        err_line(f"{len(groups):,} groups among {len(library.records):,} images", style="dim")
    return 0
