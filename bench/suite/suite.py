"""Runs the parts of ``bench/all.py`` in one process, one after the other, and collects their results."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.suite.common import machine

PARTS = ("engines", "preprocess", "http")
DEFAULT_CONFIGS = ("seed as written", "seed tuned", "peer", "wanwu", "wanwu bf16 fast", "wanwu int8 fast")


@dataclass(frozen=True)
class SuiteOptions:
    shared: Path  # holds data/imagenet-samples, data/photos and bench/ (the seed service and the peer)
    threads: int
    parts: tuple[str, ...] = PARTS
    runs: int = 20
    batches: tuple[int, ...] = (1, 8)
    seconds: float = 12
    rounds: int = 3
    concurrency: tuple[int, ...] = (1, 4, 16)
    configs: tuple[str, ...] = DEFAULT_CONFIGS
    large: bool = True  # 12 MP photos at concurrency 4 too
    tool: str = "wrk"

    @property
    def samples(self) -> Path:
        return self.shared / "data" / "imagenet-samples"

    @property
    def photos(self) -> Path:
        return self.shared / "data" / "photos"

    @property
    def seed_bench(self) -> Path:
        return self.shared / "bench"


def jpegs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))


def run_suite(options: SuiteOptions, log: Callable[[str], None] = print) -> dict:
    from bench.suite.engines import bench_source, measure_engines
    from bench.suite.http import Workload, measure_http
    from bench.suite.preprocess import make_large, measure_preprocess

    for folder in (options.samples, options.photos):
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder} not found; pass --shared DIR (the folder with data/ and bench/)")
    scratch = Path(tempfile.mkdtemp(prefix="wanwu-bench-"))
    try:
        home = scratch / "home"
        large = make_large(jpegs(options.photos), scratch / "large") if ("preprocess" in options.parts or options.large) else []
        result: dict = {"machine": machine(), "threads": options.threads}
        if "engines" in options.parts:
            sources = [bench_source(m, home, scratch) for m in ("efficientnet_lite0", "resnet18")]
            result["engines"] = measure_engines(sources, options.threads, list(options.batches), options.runs,
                                                # calibrated on the photos, not the samples: they are the evaluation set
                                                calib=[options.photos], log=log, samples=jpegs(options.samples))
        if "preprocess" in options.parts:
            source = bench_source("efficientnet_lite0", home, scratch)
            sets = {"typical (~500×375)": jpegs(options.samples), "12 MP (4000×3000, q90)": large}
            result["preprocess"] = measure_preprocess(source, sets, runs=15, threads=options.threads, log=log)
        if "http" in options.parts:
            if not (options.seed_bench / "load.py").is_file():
                log(f"skipping HTTP and cold start: no seed bench at {options.seed_bench}")
            else:
                workloads = [Workload(c, options.samples) for c in options.concurrency]
                if options.large:
                    workloads.append(Workload(4, large[0].parent))
                result["http"] = measure_http(options.seed_bench, workloads, list(options.configs), scratch,
                                              options.seconds, options.rounds, options.tool, log=log)
        result["load_average_after"] = os.getloadavg()
        return result
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
