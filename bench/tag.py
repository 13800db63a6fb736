#!/usr/bin/env python3
"""`wanwu tag` on a synthetic library vs its ceiling, a shell loop of `wanwu predict` and a PyTorch DataLoader loop.

    PYTHONPATH=src .venv/bin/python bench/tag.py [--count 5000] [--big-count 20000] [--json-out tag-bench.json]

- library: ``--count`` images made from ../shared/data/photos and imagenet-samples (bench/tag_library.py:
  crops, flips, re-encodes, ``--share-12mp`` of them 12 MP), cached in ``--data``;
- ceiling: 1000 / (engine ms/image at its best batch and thread split + decode core-ms / cores), each
  measured here just before the run (decode: read + SHA-256 + decode + crop of a sample, CPU time);
- `wanwu tag` (a subprocess, default settings): wall time of its pipeline (the summary's ``elapsed_s``,
  after the model is loaded) and end to end, CPU time, peak RSS of the process tree;
- a shell loop of `wanwu predict` on a sample of ``--predict-sample`` images, extrapolated;
- the usual PyTorch recipe: ``DataLoader(num_workers=2, batch_size=32)`` over a Dataset that decodes
  with PIL and the exact eval transform, and an eager model loop in ``torch.inference_mode()``, on the
  first ``--dataloader-count`` images (its rate is steady; the whole set would take half an hour);
- peak RSS of `wanwu tag` at ``--count`` vs ``--big-count`` images (0 skips it);
- with ``--ray-count N``: `wanwu tag --ray` on a one-node cluster vs the local path on N images.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tag_library import folders_for, make_library  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("WANWU_SHARED", REPO.parent / "shared"))


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message} (load {os.getloadavg()[0]:.1f})", file=sys.stderr, flush=True)


def cpu_model() -> str:
    out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    return f"{fields.get('Model name', '?').strip()} (family {fields.get('CPU family', '?').strip()}, model {fields.get('Model', '?').strip()})"


def _throughput(engines: list, batch: np.ndarray, seconds: float) -> tuple[float, float]:
    """(wall ms, CPU ms) per image with every engine in ``engines`` running ``batch`` back to back in its own thread."""
    counts = [0] * len(engines)
    for engine in engines:
        engine.run(batch)
    cpu = time.process_time()
    deadline = time.perf_counter() + seconds

    def work(i: int) -> None:
        while time.perf_counter() < deadline:
            engines[i].run(batch)
            counts[i] += len(batch)

    started = time.perf_counter()
    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(engines))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    images = sum(counts)
    return (time.perf_counter() - started) * 1000 / images, (time.process_time() - cpu) * 1000 / images


def measure_engine(args: argparse.Namespace, cores: int) -> dict:
    from wanwu.loader import open_runner
    from wanwu.tagging.api import load_tagger

    classifier, streams = load_tagger(args.model, args.engine, None, args.home, "fp32", cores)
    crop = classifier.spec.preprocessing.crop_size
    rows = []
    one = open_runner(classifier.source, classifier.engine.name, threads=cores)
    for label, engines in ((f"{cores} workers × 1 thread (what tag runs)", streams), (f"1 worker × {cores} threads", [one])):
        for size in (1, 8, 16, 32):
            batch = np.random.default_rng(size).integers(0, 255, (size, crop, crop, 3), dtype=np.uint8)
            wall, cpu = _throughput(engines, batch, args.engine_seconds)
            rows.append({"split": label, "batch": size, "ms_per_image": wall, "cpu_ms_per_image": cpu})
    return {"engine": classifier.engine.name, "rows": rows, "best": min(rows, key=lambda r: r["ms_per_image"]),
            "best_cpu": min(rows, key=lambda r: r["cpu_ms_per_image"])}


def measure_decode(files: list[Path], args: argparse.Namespace, fast: bool) -> float:
    """Mean CPU ms to read, hash, decode and crop one file (one process, one thread)."""
    from wanwu.models import get_model_spec
    from wanwu.tagging.decode import DecodeSettings, Task, load_file

    settings = DecodeSettings(get_model_spec(args.model).preprocessing, fast_decode=fast)
    # all of them by default: with 10 % of 12 MP photos a sample of 300 misses the mean by ~10 %
    sample = random.Random(1).sample(files, args.decode_sample) if 0 < args.decode_sample < len(files) else files
    started = time.process_time()
    for path in sample:
        loaded = load_file(Task(str(path), path.name, path.stat().st_size), settings)
        assert loaded.error is None, loaded.error
    return (time.process_time() - started) * 1000 / len(sample)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_measured(command: list[str]) -> dict:
    """Run ``command``; its wall time, CPU time (with every descendant) and the peak RSS of its process tree."""
    import psutil

    cpu0, started = _children_cpu(), time.perf_counter()
    proc = psutil.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak_tree = peak_main = 0
    while proc.poll() is None:
        try:
            tree = [proc, *proc.children(recursive=True)]
            rss = [p.memory_info().rss for p in tree]
            peak_tree, peak_main = max(peak_tree, sum(rss)), max(peak_main, rss[0])
        except psutil.Error:
            pass
        time.sleep(0.1)
    out, err = proc.communicate()
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"{command[:6]} failed ({proc.returncode}): {err[-2000:]}")
    return {"wall_s": time.perf_counter() - started, "cpu_s": _children_cpu() - cpu0, "stdout": out,
            "peak_rss_tree_mb": peak_tree / 2**20, "peak_rss_main_mb": peak_main / 2**20}


def wanwu_cmd(args: argparse.Namespace, *rest: str) -> list[str]:
    return [sys.executable, "-m", "wanwu.cli", "--home", str(args.home), *rest]


def run_tag(args: argparse.Namespace, sources: list[Path], out: Path, *extra: str) -> dict:
    out.unlink(missing_ok=True)
    model = ["--model", args.model] + (["--engine", args.engine] if args.engine else [])
    result = run_measured(wanwu_cmd(args, "tag", *map(str, sources), "--out", str(out), "--json", *model, *extra))
    summary = json.loads(result.pop("stdout"))
    return {**result, "images": summary["images"], "failed": summary["failed"], "pipeline_s": summary["elapsed_s"],
            "pipeline_cpu_s": summary["cpu_s"], "images_per_s": summary["images_per_s"]}


def predict_loop(args: argparse.Namespace, files: list[Path], count: int) -> dict:
    """A shell loop of `wanwu predict` on a sample, timed per image and extrapolated to ``count``."""
    sample = random.Random(2).sample(files, args.predict_sample)
    script = 'for f in "$@"; do "$WANWU" --home "$HOME_" predict --json --model "$MODEL" "$f" > /dev/null; done'
    env = {**os.environ, "WANWU": str(Path(sys.executable).parent / "wanwu"), "HOME_": str(args.home), "MODEL": args.model}
    launcher = Path(tempfile.mkdtemp()) / "wanwu"  # `wanwu` as this interpreter + this source tree runs it
    launcher.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m wanwu.cli "$@"\n')
    launcher.chmod(0o755)
    env["WANWU"] = str(launcher)
    started = time.perf_counter()
    subprocess.run(["bash", "-c", script, "loop", *map(str, sample)], env=env, check=True)
    per_image = (time.perf_counter() - started) / len(sample)
    return {"sample": len(sample), "s_per_image": per_image, "images_per_s": 1 / per_image, "wall_s": per_image * count}


def dataloader_child(list_file: Path, model: str, home: Path, workers: int, batch: int) -> None:
    """The usual recipe, in its own process: Dataset (PIL + the exact eval transform) -> DataLoader -> eager loop."""
    import torch
    from torch.utils.data import DataLoader, Dataset

    from wanwu.loader import ModelRequest, open_source
    from wanwu.preprocess import preprocess

    source = open_source(ModelRequest(model, home=home))
    net = source.torch_model()
    pre = source.spec.preprocessing
    files = list_file.read_text().splitlines()

    class Files(Dataset):
        def __len__(self) -> int:
            return len(files)

        def __getitem__(self, i: int):  # type: ignore[no-untyped-def]
            with open(files[i], "rb") as f:
                return torch.from_numpy(preprocess(f.read(), pre))

    loader = DataLoader(Files(), batch_size=batch, num_workers=workers)
    cpu = lambda: sum(os.times()[:4])  # noqa: E731 - this process and its (reaped) loader workers
    started, cpu0, seen = time.perf_counter(), cpu(), 0
    with torch.inference_mode():
        for x in loader:
            torch.topk(torch.softmax(net(x), dim=1), 5)
            seen += len(x)
    loop_s = time.perf_counter() - started
    del loader  # its workers have exited at the end of the epoch; their CPU time is in children_* now
    print(json.dumps({"images": seen, "loop_s": loop_s, "loop_cpu_s": cpu() - cpu0, "torch_threads": torch.get_num_threads()}))


def run_dataloader(args: argparse.Namespace, files: list[Path]) -> dict:
    list_file = Path(tempfile.mkdtemp()) / "files.txt"
    list_file.write_text("\n".join(map(str, files)))
    command = [sys.executable, __file__, "--dataloader-child", str(list_file), "--model", args.model, "--home", str(args.home)]
    result = run_measured(command)
    child = json.loads(result.pop("stdout"))
    return {**result, **child, "images_per_s": child["images"] / child["loop_s"]}


RAY_CLUSTER = """
set -e
ip link set lo up
export RAY_AUTH_MODE=disabled RAY_TMPDIR="$(mktemp -d /tmp/wanwu-ray.XXXXXX)"
RAY="$(dirname "$PYTHON")/ray"
trap '"$RAY" stop --force > /dev/null 2>&1; rm -rf "$RAY_TMPDIR"' EXIT
"$RAY" start --head --node-ip-address 127.0.0.1 --port 6390 --num-cpus "$CPUS" --include-dashboard false \
    --disable-usage-stats > /dev/null 2>&1
