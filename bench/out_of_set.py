#!/usr/bin/env python3
"""Out-of-set flags of a trained head: held-out in-set images vs photos of other kinds (issue 24).

    .venv/bin/python bench/out_of_set.py [--home DIR] [--threads 2]

Two small models on EfficientNet-Lite0 global embeddings (4 views per training image, as `wanwu train` augments
a small set): 5 animal classes made of ../shared/data/imagenet-samples (dogs, wild mammals, birds, cold-blooded,
invertebrates: 40 images), and 6 Fashion-MNIST classes (30 test images each). In-set images are scored
leave-one-out (a model fitted without them); the other kinds are the 60 ImageNet samples that are not animals
(objects, food, scenes; for Fashion-MNIST all 100 samples + ../shared/data/photos) and, for Fashion-MNIST,
its 4 other classes. Each rule's threshold keeps 95 % (or 99 %) of the held-out in-set images, as training does.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a file: bench/ and tests/ are not installed, import them from this checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests import fashion  # noqa: E402

from wanwu.cpu import cpu_info  # noqa: E402
from wanwu.loader import ModelRequest, open_runner, open_source  # noqa: E402
from wanwu.ranking import softmax  # noqa: E402
from wanwu.trained.outofset import fit_evidence  # noqa: E402
from wanwu.trained.source import feature_source  # noqa: E402
from wanwu.training.embed import VIEWS, EmbeddingCache, Job, cache_folder, extract  # noqa: E402
from wanwu.training.head import fit  # noqa: E402
from wanwu.training.train import training_preprocessing  # noqa: E402

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
ANIMALS = {  # ImageNet synsets of ../shared/data/imagenet-samples, by coarse kind
    "dogs": ("n02088094", "n02090721", "n02093428", "n02095889", "n02097474", "n02100236", "n02102480", "n02105855",
             "n02107908", "n02110185", "n02112137"),
    "wild mammals": ("n02114548", "n02120505", "n02128925", "n02325366", "n02391049", "n02417914", "n02444819",
                     "n02484975", "n02493509", "n02077923"),
    "birds": ("n01530575", "n01601694", "n01795545", "n01820546", "n01860187", "n02007558", "n02027492"),
    "cold-blooded": ("n01641577", "n01682714", "n01698640", "n01740131", "n01440764", "n02526121"),
    "invertebrates": ("n01770081", "n01924916", "n01980166", "n02165105", "n02219486", "n02268853"),
}
FASHION_IN = ("T-shirt", "Trouser", "Dress", "Sandal", "Bag", "Ankle boot")


def embeddings(files: list[Path], home: Path, threads: int) -> np.ndarray:
    """(N, views, D) global embeddings, cached in the store as training caches them."""
    base = open_source(ModelRequest("efficientnet_lite0", home=home))
    pre = training_preprocessing(base.spec.preprocessing, "full")
    jobs = [Job(f, hashlib.sha256(f.read_bytes()).hexdigest(), VIEWS) for f in files]
    cache = EmbeddingCache(cache_folder(home, base, pre, "global"))
    engine = open_runner(feature_source(base, "global"), "onnxruntime", threads=threads)
    extract(jobs, engine.run, pre, cache, workers=threads)
    cache.save()
    return np.stack([[cache.get(j.sha256, v) for v in VIEWS] for j in jobs])


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def scores(x: np.ndarray, y: np.ndarray, test: np.ndarray, classes: int) -> dict[str, np.ndarray]:
    """Each rule's score of ``test`` (higher: more in set) for a model fitted on ``x`` (rows: image x view)."""
    probs = softmax(fit(x, y, classes).logits(test))
    centroids = _unit(np.stack([_unit(x[y == c]).mean(0) for c in range(classes)]))
    return {"top softmax (the unknown rule)": probs.max(1), "cosine to the nearest class centroid":
            (_unit(test) @ centroids.T).max(1), "1-NN cosine, centred (shipped)": fit_evidence(x).similarity(test)}


def evaluate(vectors: np.ndarray, labels: list[int], others: dict[str, np.ndarray]) -> list[tuple]:
    """Leave-one-out scores of the in-set images, the full model's scores of each other set; flag rates."""
    classes, views = max(labels) + 1, vectors.shape[1]
    y = np.repeat(np.array(labels), views)
    held: dict[str, list[float]] = {}
    for i in range(len(labels)):
        keep = np.repeat(np.arange(len(labels)) != i, views)
        for rule, s in scores(vectors.reshape(-1, vectors.shape[2])[keep], y[keep], vectors[i, :1, :], classes).items():
            held.setdefault(rule, []).append(float(s[0]))
    full = {name: scores(vectors.reshape(-1, vectors.shape[2]), y, o, classes) for name, o in others.items()}
    rows = []
    for rule, values in held.items():
        t95, t99 = np.quantile(values, 0.05), np.quantile(values, 0.01)
        rows.append((rule, np.mean(np.array(values) < t95), *[(np.mean(f[rule] < t95), np.mean(f[rule] < t99))
                                                              for f in full.values()]))
    return rows


def animals(home: Path, threads: int) -> list[tuple]:
    files = sorted((SHARED / "imagenet-samples").glob("*.JPEG"))
    kind = {w: c for c, ws in enumerate(ANIMALS.values()) for w in ws}
    vectors = embeddings(files, home, threads)
    inside = [i for i, f in enumerate(files) if f.name.split("_")[0] in kind]
    other = [i for i, f in enumerate(files) if f.name.split("_")[0] >= "n02669723"]  # objects, food, scenes
    labels = [kind[files[i].name.split("_")[0]] for i in inside]
    return evaluate(vectors[inside], labels, {"60 ImageNet objects/food/scenes": vectors[other, 0]})


def clothes(home: Path, threads: int, folder: Path) -> list[tuple]:
    images, labels = fashion.load("test")
    fashion.write_imagefolder(folder, images, labels, fashion.pick(labels, 30, seed=1))
    files = sorted(folder.rglob("*.png"))
    photos = sorted((SHARED / "imagenet-samples").glob("*.JPEG")) + sorted((SHARED / "photos").glob("*.jpg"))
    vectors = embeddings(files + photos, home, threads)
    names = [f.parent.name.split("|")[0] for f in files]
    inside = [i for i, n in enumerate(names) if n in FASHION_IN]
    near = [i for i, n in enumerate(names) if n not in FASHION_IN]
    return evaluate(vectors[inside], [FASHION_IN.index(names[i]) for i in inside],
                    {"107 ImageNet samples + photos": vectors[len(files):, 0], "4 other Fashion-MNIST classes": vectors[near, 0]})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=None, help="a store (default: a temporary one)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = args.home or Path(tmp) / "home"
        print(f"CPU: {cpu_info().model}")
        for title, rows in (("5 animal classes (40 ImageNet samples)", animals(home, args.threads)),
                            ("6 Fashion-MNIST classes (180 images)", clothes(home, args.threads, Path(tmp) / "fashion"))):
            print(f"\n{title}: share flagged (threshold keeping 95 % of held-out in-set images; 99 % in brackets)")
            for rule, in_set, *others in rows:
                print(f"  {rule:38s} in-set {in_set:5.0%}  " + "  ".join(f"other {a:4.0%} ({b:4.0%})" for a, b in others))


if __name__ == "__main__":
    main()
