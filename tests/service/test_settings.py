"""Settings: flag over WANWU_* variable over default; a bad value names its variable."""

from __future__ import annotations

import pytest

from wanwu.cli import build_parser
from wanwu.errors import WanwuError
from wanwu.service.cli import run_serve, settings_from_args


def _settings(argv: list[str]):  # type: ignore[no-untyped-def]
    return settings_from_args(build_parser().parse_args(["serve", *argv]))


def test_flag_beats_environment_beats_default(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _settings([]).max_batch == 8
    monkeypatch.setenv("WANWU_MAX_BATCH", "4")
    monkeypatch.setenv("WANWU_REDIS_URL", "redis://127.0.0.1:1/0")
    assert _settings([]).max_batch == 4
    settings = _settings(["--max-batch", "2", "--fast-decode", "--cors-origin", "http://a.example"])
    assert (settings.max_batch, settings.fast_decode, settings.cors_origins) == (2, True, ["http://a.example"])
    assert settings.redis_url == "redis://127.0.0.1:1/0"


def test_a_bad_environment_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANWU_MAX_BATCH", "0")
    with pytest.raises(WanwuError, match=r"invalid setting max_batch \(WANWU_MAX_BATCH\)"):
        run_serve(build_parser().parse_args(["serve"]))


def test_unknown_model_fails_before_the_server_starts() -> None:
    with pytest.raises(WanwuError, match="unknown model 'nope'; valid models"):
        run_serve(build_parser().parse_args(["serve", "--model", "nope"]))


def test_default_threads_respect_a_cgroup_cpu_quota(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import os

    from wanwu.service.settings import _cores

    visible = len(os.sched_getaffinity(0))
    quota = tmp_path / "cpu.max"
    quota.write_text("max 100000\n")
    assert _cores(quota) == visible
    quota.write_text("50000 100000\n")  # half a core still gets one thread
    assert _cores(quota) == 1
    assert _cores(tmp_path / "missing") == visible


def test_the_engine_auto_timed_is_served_where_it_is_built_the_same_way(monkeypatch: pytest.MonkeyPatch) -> None:
    from wanwu.service import state

    opened: list[tuple[str, int]] = []
    monkeypatch.setattr(state, "open_engine", lambda name, source, threads, precision, streams: opened.append((precision, streams)) or "new")
    timed = {"fp32": "timed fp32", "int8": "timed int8"}
    assert state.serving_engine("openvino", None, 2, "int8", 1, timed) == "timed int8"
    assert timed == {} and opened == []  # no second compile; the fp32 one is let go
    assert state.serving_engine("openvino", None, 1, "int8", 2, {"int8": "timed int8"}) == "new"  # two streams: built anew
    assert state.serving_engine("openvino", None, 2, "bf16", 1, {"bf16": "unguarded"}) == "new"  # bf16 gets its guard
    assert state.serving_engine("openvino", None, 2, "fp32", 1, {}) == "new"  # explicit precision: nothing timed
    assert opened == [("int8", 2), ("bf16", 1), ("fp32", 1)]
