"""The container's size budget, checked without buildah: builds what the Dockerfile's runtime stage ships and weighs it.

What the image adds to its base ("project layers") is the serving venv and the model bundle. This script builds
both the way deploy/Dockerfile does, in a temporary folder:

  1. a venv with ``constraints/runtime-${ENGINE}.txt`` (hash-checked, wheels only), then the wanwu wheel built
     from this checkout (``--no-deps``), as the ``lock`` and ``slim`` stages do;
  2. the model bundle: ``wanwu --home H export MODEL --engine ENGINE`` with the ``wanwu`` next to this Python
     (it needs PyTorch, as the ``build`` stage does), minus the engine's load cache (``ENGINE_CACHE=0``);
     with ENGINE=openvino the image also carries an INT8 version (~9 MB), which is not built here;
  3. ``deploy/slim-venv.sh`` with ``deploy/warmup.py``, which serves from the venv and keeps byte code only
     for what serving imported, as the ``slim`` stage does.

It prints the largest distributions (by the files their RECORD lists, after slimming), the venv, the bundle
and their sum, and the whole image: that sum plus the base image (``--base-mb``, default 130 MB: the size of
``python:3.11-slim``, a little more than the 127.7 MB stand-in ``deploy/base-image.sh`` makes). It exits 1 when
the project layers are over their budget (default 180 MB) or the whole image is over its own (default 298 MB,
the seed's claim); MB = 10^6 bytes, as image sizes are counted. With the defaults the second is the tighter
one: project layers may add at most 298 - 130 = 168 MB. Usage:

  python deploy/site_budget.py [--engine onnxruntime|openvino] [--budget-mb 180] [--base-mb 130]
                               [--image-budget-mb 298] [--top 15] [--json] [--keep DIR]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MB = 1_000_000


def run(cmd: list[str], **kw) -> None:  # type: ignore[no-untyped-def]
    print("+", " ".join(str(c) for c in cmd), file=sys.stderr, flush=True)
    subprocess.run(cmd, check=True, stdout=sys.stderr, **kw)


def build_venv(tmp: Path, engine: str) -> Path:
    venv = tmp / "venv"
    run([sys.executable, "-m", "venv", str(venv)])
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
    lock = REPO / "constraints" / f"runtime-{engine}.txt"
    run([*pip, "install", "--require-hashes", "--only-binary", ":all:", "-r", str(lock)])
    src = tmp / "src"  # a copy: building in place would leave build/ and *.egg-info in the checkout
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    shutil.copytree(REPO / "src", src / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    run([*pip, "wheel", "--no-deps", "-w", str(tmp / "dist"), str(src)])  # setuptools in an isolated build env
    (wheel,) = (tmp / "dist").glob("wanwu-*.whl")
    run([*pip, "install", "--no-deps", str(wheel)])
    return venv


def build_bundle(home: Path, model: str, engine: str) -> Path:
    wanwu = shutil.which("wanwu", path=str(Path(sys.executable).parent))
    if wanwu is None:
        raise SystemExit(f"no `wanwu` next to {sys.executable}: run this with the development venv's Python")
    run([wanwu, "--home", str(home), "export", model, "--engine", engine])
    compiled = home / "compiled"
    for pattern in ("*/openvino-*/cache-*/*", "*/onnxruntime-*/model.opt.onnx"):  # ENGINE_CACHE=0, as the Dockerfile
        for path in compiled.glob(pattern):
            if path.is_file():
                path.unlink()
    return compiled


def slim(venv: Path, home: Path) -> None:
    env = {**os.environ, "WANWU_HOME": str(home)}
    for name in ("WANWU_ENGINE", "WANWU_MODEL", "WANWU_PRECISION", "PYTHONPATH", "PYTHONDONTWRITEBYTECODE"):
        env.pop(name, None)
    run(["sh", str(REPO / "deploy" / "slim-venv.sh"), str(venv), str(REPO / "deploy" / "warmup.py")], env=env)


def size_of(path: Path) -> int:
    """Bytes as a layer holds them: every regular file's size, links not followed."""
    if path.is_file() and not path.is_symlink():
        return path.stat().st_size
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def by_distribution(venv: Path) -> list[tuple[str, int]]:
    """(distribution, bytes) from each dist-info's RECORD, counting the files still there; the rest as one row."""
    (site,) = venv.glob("lib/python3*/site-packages")
    seen: set[Path] = set()
    rows = []
    for record in site.glob("*.dist-info/RECORD"):
        name = record.parent.name.split("-")[0]
        total = 0
        with record.open(newline="") as f:
            for entry in csv.reader(f):
                path = (site / entry[0]).resolve() if entry else None
                if path and path not in seen and path.is_file():
                    seen.add(path)
                    total += path.stat().st_size
        rows.append((name, total))
    rest = sum(p.stat().st_size for p in site.rglob("*") if p.is_file() and not p.is_symlink() and p.resolve() not in seen)
    rows.append(("(files in no RECORD)", rest))
    return sorted(rows, key=lambda r: -r[1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--engine", choices=("onnxruntime", "openvino"), default="onnxruntime")
    ap.add_argument("--model", default="efficientnet_lite0")
    ap.add_argument("--budget-mb", type=float, default=180.0, help="for the project layers (venv + bundle)")
    ap.add_argument("--base-mb", type=float, default=130.0, help="the base image's size (python:3.11-slim: ~130)")
    ap.add_argument("--image-budget-mb", type=float, default=298.0, help="for the whole image: base + project layers")
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--json", action="store_true", help="also print the numbers as one JSON line (last line)")
    ap.add_argument("--keep", type=Path, help="build here and keep it (default: a temporary folder)")
    args = ap.parse_args(argv)

    tmp = args.keep or Path(tempfile.mkdtemp(prefix="wanwu-budget-"))
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        venv = build_venv(tmp, args.engine)
        bundle_bytes = size_of(build_bundle(tmp / "home", args.model, args.engine))  # before serving adds its caches
        slim(venv, tmp / "home")
        rows = by_distribution(venv)
        venv_bytes = size_of(venv)
    finally:
        if args.keep is None:
            shutil.rmtree(tmp, ignore_errors=True)
    return report(args, rows, venv_bytes, bundle_bytes)


def verdict(mb: float, budget_mb: float) -> str:
    return f"OVER by {mb - budget_mb:.1f} MB" if mb > budget_mb else "ok"


def report(args: argparse.Namespace, rows: list[tuple[str, int]], venv_bytes: int, bundle_bytes: int) -> int:
    """Prints the table and both budgets' verdicts; 1 when either is broken."""
    total_mb = (venv_bytes + bundle_bytes) / MB
    image_mb = args.base_mb + total_mb
    print(f"\nENGINE={args.engine} MODEL={args.model}: the largest of {len(rows) - 1} distributions in the slim venv")
    for name, size in rows[: args.top]:
        print(f"  {size / MB:8.1f} MB  {name}")
    print(f"  {venv_bytes / MB:8.1f} MB  /opt/venv (everything in it)")
    print(f"  {bundle_bytes / MB:8.1f} MB  /opt/wanwu/compiled (the model bundle)")
    print(f"project layers {total_mb:.1f} MB (budget {args.budget_mb:g} MB: {verdict(total_mb, args.budget_mb)})")
    print(f"whole image {image_mb:.1f} MB = base {args.base_mb:g} MB + project layers {total_mb:.1f} MB "
          f"(budget {args.image_budget_mb:g} MB: {verdict(image_mb, args.image_budget_mb)})")
    ok = total_mb <= args.budget_mb and image_mb <= args.image_budget_mb
    if args.json:
        print(json.dumps({"engine": args.engine, "model": args.model, "venv_mb": round(venv_bytes / MB, 1),
                          "bundle_mb": round(bundle_bytes / MB, 1), "total_mb": round(total_mb, 1),
                          "budget_mb": args.budget_mb, "base_mb": args.base_mb, "image_mb": round(image_mb, 1),
                          "image_budget_mb": args.image_budget_mb, "ok": ok,
                          "largest": [[n, round(s / MB, 1)] for n, s in rows[: args.top]]}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
