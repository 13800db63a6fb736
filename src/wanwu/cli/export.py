"""``wanwu export``: convert a model for the fast engines and cache it in the store."""

from __future__ import annotations

import argparse

from wanwu.cli.common import add_options, env_list, model_source


def add_parser(sub) -> argparse.ArgumentParser:  # type: ignore[no-untyped-def]
    export = sub.add_parser("export", help="convert a model for the fast engines and cache it in the store")
    export.add_argument("model", nargs="?", metavar="MODEL", help="the model to convert (default: the default model)")
    add_options(export, ("weights", "engine"), repeatable=("engine",), defaults={"engine": (None, "openvino")})
    export.set_defaults(handler=run)
    return export


def run(args: argparse.Namespace) -> int:
    from wanwu.loader import open_runner

    source = model_source(args)
    for engine in env_list("engine", args.engine) or ["openvino"]:
        open_runner(source, engine)
    print(source.bundle)
    return 0
