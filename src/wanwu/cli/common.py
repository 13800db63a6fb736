"""What every ``wanwu`` command shares, defined once: the options (flag -> ``WANWU_*`` variable -> default) and output.

Output follows where it goes: on a terminal, rich tables and progress bars; in a pipe or a log, plain lines
(errors never wrapped mid-sentence, no progress bars).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wanwu.ranking import LANGS

__all__ = ["LANGS", "add_options", "command_name", "err_line", "home_of", "print_json", "progress"]

THREADS_DEFAULT = "the usable cores — CPU affinity and the container's CPU quota"


@dataclass(frozen=True)
class Option:
    """One shared option: its ``WANWU_*`` variable (read as the default) and what its default is, in words."""

    env: str
    help: str
    default: str
    kwargs: dict[str, Any] = field(default_factory=dict)


def _model_help() -> str:
    from wanwu.models import list_models

    names = ", ".join(s.name for s in list_models())
    return f"an ImageNet model ({names}) or a trained one: NAME@V, or NAME for its newest version (`wanwu models`)"


def _options() -> dict[str, Option]:
    from wanwu.engines import ENGINES, PRECISIONS
    from wanwu.precision.auto import AUTO

    return {
        "home": Option("WANWU_HOME", "weight store, trained models and caches", "~/.cache/wanwu",
                       {"type": Path, "metavar": "DIR"}),
        # not argparse choices: an unknown name gets the loader's error (exit 1, ImageNet and trained models listed)
        "model": Option("WANWU_MODEL", _model_help(), "resnet18 if its weights are here, else efficientnet_lite0",
                        {"metavar": "MODEL"}),
        "engine": Option("WANWU_ENGINE", "inference engine", "the fastest installed", {"choices": list(ENGINES)}),
        "weights": Option("WANWU_WEIGHTS", "your own checkpoint for the model (loaded strictly)", "the official weights",
                          {"type": Path, "metavar": "FILE"}),
        "precision": Option("WANWU_PRECISION", "auto, fp32, bf16 or int8 (int8 after `wanwu quantize`)",
                            "auto: the fastest precision ready for this model, timed once on this CPU",
                            {"choices": (AUTO, *PRECISIONS), "metavar": "PRECISION"}),
        "threads": Option("WANWU_THREADS", "inference threads", THREADS_DEFAULT, {"type": int, "metavar": "N"}),
        "batch-size": Option("WANWU_BATCH_SIZE", "images per engine call", "8", {"type": int, "metavar": "N"}),
        "max-pixels": Option("WANWU_MAX_PIXELS", "images with more pixels are refused from their header", "64,000,000",
                             {"type": int, "metavar": "N"}),
        "max-bytes": Option("WANWU_MAX_BYTES", "larger image files are refused before reading", "256 MiB",
                            {"type": int, "metavar": "BYTES"}),
    }


OPTIONS_MODEL = ("model", "engine", "weights", "precision", "threads")


def _help(option: Option, default: str) -> str:
    """``inference threads (WANWU_THREADS; default: ...)``: every flag's help names its variable."""
    return f"{option.help} ({option.env}; default: {default})"


def add_options(
    parser: argparse.ArgumentParser, names: Sequence[str] = OPTIONS_MODEL, *, repeatable: Iterable[str] = (),
    defaults: dict[str, tuple[Any, str]] | None = None, dest_prefix: str = "", from_env: bool = True,
) -> None:
    """The shared options ``names`` on ``parser``. Each reads its ``WANWU_*`` variable as the default (``from_env``;
    the service reads them through its settings instead); ``defaults`` gives a command's own (value, words)."""
    options, defaults, repeatable = _options(), defaults or {}, set(repeatable)
    for name in names:
        option = options[name]
        value, words = defaults.get(name, (None, option.default))
        kwargs = dict(option.kwargs)
        if name in repeatable:  # an env default would be appended to: the command falls back on it instead
            kwargs["action"] = "append"
            words += "; repeatable"
        elif from_env:
            value = os.environ.get(option.env, value)  # a string: argparse converts it with the option's type
        parser.add_argument(f"--{name}", dest=f"{dest_prefix}{name.replace('-', '_')}", default=value,
                            help=_help(option, words), **kwargs)


