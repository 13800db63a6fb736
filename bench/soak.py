#!/usr/bin/env python3
"""Soak: steady load on `wanwu serve` for N minutes; RSS sampled each minute must stay flat (< 5 % growth).

    .venv/bin/python bench/soak.py [--minutes 10] [--concurrency 8] [--model efficientnet_lite0]

Growth is measured from the end of the first minute (allocator pools and caches are warm by then)
to the end of the run. Every request is a cache miss unless --cache is given.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):  # run as a file: bench/ is not installed, import it from this checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.suite.common import SHARED, title  # noqa: E402
from bench.suite.servers import stop, wait_http  # noqa: E402

BENCH, SAMPLES = SHARED / "bench", SHARED / "data" / "imagenet-samples"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=int, default=10)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--model", default="efficientnet_lite0")
    ap.add_argument("--cache", action="store_true")
    args = ap.parse_args()
    print(title(f"soak: {args.model}, {args.minutes} min at concurrency {args.concurrency}"), flush=True)
    seed_python = subprocess.run([str(BENCH / "setup.sh")], capture_output=True, text=True, check=True).stdout.strip() + "/bin/python"
    home = Path(tempfile.mkdtemp(prefix="wanwu-soak-"))
    port = 18300
    cmd = [sys.executable, "-m", "wanwu.cli", "--home", str(home), "serve", "--port", str(port), "--model", args.model]
    proc = subprocess.Popen(cmd + ([] if args.cache else ["--cache-size", "0"]), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_http(f"http://127.0.0.1:{port}/readyz")
        samples = []
        for minute in range(args.minutes):
            subprocess.run([seed_python, str(BENCH / "load.py"), "--url", f"http://127.0.0.1:{port}/v1/classify",
                            "--images", str(SAMPLES), "-c", str(args.concurrency), "-d", "60", "--tool", "wrk", "--json"],
                           check=True, capture_output=True)
            samples.append(rss_mb(proc.pid))
            print(f"minute {minute + 1}: RSS {samples[-1]:.1f} MB", flush=True)
    finally:
        stop(proc.pid)
    growth = (samples[-1] - samples[0]) / samples[0] * 100
    print(f"RSS after minute 1: {samples[0]:.1f} MB; after minute {args.minutes}: {samples[-1]:.1f} MB; growth {growth:+.2f} %")
    return 0 if growth < 5 else 1


if __name__ == "__main__":
    sys.exit(main())
