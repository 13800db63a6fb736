"""Whether starting a decode process would run the caller's script again.

A spawned process imports the parent's ``__main__`` script to find its functions, running its top-level code: a
script that calls ``wanwu.tag(...)`` outside ``if __name__ == "__main__":`` would start the run again in every
decode worker (each failing, so every image came back ``worker_crashed``). Such a caller gets its images decoded
in threads of its own process instead (slower on large photos: Pillow holds the GIL for part of a decode).
"""

from __future__ import annotations

import ast
import sys
from types import FrameType


def spawn_reruns_caller(frame: FrameType | None = None) -> bool:
    """True when the running ``__main__`` script calls us from its top level, outside a ``__name__`` guard."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if not path:
        return False  # an interactive session or a notebook: a spawned process imports nothing of it
    name = getattr(getattr(main, "__spec__", None), "name", None) or ""
    if name == "__main__" or name.endswith(".__main__"):
        return False  # `python -m package`: multiprocessing never imports a package's __main__ again
    frame = frame or sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "<module>" and frame.f_globals.get("__name__") in ("__main__", "__mp_main__"):
            return not _inside_main_guard(path, frame.f_lineno)
        frame = frame.f_back
    return False  # called from a function of the script (which is how a guarded script calls it, or a CLI)


def _inside_main_guard(path: str, line: int) -> bool:
    try:
        tree = ast.parse(open(path, encoding="utf-8").read())
    except (OSError, SyntaxError, ValueError):
        return False  # cannot tell: decode in threads, which always works
    return any(_is_main_guard(node) and node.lineno < line <= (node.end_lineno or node.lineno) for node in tree.body)


def _is_main_guard(node: ast.stmt) -> bool:
    if not isinstance(node, ast.If) or not isinstance(node.test, ast.Compare) or len(node.test.comparators) != 1:
        return False
    sides = [node.test.left, node.test.comparators[0]]
    names = [s.id for s in sides if isinstance(s, ast.Name)]
    values = [s.value for s in sides if isinstance(s, ast.Constant)]
    return isinstance(node.test.ops[0], ast.Eq) and names == ["__name__"] and values == ["__main__"]
