"""``wanwu serve``: builds settings from flags and the environment, then runs Uvicorn."""

from __future__ import annotations

import argparse


def add_serve_parser(sub) -> None:  # type: ignore[no-untyped-def]
    serve = sub.add_parser("serve", help="run the HTTP service and web page")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)


def run_serve(args: argparse.Namespace) -> int:
    raise SystemExit("wanwu serve is not built yet")