def env_list(name: str, values: list | None, convert: Callable[[str], Any] = str) -> list | None:
    """A repeatable option's values, else its ``WANWU_*`` variable (comma-separated), else None."""
    if values:
        return values
    raw = os.environ.get(_options()[name].env)
    return [convert(v.strip()) for v in raw.split(",") if v.strip()] if raw else None


def add_home(parser: argparse.ArgumentParser, top: bool = False) -> None:
    """``--home`` before the subcommand (``top``) and after it: the subcommand's only sets it when given."""
    option = _options()["home"]
    parser.add_argument("--home", default=None if top else argparse.SUPPRESS, **option.kwargs,
                        help=_help(option, option.default))


def home_of(args: argparse.Namespace) -> Path:
    from wanwu.store import wanwu_home

    return args.home or wanwu_home()


def model_source(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """The model and weights ``--model`` / ``--weights`` name, from the store (for export, quantize, bench)."""
    from wanwu.loader import ModelRequest, open_source

    return open_source(ModelRequest(getattr(args, "model", None), weights=args.weights, home=home_of(args)))


def threads_of(args: argparse.Namespace) -> int:
    from wanwu.cpu import usable_cores

    return args.threads or usable_cores()


def image_limits(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """``--max-bytes`` / ``--max-pixels`` for local files; a refused image names the flag and variable to raise."""
    from wanwu.preprocess import ImageLimits
    from wanwu.tagging.decode import TAG_LIMITS  # local files: the limits `wanwu tag` applies, not an upload's

    return ImageLimits(max_bytes=args.max_bytes or TAG_LIMITS.max_bytes, max_pixels=args.max_pixels or TAG_LIMITS.max_pixels,
                       bytes_setting="--max-bytes / WANWU_MAX_BYTES", pixels_setting="--max-pixels / WANWU_MAX_PIXELS")


def pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def print_json(obj: object) -> None:
    print(json.dumps(obj, ensure_ascii=False), flush=True)


def console(stderr: bool = False):  # type: ignore[no-untyped-def]
    from rich.console import Console  # lazy: the parser is built at every start, rich only when printing

    return Console(stderr=stderr)


def err_line(message: str, style: str = "") -> None:
    """One message on stderr, never wrapped mid-sentence (styled on a terminal only)."""
    if not sys.stderr.isatty():
        print(message, file=sys.stderr, flush=True)
        return
    console(stderr=True).print(message, style=style or None, markup=False, highlight=False, soft_wrap=True)


def dim(message: str) -> None:
    err_line(message, "dim")


def progress(*columns, transient: bool = True):  # type: ignore[no-untyped-def]
    """A rich progress bar on stderr when it is a terminal; off in a pipe or a log (no ``━━━ 98/…`` lines)."""
    from rich.progress import Progress

    err = console(stderr=True)
    return Progress(*columns, console=err, transient=transient, disable=not err.is_terminal)


def command_name() -> str:
    """How to run wanwu again, for hints like ``use it: wanwu predict …``: ``wanwu`` where that is on PATH and is
    this one, else the path it was run as (``.venv/bin/wanwu``), else ``python -m wanwu.cli``."""
    argv0 = sys.argv[0] if sys.argv else ""
    on_path = shutil.which("wanwu")
    if Path(argv0).name == "wanwu":
        same = on_path is not None and Path(on_path).resolve() == Path(argv0).resolve()
        return "wanwu" if same else shlex.quote(argv0)
    return f"{shlex.quote(sys.executable)} -m wanwu.cli"


def environment_epilog() -> str:
    """The top-level help's table of variables, from the same definitions as the flags."""
    lines = ["environment (flag -> WANWU_* variable -> default; a flag beats its variable):"]
    for name, option in _options().items():
        default = "per command (`wanwu COMMAND --help`)" if name == "batch-size" else option.default
        lines.append(f"  --{name:<11} {option.env:<17} {default}")
    lines.append("  serve's flags: each has its WANWU_<SETTING> variable, named in `wanwu serve --help`")
    return "\n".join(lines)
