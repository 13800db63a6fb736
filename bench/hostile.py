#!/usr/bin/env python3
"""Issue 13's acceptance measurements against a real `wanwu serve` (cache off): thin images under load,
oversized uploads, and load at c=64 / c=256. Server RSS is sampled every 50 ms throughout.

    .venv/bin/python bench/hostile.py [--parts thin uploads load] [--images DIR] [--home DIR]

thin:    normal requests at c=8 for --seconds, then again while 20000x1, 1x20000 and 100000x1 PNGs
         (and two 100000x1 at once) arrive every second: their status and latency, the others' p99.
uploads: 200 MB and 1 GB bodies, multipart and JSON, with a Content-Length and chunked, on raw
         sockets: the status, how much was sent before the answer, RSS growth.
load:    c=64 for 60 s and c=256 for 30 s: statuses (503s must carry Retry-After), RSS after
         the first 10 s and at the end.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


class Server:
    def __init__(self, home: Path, model: str, port: int) -> None:
        cmd = [sys.executable, "-m", "wanwu.cli", "--home", str(home), "serve", "--port", str(port), "--model", model,
               "--cache-size", "0", "--log-level", "warning"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.base, self.port = f"http://127.0.0.1:{port}", port
        self.peak, self._stop = 0.0, False
        threading.Thread(target=self._sample, daemon=True).start()
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise SystemExit("the server never became ready")

    def rss(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def _sample(self) -> None:
        while not self._stop and self.proc.poll() is None:
            self.peak = max(self.peak, self.rss())
            time.sleep(0.05)

    def reset_peak(self) -> float:
        self.peak = self.rss()
        return self.peak

    def stop(self) -> None:
        self._stop = True
        self.proc.terminate()
        self.proc.wait(30)


def _png(size: tuple[int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (10, 200, 30)).save(buf, "PNG")
    return buf.getvalue()


def _p(values: list[float], q: float) -> float:
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))] * 1000, 1) if values else 0.0


async def _load(base: str, images: list[bytes], concurrency: int, seconds: float, record: dict) -> None:
    """Closed-loop multipart load; ``record`` collects latencies of 200s and counts statuses."""
    record.setdefault("latencies", [])
    record.setdefault("statuses", {})
    record.setdefault("missing_retry_after", 0)
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:
        async def worker(i: int) -> None:
            while time.monotonic() < deadline:
                started = time.perf_counter()
                try:
                    r = await client.post("/v1/classify", files={"image": ("x.jpg", images[i % len(images)])})
                    status = r.status_code
                    if status == 503 and "retry-after" not in r.headers:
                        record["missing_retry_after"] += 1
                except httpx.HTTPError as err:
                    status = type(err).__name__
                record["statuses"][status] = record["statuses"].get(status, 0) + 1
                if status == 200:
                    record["latencies"].append(time.perf_counter() - started)
                i += concurrency

        await asyncio.gather(*(worker(i) for i in range(concurrency)))


async def _thin_while_loaded(server: Server, images: list[bytes], seconds: float) -> dict:
    thin = {"20000x1": _png((20_000, 1)), "1x20000": _png((1, 20_000)), "100000x1": _png((100_000, 1))}
    answers: list[dict] = []
    record: dict = {}

    async def inject() -> None:
        async with httpx.AsyncClient(base_url=server.base, timeout=60) as client:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                batch = [*thin.items(), ("100000x1 (2 at once)", thin["100000x1"]), ("100000x1 (2 at once)", thin["100000x1"])]

                async def one(name: str, data: bytes) -> None:
                    started = time.perf_counter()
                    r = await client.post("/v1/classify", files={"image": (f"{name}.png", data)})
                    answers.append({"image": name, "status": r.status_code, "ms": round((time.perf_counter() - started) * 1000, 1)})

                await asyncio.gather(*(one(n, d) for n, d in batch))
                await asyncio.sleep(1)

    await asyncio.gather(_load(server.base, images, 8, seconds, record), inject())
    worst = {}
    for a in answers:
        w = worst.setdefault(a["image"], {"statuses": set(), "max_ms": 0.0, "n": 0})
        w["statuses"].add(a["status"])
        w["max_ms"], w["n"] = max(w["max_ms"], a["ms"]), w["n"] + 1
    return {"thin": {k: {**v, "statuses": sorted(v["statuses"])} for k, v in worst.items()},
            "others_p99_ms": _p(record["latencies"], 0.99), "others_statuses": record["statuses"]}


def part_thin(server: Server, images: list[bytes], seconds: float) -> dict:
    server.reset_peak()
    baseline: dict = {}
    asyncio.run(_load(server.base, images, 8, seconds, baseline))
    base_peak = server.peak
    server.reset_peak()
    loaded = asyncio.run(_thin_while_loaded(server, images, seconds))
    return {"baseline_p99_ms": _p(baseline["latencies"], 0.99), "baseline_peak_rss_mb": round(base_peak),
            **loaded, "peak_rss_mb": round(server.peak)}


def _raw_upload(port: int, json_body: bool, total: int, chunked: bool) -> tuple[str, int]:
    prefix = b'{"images": ["' if json_body else b'--XX\r\nContent-Disposition: form-data; name="image"; filename="a"\r\n\r\n'
    suffix = b'"]}' if json_body else b"\r\n--XX--\r\n"
    ctype = "application/json" if json_body else "multipart/form-data; boundary=XX"
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {len(prefix) + total + len(suffix)}"
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(f"POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Type: {ctype}\r\n{framing}\r\n\r\n".encode())
    block, sent = b"A" * (1 << 20), 0

    def send(data: bytes) -> None:
        sock.sendall((b"%x\r\n" % len(data) + data + b"\r\n") if chunked else data)

    try:
        send(prefix)
        while sent < total:
            n = min(len(block), total - sent)
            send(block[:n])
            sent += n
        send(suffix)
        if chunked:
            sock.sendall(b"0\r\n\r\n")
    except OSError:
        pass  # the server answered and closed: what matters is the answer
    sock.settimeout(120)
    try:
        head = sock.recv(65536).split(b"\r\n", 1)[0].decode()
    except OSError as err:
        head = f"no answer ({type(err).__name__})"
    sock.close()
    return head, sent


def part_uploads(server: Server) -> list[dict]:
    out = []
    for total in (200 << 20, 1 << 30):
        for json_body in (False, True):
            for chunked in (False, True):
                before = server.reset_peak()
                head, sent = _raw_upload(server.port, json_body, total, chunked)
                time.sleep(0.5)
                out.append({"size_mb": total >> 20, "body": "json" if json_body else "multipart", "chunked": chunked,
                            "answer": head, "sent_mb": round(sent / (1 << 20)), "rss_growth_mb": round(server.peak - before)})
    return out


def part_load(server: Server, images: list[bytes]) -> list[dict]:
    out = []
    async def run(concurrency: int, seconds: float, record: dict) -> tuple[float, float]:
        task = asyncio.ensure_future(_load(server.base, images, concurrency, seconds, record))
        await asyncio.sleep(10)
        warm = server.rss()
        await task
        return warm, server.rss()

    for concurrency, seconds in ((64, 60), (256, 30)):
        record: dict = {}
        warm, end = asyncio.run(run(concurrency, seconds, record))
        out.append({"concurrency": concurrency, "seconds": seconds, "statuses": record["statuses"],
                    "p99_ms": _p(record["latencies"], 0.99), "missing_retry_after": record["missing_retry_after"],
                    "rss_after_10s_mb": round(warm), "rss_end_mb": round(end), "rss_growth_pct": round((end - warm) / warm * 100, 1)})
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", nargs="+", default=["thin", "uploads", "load"], choices=["thin", "uploads", "load"])
    ap.add_argument("--images", type=Path, default=ROOT.parent / "shared" / "data" / "imagenet-samples")
    ap.add_argument("--home", type=Path, help="store with the model (default: a new one; the first start exports it)")
    ap.add_argument("--model", default="efficientnet_lite0")
    ap.add_argument("--port", type=int, default=18313)
    ap.add_argument("--seconds", type=float, default=15)
    args = ap.parse_args()
    images = [p.read_bytes() for p in sorted(args.images.glob("*.JPEG"))[:32]] or [_png((640, 480))]
    server = Server(args.home or Path(tempfile.mkdtemp(prefix="wanwu-hostile-")), args.model, args.port)
    report: dict = {"ready_rss_mb": round(server.rss())}
    try:
        if "thin" in args.parts:
            report["thin"] = part_thin(server, images, args.seconds)
        if "uploads" in args.parts:
            report["uploads"] = part_uploads(server)
        if "load" in args.parts:
            report["load"] = part_load(server, images)
    finally:
        server.stop()
    print(json.dumps(report, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
