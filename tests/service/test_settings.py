"""Settings: flag over WANWU_* variable over default; a bad value names its variable."""

from __future__ import annotations

import pytest

from wanwu.cli import build_parser
from wanwu.cli.serve import run_serve, settings_from_args
from wanwu.errors import WanwuError


def _settings(argv: list[str]):  # type: ignore[no-untyped-def]
    return settings_from_args(build_parser().parse_args(["serve", *argv]))


def test_flag_beats_environment_beats_default(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _settings([]).max_batch == 8
    monkeypatch.setenv("WANWU_MAX_BATCH", "4")
    monkeypatch.setenv("WANWU_REDIS_URL", "redis://127.0.0.1:1/0")
    assert _settings([]).max_batch == 4
    settings = _settings(["--batch-size", "2", "--fast-decode", "--cors-origin", "http://a.example"])
    assert (settings.max_batch, settings.fast_decode, settings.cors_origins) == (2, True, ["http://a.example"])
    assert settings.redis_url == "redis://127.0.0.1:1/0"


def test_a_bad_environment_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANWU_MAX_BATCH", "0")
    with pytest.raises(WanwuError, match=r"invalid setting max_batch \(WANWU_MAX_BATCH\)"):
        run_serve(build_parser().parse_args(["serve"]))


def test_unknown_model_fails_before_the_server_starts() -> None:
    with pytest.raises(WanwuError, match="unknown model 'nope'; ImageNet models"):
        run_serve(build_parser().parse_args(["serve", "--model", "nope"]))


@pytest.mark.parametrize(("variable", "field"), [("WANWU_THREADS", "inference_threads"), ("WANWU_INFERENCE_THREADS", "inference_threads"),
                                                 ("WANWU_BATCH_SIZE", "max_batch"), ("WANWU_MAX_BATCH", "max_batch")])
def test_the_documented_and_the_old_variable_both_work(monkeypatch: pytest.MonkeyPatch, variable: str, field: str) -> None:
    monkeypatch.setenv(variable, "3")
    assert getattr(_settings([]), field) == 3


def test_the_old_flags_are_hidden_aliases_of_the_shared_ones() -> None:
    old, new = _settings(["--inference-threads", "2", "--max-batch", "5"]), _settings(["--threads", "2", "--batch-size", "5"])
    assert (old.inference_threads, old.max_batch) == (new.inference_threads, new.max_batch) == (2, 5)
    help_text = build_parser()._subparsers._group_actions[0].choices["serve"].format_help()
    assert "--inference-threads" not in help_text and "--max-batch" not in help_text


def test_a_bad_documented_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANWU_BATCH_SIZE", "0")
    with pytest.raises(WanwuError, match=r"invalid setting max_batch \(WANWU_BATCH_SIZE\)"):
        run_serve(build_parser().parse_args(["serve"]))
