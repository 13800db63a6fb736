"""Command-line options shared by several commands (``wanwu predict``, ``eval``, ``serve``, ...), defined once."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from wanwu.ranking import LANGS

__all__ = ["LANGS", "add_model_options"]


def _model_options() -> dict[str, dict]:
    """The options that pick a model and how it runs, defined once for every command (choices from the registries)."""
    from wanwu.engines import ENGINES, PRECISIONS
    from wanwu.models import list_models
    from wanwu.precision.auto import AUTO

    return {
        # not argparse choices: an unknown name gets the registry's own error (exit 1, the valid names listed)
        "model": {"metavar": "MODEL", "help": f"{', '.join(s.name for s in list_models())} (default: resnet18 if its "
                  "weights are here, else efficientnet_lite0)"},
        "engine": {"choices": list(ENGINES), "help": "inference engine (default: the fastest installed)"},
        "weights": {"type": Path, "help": "your own checkpoint for the model (loaded strictly)"},
        "precision": {"choices": (AUTO, *PRECISIONS), "help": "auto (default: the fastest precision ready for this model, "
                      "timed once on this CPU), fp32, bf16 or int8 (after `wanwu quantize`)"},
        "threads": {"type": int, "help": "inference threads (default: all cores)"},
    }


def add_model_options(
    parser: argparse.ArgumentParser, names: Sequence[str] = ("model", "engine", "weights", "precision", "threads"),
    dest_prefix: str = "", repeatable: Sequence[str] = (),
) -> None:
    """``--model``, ``--engine``, ... on ``parser``; every default is None (the command or settings decide)."""
    options = _model_options()
    for name in names:
        extra = {"action": "append"} if name in repeatable else {}
        parser.add_argument(f"--{name}", dest=f"{dest_prefix}{name}", **options[name], **extra)