exec "$PYTHON" -m wanwu.cli "$@" --ray 127.0.0.1:6390
"""


def run_ray(args: argparse.Namespace, sources: list[Path], out: Path, cores: int) -> dict:
    """`wanwu tag --ray` on a one-node cluster started for it (2 logical CPUs per core), in a private network
    namespace (``ray start`` advertises the external interface otherwise); the cluster start is not timed."""
    out.unlink(missing_ok=True)
    model = ["--model", args.model] + (["--engine", args.engine] if args.engine else [])
    env = {**os.environ, "PYTHON": sys.executable, "CPUS": str(2 * cores)}
    command = ["unshare", "-n", "bash", "-c", RAY_CLUSTER, "ray-bench", "--home", str(args.home), "tag",
               *map(str, sources), "--out", str(out), "--json", "--ray-actors", str(cores), *model]
    proc = subprocess.run(command, env=env, capture_output=True, text=True)
    if not proc.stdout.strip():
        raise RuntimeError(f"wanwu tag --ray failed: {proc.stderr[-3000:]}")
    summary = json.loads(proc.stdout.splitlines()[-1])
    return {"images": summary["images"], "pipeline_s": summary["elapsed_s"], "images_per_s": summary["images_per_s"],
            "ray": summary["settings"].get("ray")}


def ceiling(args: argparse.Namespace, files: list[Path], cores: int, fast: bool = False,
            decode_ms: float | None = None) -> dict:
    """The issue's ceiling (wall: engine ms/image at its best + decode core-ms / cores) and the same in CPU time.

    On a shared machine the wall ceiling moves with the neighbours' load; the CPU one does not, and
    ``cores × 1000 / CPU ms`` is what the cores would give if they were all ours.
    """
    engine = measure_engine(args, cores)
    decode_ms = decode_ms or measure_decode(files, args, fast)  # CPU time: the neighbours' load does not move it
    ms = engine["best"]["ms_per_image"] + decode_ms / cores
    cpu_ms = engine["best_cpu"]["cpu_ms_per_image"] + decode_ms
    return {"engine": engine, "decode_core_ms": decode_ms, "ms_per_image": ms, "images_per_s": 1000 / ms,
            "cpu_ms_per_image": cpu_ms, "cpu_images_per_s": cores * 1000 / cpu_ms}


def _fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def _rows(results: dict) -> list[tuple]:
    c = results["ceiling"]
    rows = [("ceiling (engine at its best + decode)", c["images_per_s"], None, None, c["cpu_ms_per_image"], None, None)]
    for key, label in (("tag", "`wanwu tag`"), ("tag_fast", "`wanwu tag --fast-decode`")):
        if key in results:
            t, ref = results[key], results["ceiling_fast" if key == "tag_fast" else "ceiling"]
            cpu_ms = t["pipeline_cpu_s"] * 1000 / t["images"]
            rows.append((label, t["images_per_s"], t["images_per_s"] / ref["images_per_s"], t["wall_s"], cpu_ms,
                         ref["cpu_ms_per_image"] / cpu_ms, t["peak_rss_tree_mb"]))
    if "dataloader" in results:
        d = results["dataloader"]
        cpu_ms = d["loop_cpu_s"] * 1000 / d["images"]
        rows.append(("PyTorch DataLoader(workers=2, batch 32) + eager", d["images_per_s"], d["images_per_s"] / c["images_per_s"],
                     d["wall_s"], cpu_ms, c["cpu_ms_per_image"] / cpu_ms, d["peak_rss_tree_mb"]))
    if "predict_loop" in results:
        p = results["predict_loop"]
        rows.append((f"shell loop of `wanwu predict` ({p['sample']} sampled)", p["images_per_s"],
                     p["images_per_s"] / c["images_per_s"], p["wall_s"], None, None, None))
    return rows


def table(results: dict) -> str:
    c, n = results["ceiling"], results["count"]
    lines = [f"{n:,} images ({results['share_12mp']:.0%} 12 MP), {results['cores']} cores, {results['cpu']}, "
             f"load average {results['load_before']:.1f} before / {results['load_after']:.1f} after", "",
             "| method | images/s | of ceiling (wall) | wall s, end to end | CPU ms/image | of ceiling (CPU) | peak RSS MB |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r[0]} | {r[1]:.1f} | {_fmt(r[2], '.0%')} | {_fmt(r[3], '.0f')} | {_fmt(r[4], '.1f')} | "
              f"{_fmt(r[5], '.0%')} | {_fmt(r[6], '.0f')} |" for r in _rows(results)]
    if "tag_big" in results:
        small, big = results["tag"], results["tag_big"]
        growth = big["peak_rss_tree_mb"] / small["peak_rss_tree_mb"] - 1
        lines += ["", f"peak RSS of `wanwu tag` (process tree / main process): {n:,} images "
                      f"{small['peak_rss_tree_mb']:.0f} / {small['peak_rss_main_mb']:.0f} MB; {big['images']:,} images "
                      f"{big['peak_rss_tree_mb']:.0f} / {big['peak_rss_main_mb']:.0f} MB ({growth:+.1%})"]
    if "ray" in results:
        local, ray = results["ray"]["local"], results["ray"]["ray"]
        lines += ["", f"Ray on this machine ({ray['images']:,} images, {ray['ray']['actors']} actors, "
                      f"{ray['ray']['cluster_cpus']:g} logical CPUs): {ray['images_per_s']:.1f} images/s vs local "
                      f"{local['images_per_s']:.1f} ({ray['images_per_s'] / local['images_per_s'] - 1:+.0%}; the Ray figure "
                      "includes its actors' start and model load)"]
    e, ec = c["engine"]["best"], c["engine"]["best_cpu"]
    lines += ["", f"ceiling parts: engine {e['ms_per_image']:.2f} ms/image wall ({e['split']}, batch {e['batch']}), "
                  f"{ec['cpu_ms_per_image']:.2f} CPU ms/image ({ec['split']}, batch {ec['batch']}); decode "
                  f"{c['decode_core_ms']:.1f} core-ms/image; if the cores were all ours: {c['cpu_images_per_s']:.1f} images/s"]
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=5000, help="images in the library (whole thousands)")
    parser.add_argument("--big-count", type=int, default=20000, help="the larger library for peak RSS (0: skip)")
    parser.add_argument("--share-12mp", type=float, default=0.1)
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "wanwu-bench-tag")
    parser.add_argument("--home", type=Path, help="weight store (default: <data>/home)")
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--engine", help="default: the fastest installed")
    parser.add_argument("--engine-seconds", type=float, default=3.0)
    parser.add_argument("--decode-sample", type=int, default=0, help="images to time decoding on (default 0: all)")
    parser.add_argument("--predict-sample", type=int, default=8)
    parser.add_argument("--dataloader-count", type=int, default=1000,
                        help="images for the DataLoader loop (its steady rate; the whole set takes ~30 min on 2 cores)")
    parser.add_argument("--skip", nargs="*", default=[], choices=("dataloader", "predict"))
    parser.add_argument("--ray-count", type=int, default=0,
                        help="also compare `wanwu tag --ray` (a one-node cluster) with the local path on this many images")
    parser.add_argument("--fast", action="store_true", help="also run `wanwu tag --fast-decode` against its ceiling")
    parser.add_argument("--json-out", type=Path)
    parser.add_argument("--dataloader-child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.home = args.home or args.data / "home"
    return args


def main() -> int:
    args = parse_args()
    if args.dataloader_child:
        dataloader_child(args.dataloader_child, args.model, args.home, workers=2, batch=32)
        return 0
    cores = len(os.sched_getaffinity(0))
    sources = sorted((SHARED / "data" / "photos").glob("*.jpg")) + sorted((SHARED / "data" / "imagenet-samples").glob("*.JPEG"))
    lib = args.data / f"library-{args.share_12mp:g}"
    files = make_library(lib, max(args.count, args.big_count), sources, args.share_12mp, workers=cores, log=log)
    small, out = files[: args.count], args.data / "out"
    out.mkdir(parents=True, exist_ok=True)
    results: dict = {"count": args.count, "share_12mp": args.share_12mp, "cores": cores, "cpu": cpu_model(),
                     "python": platform.python_version(), "load_before": os.getloadavg()[0]}
    log("ceiling (before)")
    before = ceiling(args, small, cores)
    log(f"wanwu tag, {args.count:,} images")
    results["tag"] = run_tag(args, folders_for(lib, args.count), out / "tags.jsonl")
    log("ceiling (after)")
    after = ceiling(args, small, cores, decode_ms=before["decode_core_ms"])
    mean = {k: (before[k] + after[k]) / 2 for k in ("images_per_s", "cpu_ms_per_image", "cpu_images_per_s", "ms_per_image")}
    results["ceiling"] = {**after, **mean, "before": before}
    if args.fast:
        results["ceiling_fast"] = ceiling(args, small, cores, fast=True)
        results["tag_fast"] = run_tag(args, folders_for(lib, args.count), out / "tags-fast.jsonl", "--fast-decode")
    if "dataloader" not in args.skip:
        log("PyTorch DataLoader + eager loop")
        results["dataloader"] = run_dataloader(args, small[: args.dataloader_count])
    if "predict" not in args.skip:
        log("shell loop of wanwu predict")
        results["predict_loop"] = predict_loop(args, small, args.count)
    if args.ray_count:
        log(f"wanwu tag --ray vs local, {args.ray_count:,} images")
        ray_sources = folders_for(lib, args.ray_count)
        results["ray"] = {"local": run_tag(args, ray_sources, out / "tags-local.jsonl"),
                          "ray": run_ray(args, ray_sources, out / "tags-ray.jsonl", cores)}
    if args.big_count:
        log(f"wanwu tag, {args.big_count:,} images (peak RSS)")
        results["tag_big"] = run_tag(args, folders_for(lib, args.big_count), out / "tags-big.jsonl")
    results["load_after"] = os.getloadavg()[0]
    print(table(results))
    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=2, ensure_ascii=False, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
