"""The servers compared over HTTP: start one, know when it answers, stop it and everything it started.

- the seed service (``run_seed.sh``: Flask + eager PyTorch under gunicorn), as written and tuned;
- the peer (``run_peer.sh``: LitServe with dynamic batching on ONNX Runtime fp32), the way a careful
  engineer serves the same ResNet-18 with off-the-shelf parts;
- ``wanwu serve`` in a configuration (``Variant``).

All answer the multipart field ``image``. ``stop`` waits until every process of the server has
exited: LitServe's workers linger for seconds after their leader, and a server still running
halves whatever is measured next on two cores.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Set
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Variant:
    """A `wanwu serve` configuration (each also gets --model resnet18 --weights <synthetic> --cache-size 0)."""

    engine: str = "openvino"
    precision: str = "fp32"
    fast_decode: bool = False
    extra: tuple[str, ...] = ()

    @property
    def flags(self) -> list[str]:
        fast = ["--fast-decode"] if self.fast_decode else []
        return ["--engine", self.engine, "--precision", self.precision, *fast, *self.extra]


VARIANTS = {
    "wanwu": Variant(),
    "wanwu auto": Variant(precision="auto"),  # the default: the fastest ready precision on this CPU
    "wanwu auto w0": Variant(precision="auto", extra=("--max-wait-ms", "0")),
    "wanwu auto 2w": Variant(precision="auto", extra=("--inference-workers", "2")),
    "wanwu ort": Variant(engine="onnxruntime"),
    "wanwu w0": Variant(extra=("--max-wait-ms", "0")),
    "wanwu 2w": Variant(extra=("--inference-workers", "2")),
    "wanwu b16": Variant(extra=("--batch-size", "16")),
    "wanwu bf16": Variant(precision="bf16"),
    "wanwu int8": Variant(precision="int8"),
    "wanwu fast": Variant(fast_decode=True),
    "wanwu bf16 fast": Variant(precision="bf16", fast_decode=True),
    "wanwu int8 fast": Variant(precision="int8", fast_decode=True),
}
# the seed: gunicorn, 2 workers; "tuned" is its README's one torch thread per worker
SEEDS = {"seed as written": {}, "seed tuned": {"SEED_THREADS": "1"}}
# the peer: (LitServe workers, ONNX Runtime threads each); 1 × 2 is its best form, 2 × 1 measured slower
PEERS = {"peer": (1, 2), "peer 2w": (2, 1)}
CONFIGS = (*SEEDS, *PEERS, *VARIANTS)


@dataclass(frozen=True)
class Started:
    pid: int  # the server's main process; it leads a process group where the server makes one
    url: str  # where to POST images
    seconds: float  # launch -> answering


def wait_http(url: str, timeout: float = 120.0) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return time.perf_counter() - started
        except OSError:
            pass
        time.sleep(0.02)
    raise RuntimeError(f"{url} never answered 200")


def _script(seed_bench: Path, script: str, args: list[str], env: dict[str, str]) -> tuple[int, float]:
    """Runs a ``run_*.sh`` of the seed bench, which returns once its server answers and prints the server's PID."""
    started = time.perf_counter()
    out = subprocess.run([str(seed_bench / script), *args], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{script} {' '.join(args)} failed: {out.stderr.strip()[-2000:]}")
    return int(out.stdout.strip().splitlines()[-1]), time.perf_counter() - started


def start_seed(seed_bench: Path, config: str, port: int) -> Started:
    env = {k: v for k, v in os.environ.items() if k not in ("SEED_THREADS", "OMP_WAIT_POLICY")} | SEEDS[config]
    pid, seconds = _script(seed_bench, "run_seed.sh", [str(port), "2"], env)
    return Started(pid, f"http://127.0.0.1:{port}/", seconds)


def start_peer(seed_bench: Path, config: str, port: int) -> Started:
    """The peer; its first start in a machine also makes its venv and exports the ONNX model (minutes)."""
    workers, threads = PEERS[config]
    pid, seconds = _script(seed_bench, "run_peer.sh", [str(port), str(workers), str(threads)], dict(os.environ))
    return Started(pid, f"http://127.0.0.1:{port}/predict", seconds)


def start_wanwu(port: int, weights: Path, home: Path, flags: list[str]) -> Started:
    cmd = [sys.executable, "-m", "wanwu.cli", "--home", str(home), "serve", "--port", str(port), "--model", "resnet18",
           "--weights", str(weights), "--cache-size", "0", *flags]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/readyz")
    except RuntimeError:
        stop(proc.pid)
        raise
    return Started(proc.pid, f"http://127.0.0.1:{port}/v1/classify", time.perf_counter() - started)


def start(config: str, port: int, seed_bench: Path, weights: Path, home: Path, wanwu_args: list[str]) -> Started:
    if config in SEEDS:
        return start_seed(seed_bench, config, port)
    if config in PEERS:
        return start_peer(seed_bench, config, port)
    return start_wanwu(port, weights, home, VARIANTS[config].flags + wanwu_args)


def _processes() -> dict[int, tuple[int, int, str]]:
    """pid -> (parent pid, process group, state) of every process, from /proc."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                state, ppid, pgid = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:3]
            except (OSError, ValueError):
                continue  # exited while we looked
            found[int(entry.name)] = (int(ppid), int(pgid), state)
    return found


def server_processes(pid: int, known: Set[int] = frozenset()) -> set[int]:
    """The live processes of the server led by ``pid``: it, its descendants, its process group's members, and ``known``.

    ``known``: processes seen earlier (a worker whose parent has exited is no longer its descendant).
    """
    procs = {p: info for p, info in _processes().items() if info[2] != "Z"}  # a zombie has exited
    members = {p for p, (_, pgid, _) in procs.items() if pgid == pid or p in known}
    todo = [pid] if pid in procs else []
    while todo:
        parent = todo.pop()
        members.add(parent)
        todo.extend(p for p, (ppid, _, _) in procs.items() if ppid == parent and p not in members)
    return members


def _signal(pids: set[int], sig: signal.Signals) -> None:
    for p in pids:
        try:
            os.kill(p, sig)
        except ProcessLookupError:
            pass


@dataclass(frozen=True)
class Stopped:
    seconds: float  # SIGTERM -> every process gone
    killed: tuple[int, ...]  # the processes still there after the grace period, ended by SIGKILL

    def __str__(self) -> str:
        killed = f", {len(self.killed)} SIGKILLed after the grace period" if self.killed else ""
        return f"every process gone after {self.seconds:.1f} s{killed}"


def stop(pid: int, grace: float = 10.0) -> Stopped:
    """Stop the server led by ``pid`` and wait until all its processes have exited.

    SIGTERM goes to its process group where it leads one (LitServe, wanwu), else to it alone (gunicorn
    stops its own workers). Whatever is left after ``grace`` seconds gets SIGKILL: LitServe's inference
    worker has been seen still computing 20 s after its leader exited, which would slow the next server.
    """
    started = time.perf_counter()
    known = server_processes(pid)
    leads_group = any(pgid == pid for _, pgid, _ in _processes().values())
    try:
        os.killpg(pid, signal.SIGTERM) if leads_group else os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    killed: set[int] = set()
    while left := _left(pid, known):
        waited = time.perf_counter() - started
        if waited > grace + 10:
            raise RuntimeError(f"server {pid}: processes {sorted(left)} survived SIGKILL")
        if waited > grace:
            _signal(left - killed, signal.SIGKILL)
            killed |= left
        time.sleep(0.1)
    return Stopped(time.perf_counter() - started, tuple(sorted(killed)))


def _left(pid: int, known: set[int]) -> set[int]:
    try:
        os.waitpid(pid, os.WNOHANG)  # reap it where it is our child (wanwu), else it stays a zombie
    except ChildProcessError:
        pass
    return server_processes(pid, known)
