"""The malloc arena cap: set inside the server process, never over a user's MALLOC_ARENA_MAX."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from wanwu.service.memory import limit_malloc_arenas

_PROBE = "from wanwu.service.memory import limit_malloc_arenas as f; print(f({arenas}))"


def _probe(arenas: int, **env: str) -> str:
    environ = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"} | env
    done = subprocess.run([sys.executable, "-c", _PROBE.format(arenas=arenas)], env=environ, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_cap_is_set_in_a_fresh_process() -> None:
    assert _probe(2) == "True"


def test_zero_leaves_the_allocator_alone() -> None:
    assert limit_malloc_arenas(0) is False


def test_an_explicit_environment_variable_wins() -> None:
    assert _probe(2, MALLOC_ARENA_MAX="4") == "False"
