"""The ``wanwu`` command line: a thin layer over the core (argument parsing and output only).

One module per command group, each with its parser and its handler (``add_parser(sub)`` sets ``handler``);
the options they share, and how they print, are in ``wanwu.cli.common``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from wanwu.cli import bench, dupes, evaluate, export, fetch, models, predict, quantize, search, serve, tag, train
from wanwu.cli.common import add_home, environment_epilog
from wanwu.errors import WanwuError
from wanwu.version import __version__

__all__ = ["build_parser", "main"]

COMMANDS = (predict, models, fetch, evaluate, export, quantize, bench, train, tag, dupes, search, serve)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wanwu", description="万物识别 — offline ImageNet-1k recognition",
                                     epilog=environment_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"wanwu {__version__}")
    add_home(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS:
        add_home(module.add_parser(sub))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:  # a bare `wanwu`: what it can do, not an error
        parser.print_help()
        return 0
    args.argv = list(sys.argv[1:] if argv is None else argv)  # recorded by `train` as the command that made a version
    try:
        return int(args.handler(args) or 0)
    except WanwuError as err:
        print(f"wanwu: error: {err}", file=sys.stderr)
        return 1
    except OSError as err:  # a file or folder the command could not read or write: one line, no traceback
        print(f"wanwu: error: {_os_error_line(err, args.home)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _os_error_line(err: OSError, home: Path | None) -> str:
    from wanwu.store import wanwu_home

    if not err.filename:
        return str(err)
    line = f"{err.strerror or err}: {err.filename}"
    store = (home or wanwu_home()).resolve()
    if store == Path(err.filename).resolve() or store in Path(err.filename).resolve().parents:
        line += " (the store: --home / WANWU_HOME)"
    return line
