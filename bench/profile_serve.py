#!/usr/bin/env python3
"""Where a served request's CPU time goes: `wanwu serve` under load, split by thread, beside what each part costs alone.

The same server as bench/serve.py (ResNet-18 from a synthesized checkpoint, result cache off, the
100 ImageNet samples, c=16, wrk where installed). While the load runs, the CPU time of every thread
of the server is read from /proc: the main thread is the event loop, ``wanwu-decode_N`` (wanwu names
its threads) the decode pool, and the rest the engine (the inference thread and the engine's pool). Then, alone and single-threaded, the decode of the same images and the
engine's layers (OpenVINO's per-layer counters at batch 8): the gap between the two tables is what
serving adds (contention for the shared cores, Python, HTTP), and the layer table says where a
faster engine would have to come from.

    .venv/bin/python bench/profile_serve.py [--config "wanwu auto"] [--seconds 15] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):  # run as a file: bench/ and tests/ are not installed, import them from this checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.suite.common import SHARED, log, title, write_json  # noqa: E402
from bench.suite.http import Workload, load_python, prepare_resnet18, run_load  # noqa: E402
from bench.suite.preprocess import per_image_ms  # noqa: E402
from bench.suite.servers import VARIANTS, start_wanwu, stop  # noqa: E402
from wanwu.cpu import usable_cores  # noqa: E402

LOOP, DECODE, ENGINE = "event loop: HTTP, multipart, hashing, ranking, JSON", "decode: JPEG, resize, crop", \
    "engine: the inference thread and the engine's own threads"


def thread_cpu_s(pid: int) -> dict[int, tuple[str, float]]:
    """tid -> (OS thread name, user + system CPU seconds) for every thread of ``pid``."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the thread ended while we looked
        out[int(task.name)] = (name, (int(fields[11]) + int(fields[12])) / tick)
    return out


def role_of(pid: int, tid: int, name: str) -> str:
    # The event loop is the main thread. The engine's own threads (OpenVINO's pool) inherit the name of
    # whichever thread made them, so everything that is neither the loop nor a decode thread is engine work.
    return LOOP if tid == pid else DECODE if name.startswith("wanwu-decode") else ENGINE


def cpu_by_role(pid: int, before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]) -> dict[str, float]:
    seconds: dict[str, float] = collections.Counter()
    for tid, (name, cpu) in after.items():
        seconds[role_of(pid, tid, name)] += cpu - before.get(tid, (name, 0.0))[1]
    return dict(seconds)


def served(config: str, weights: Path, home: Path, workload: Workload, seconds: float, tool: str, extra: list[str]) -> dict:
    python = load_python(SHARED / "bench")
    server = start_wanwu(18190, weights, home, VARIANTS[config].flags + extra)
    try:
        run_load(SHARED / "bench", python, server.url, workload, 3, server.pid, tool)  # warm: every batch size seen
        before = thread_cpu_s(server.pid)
        load = run_load(SHARED / "bench", python, server.url, workload, seconds, server.pid, tool)
        after = thread_cpu_s(server.pid)
    finally:
        stop(server.pid)
    roles = cpu_by_role(server.pid, before, after)
    return {"load": load, "cpu_ms_per_request": {role: s * 1000 / load["ok"] for role, s in roles.items()}}


def engine_layers(config: str, weights: Path, home: Path, images: Path, batch: int = 8, runs: int = 10) -> dict:
    """OpenVINO's per-layer counters, one thread, batch ``batch``: ms per image by layer kind, and the slowest layers."""
    import numpy as np
    import openvino as ov

    from wanwu.benchmark import pixel_inputs
    from wanwu.engines.openvino_engine import PRECISION_HINT, with_pixel_input
    from wanwu.loader import ModelRequest, load
    from wanwu.models import get_model_spec
    from wanwu.precision.int8 import int8_model_file
    from wanwu.sources import open_source

    spec = get_model_spec("resnet18")
    source = open_source(spec, home, weights)
    precision = VARIANTS[config].precision
    if precision == "auto":
        precision = load(ModelRequest(engine="openvino", threads=usable_cores()), source).precision
    model_file = int8_model_file(source, "openvino") if precision == "int8" else source.onnx_path()
    core = ov.Core()
    model = with_pixel_input(core.read_model(str(model_file)), spec.preprocessing)
    compiled = core.compile_model(model, "CPU", {"INFERENCE_NUM_THREADS": 1, "NUM_STREAMS": 1, "PERF_COUNT": True,
                                                 "INFERENCE_PRECISION_HINT": PRECISION_HINT[precision], "ENABLE_CPU_PINNING": False})
    request = compiled.create_infer_request()
    pixels = pixel_inputs(spec.preprocessing, sorted(p for p in images.iterdir() if p.is_file())[:batch])
    x = np.ascontiguousarray(pixels[:batch])
    for _ in range(3):
        request.infer(x)
    kinds: dict[str, float] = collections.Counter()
    layers: dict[str, float] = collections.Counter()
    for _ in range(runs):
        request.infer(x)
        for info in request.profiling_info:
            ms = info.real_time.total_seconds() * 1000 / (runs * batch)
            kinds[f"{info.node_type} ({info.exec_type})"] += ms
            layers[info.node_name] += ms
    return {"precision": precision, "batch": batch, "ms_per_image": sum(kinds.values()),
            "by_kind": dict(kinds.most_common(6)), "slowest_layers": dict(layers.most_common(5))}


