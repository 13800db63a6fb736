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
    with pytest.raises(WanwuError, match="unknown model 'nope'; ImageNet models"):
        run_serve(build_parser().parse_args(["serve", "--model", "nope"]))
