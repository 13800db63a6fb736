"""Generate src/wanwu/labels/categories.json: everyday categories over ImageNet-1k's 1,000 classes (issue 24).

    python tools/make_categories.py           # rewrite the table
    python tools/make_categories.py --check   # exit 1 if the table in the package is not what this generates

Input: WordNet 3.0's noun hypernyms (``/usr/share/wordnet/data.noun``, Debian ``wordnet-base``; an ImageNet wnid is
``n`` + a WordNet noun offset) and the reviewed ``tools/categories.toml`` (the categories with their English and
Chinese names and parents, the WordNet synsets each stands for, moves and classes left out).

Rule: a class goes to the category whose WordNet synset is the class itself or one of its hypernyms (any path);
where several match, the deepest one in the curated tree wins, then the one nearest in WordNet, then the first listed.
``[move]`` overrides that; ``[leave_out]`` maps a class to no category. Every class must end up placed or left
out, and no category may be empty. The output needs nothing of WordNet at run time; it carries WordNet's licence.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tomllib
from collections import deque
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LABELS = ROOT / "src" / "wanwu" / "labels"
OVERRIDES = ROOT / "tools" / "categories.toml"
TABLE = LABELS / "categories.json"
WORDNET = Path("/usr/share/wordnet/data.noun")
WORDNET_NOTICE = (
    "The class-to-category mapping is derived from WordNet 3.0 (hypernyms). WordNet 3.0 Copyright 2006 by Princeton "
    "University. All rights reserved. THIS SOFTWARE AND DATABASE IS PROVIDED \"AS IS\" AND PRINCETON UNIVERSITY MAKES "
    "NO REPRESENTATIONS OR WARRANTIES, EXPRESS OR IMPLIED. Full licence: WORDNET_LICENSE.txt beside this file."
)


def read_hypernyms(path: Path = WORDNET) -> dict[str, list[str]]:
    """WordNet noun offset -> its hypernyms' offsets (``@`` and instance ``@i`` pointers), from ``data.noun``."""
    parents: dict[str, list[str]] = {}
    with open(path, encoding="latin-1") as file:
        for line in file:
            if line.startswith("  "):  # the licence header
                continue
            fields = line.split(" | ", 1)[0].split()
            words = int(fields[3], 16)
            at = 4 + 2 * words
            pointers = [fields[at + 1 + 4 * i: at + 5 + 4 * i] for i in range(int(fields[at]))]
            parents[fields[0]] = [offset for symbol, offset, pos, _ in pointers if symbol in ("@", "@i") and pos == "n"]
    return parents


def distances(offset: str, parents: dict[str, list[str]]) -> dict[str, int]:
    """The synset and every hypernym above it, with the fewest hops to each."""
    found = {offset: 0}
    queue = deque([offset])
    while queue:
        node = queue.popleft()
        for parent in parents.get(node, ()):
            if parent not in found:
                found[parent] = found[node] + 1
                queue.append(parent)
    return found


def _depths(categories: list[dict]) -> dict[str, int]:
    by_id = {c["id"]: c for c in categories}
    depths: dict[str, int] = {}
    for category in categories:
        seen, node = [], category
        while node.get("parent"):
            if node["id"] in seen:
                raise SystemExit(f"categories.toml: a cycle through {seen}")
            seen.append(node["id"])
            node = by_id[node["parent"]]
        depths[category["id"]] = len(seen)
    return depths


def place(wnid: str, categories: list[dict], depths: dict[str, int], parents: dict[str, list[str]]) -> str | None:
    above = distances(wnid[1:], parents)
    matches = [
        (-depths[c["id"]], min(above[s[1:]] for s in c["wordnet"] if s[1:] in above), order, c["id"])
        for order, c in enumerate(categories)
        if any(s[1:] in above for s in c.get("wordnet", ())) and not any(s[1:] in above for s in c.get("except", ()))
    ]
    return min(matches)[3] if matches else None


def generate(parents: dict[str, list[str]], overrides: dict) -> dict:
    categories = overrides["category"]
    ids = [c["id"] for c in categories]
    _check_categories(categories)
    depths = _depths(categories)
    wnids = (LABELS / "imagenet_wnids.txt").read_text().split()
    moves, left_out = overrides.get("move", {}), overrides.get("leave_out", {})
    unknown = sorted((set(moves) | set(left_out)) - set(wnids))
    if unknown or set(moves) & set(left_out) or set(moves.values()) - set(ids):
        raise SystemExit(f"categories.toml: bad [move]/[leave_out] entries {unknown or sorted(set(moves) & set(left_out))}")
    classes: list[str | None] = []
    unplaced = []
    for wnid in wnids:
        category = None if wnid in left_out else moves.get(wnid) or place(wnid, categories, depths, parents)
        if category is None and wnid not in left_out:
            unplaced.append(wnid)
        classes.append(category)
    if unplaced:
        raise SystemExit(f"{len(unplaced)} classes are neither placed nor left out: {unplaced}")
    empty = [i for i in ids if not _has_class(i, categories, classes)]
    if empty:
        raise SystemExit(f"categories with no class: {empty}")
    body = {"categories": [{k: c.get(k) for k in ("id", "en", "zh", "parent")} for c in categories], "classes": classes}
    version = hashlib.sha256(json.dumps(body, ensure_ascii=False, sort_keys=True).encode()).hexdigest()[:12]
    return {"version": version, "notice": WORDNET_NOTICE, **body}


def _check_categories(categories: list[dict]) -> None:
    ids = [c["id"] for c in categories]
    if len(set(ids)) != len(ids):
        raise SystemExit("categories.toml: duplicate category ids")
    for c in categories:
        if not c.get("en") or not c.get("zh") or (c.get("parent") and c["parent"] not in ids):
            raise SystemExit(f"categories.toml: {c['id']} needs en, zh and a known parent")


def _has_class(category: str, categories: list[dict], classes: list[str | None]) -> bool:
    children = {c["id"]: c.get("parent") for c in categories}
    for placed in filter(None, classes):
        node: str | None = placed
        while node:
            if node == category:
                return True
            node = children[node]
    return False


def render(table: dict) -> str:
    return json.dumps(table, ensure_ascii=False, indent=1) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare with the shipped table instead of writing it")
    parser.add_argument("--wordnet", type=Path, default=WORDNET, help=f"WordNet 3.0 data.noun (default {WORDNET})")
    args = parser.parse_args(argv)
    text = render(generate(read_hypernyms(args.wordnet), tomllib.loads(OVERRIDES.read_text(encoding="utf-8"))))
    if args.check:
        same = TABLE.exists() and TABLE.read_text(encoding="utf-8") == text
        print("categories.json is up to date" if same else "categories.json differs: run tools/make_categories.py")
        return 0 if same else 1
    TABLE.write_text(text, encoding="utf-8")
    print(f"wrote {TABLE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