def print_report(config: str, result: dict) -> None:
    load, roles = result["served"]["load"], result["served"]["cpu_ms_per_request"]
    cores = usable_cores()
    print(title(f"`{config}` under c={load['concurrency']}: {load['rps']:.1f} req/s, server CPU {load['server_cpu_util'] / cores:.0%} "
                f"of {cores} cores"))
    print(f"\n{'served: CPU ms per request, by thread':<58} {'ms':>7}")
    for role in (LOOP, DECODE, ENGINE):
        print(f"  {role:<56} {roles.get(role, 0.0):7.2f}")
    served_total = sum(roles.values())
    print(f"  {'all server threads':<56} {served_total:7.2f}")
    print(f"  {'the load generator (same cores)':<56} {load['client_cpu_ms_per_req']:7.2f}")
    alone = result["alone"]
    print(f"\n{'alone, one thread: ms per image':<58} {'ms':>7}")
    print(f"  {'decode (same images, as served)':<56} {alone['decode_ms']:7.2f}")
    layers = alone["engine"]
    engine_row = f"engine, {layers['precision']} at batch {layers['batch']}"
    print(f"  {engine_row:<56} {layers['ms_per_image']:7.2f}")
    for kind, ms in layers["by_kind"].items():
        print(f"    {kind:<54} {ms:7.2f}")
    print("  slowest layers: " + ", ".join(f"{name} {ms:.2f}" for name, ms in layers["slowest_layers"].items()))
    engine_served, decode_served = roles.get(ENGINE, 0.0), roles.get(DECODE, 0.0)
    print(f"\nserving vs alone: engine {engine_served:.2f} vs {layers['ms_per_image']:.2f} ms "
          f"({engine_served / layers['ms_per_image']:.2f}×), decode {decode_served:.2f} vs {alone['decode_ms']:.2f} ms "
          f"({decode_served / alone['decode_ms']:.2f}×); the event loop adds {roles.get(LOOP, 0.0):.2f} ms")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="wanwu auto", choices=[c for c, v in VARIANTS.items() if v.engine == "openvino"])
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--wanwu-args", default="", help="extra flags for the server")
    ap.add_argument("--tool", choices=("aiohttp", "wrk"), default="wrk" if shutil.which("wrk") else "aiohttp")
    ap.add_argument("--json-out", type=Path)
    args = ap.parse_args()
    images = SHARED / "data" / "imagenet-samples"
    if not (SHARED / "bench" / "load.py").is_file() or not images.is_dir():
        sys.exit(f"seed bench or samples not found under {SHARED} (set WANWU_SHARED to the folder with bench/ and data/)")
    from wanwu.models import get_model_spec

    with tempfile.TemporaryDirectory(prefix="wanwu-profile-") as tmp:
        variant = VARIANTS[args.config]
        weights, home = prepare_resnet18(Path(tmp), images, int8=variant.precision in ("int8", "auto"))
        log(f"serving {args.config} for {args.seconds:g} s at c={args.concurrency}")
        result = {"config": args.config,
                  "served": served(args.config, weights, home, Workload(args.concurrency, images), args.seconds, args.tool,
                                   args.wanwu_args.split())}
        log("timing decode and the engine's layers alone")
        datas = [p.read_bytes() for p in sorted(images.iterdir()) if p.is_file()]
        result["alone"] = {"decode_ms": per_image_ms(datas, get_model_spec("resnet18").preprocessing, variant.fast_decode, runs=3),
                           "engine": engine_layers(args.config, weights, home, images)}
    print_report(args.config, result)
    if args.json_out:
        write_json(args.json_out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
