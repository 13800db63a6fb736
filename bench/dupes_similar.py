#!/usr/bin/env python3
"""The ``similar`` tier of ``wanwu dupes`` on labelled second shots of one scene (issue 25).

    .venv/bin/python bench/dupes_similar.py [--thresholds 0.5 0.55 0.6 0.65 0.7] [--home DIR]

Builds tests/dupes_scenes.py's set (public-domain originals and six re-framed shots each) plus the 100 ImageNet
samples as different photos in a temporary folder, tags it with ``wanwu tag`` (EfficientNet-Lite0, ONNX Runtime),
runs ``wanwu dupes --json --similar-cos C`` per threshold and prints recall over same-scene pairs, pair
precision, and how many pairs of different dogs (the same kind, not the same scene) are grouped.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests import dupes_scenes  # noqa: E402
from tests.conftest import PHOTOS, SAMPLES  # noqa: E402
from tests.dupes_set import add_distractors  # noqa: E402
from tests.integration.test_dupes_scenes import _is_dog, _pairs  # noqa: E402

from wanwu.cpu import cpu_info  # noqa: E402


def _wanwu(home: Path, *args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "wanwu.cli", "--home", str(home), *args],
                          capture_output=True, text=True, check=True)
    return proc.stdout


def _labelled(lib: Path) -> dict[str, str]:
    return add_distractors(SAMPLES, lib, dupes_scenes.build(PHOTOS, lib))


def measure(home: Path, tags: Path, labels: dict[str, str], threshold: float) -> dict:
    groups = [json.loads(line) for line in _wanwu(home, "dupes", str(tags), "--json", "--similar-cos", str(threshold)).splitlines()]
    everything = _pairs(sorted(labels))
    same = {pair for pair in everything if len({labels[p] for p in pair}) == 1}
    dogs = _pairs(sorted(p for p in labels if _is_dog(p)))
    grouped = set().union(*(_pairs(g["paths"]) for g in groups if g["tier"] in ("near", "similar")))
    near = set().union(*(_pairs(g["paths"]) for g in groups if g["tier"] == "near"))
    return {"threshold": threshold, "recall": len(grouped & same) / len(same), "same": len(same),
            "precision": len(grouped & same) / max(1, len(grouped)), "false_pairs": len(grouped - same),
            "dogs": f"{len(grouped & dogs)}/{len(dogs)}", "near_same_scene": len(near & same)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.5, 0.55, 0.6, 0.65, 0.7])
    parser.add_argument("--home", type=Path, help="wanwu home (default: a temporary one; the model is exported there)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = args.home or Path(tmp) / "home"
        labels = _labelled(Path(tmp) / "lib")
        tags = Path(tmp) / "tags.jsonl"
        _wanwu(home, "tag", str(Path(tmp) / "lib"), "--out", str(tags), "--engine", "onnxruntime")
        rows = [measure(home, tags, labels, t) for t in args.thresholds]
    print(f"wanwu dupes, similar tier, on {cpu_info().describe()}")
    print("| `--similar-cos` | recall (same scene) | pair precision | false pairs | different dogs grouped | same-scene pairs in near |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['threshold']} | {r['recall']:.1%} ({r['same']}) | {r['precision']:.1%} | {r['false_pairs']} | {r['dogs']} "
              f"| {r['near_same_scene']} |")


if __name__ == "__main__":
    main()
