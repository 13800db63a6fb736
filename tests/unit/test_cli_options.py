"""The command line's shape: one name per concept, each flag's variable in its help, --home anywhere, plain output
in a pipe, and hints that name a command that runs."""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from wanwu.cli import build_parser, main
from wanwu.cli.common import command_name, err_line, progress
from wanwu.cli.models import _print_models, auto_setting

# the least each command needs to parse
MINIMAL = {
    "predict": ["x.jpg"], "models": [], "fetch": ["resnet18"], "eval": ["folder"], "export": [], "quantize": ["resnet18"],
    "bench": [], "train": ["data", "--name", "n"], "tag": ["lib"], "serve": [], "dupes": ["tags.jsonl"],
    "search": ["tags.jsonl", "狗"], "similar": ["tags.jsonl", "x.jpg"],
}
RUNS_A_MODEL = {"predict", "eval", "quantize", "bench", "train", "tag", "serve"}
BATCHES = {"eval", "bench", "tag", "serve"}
GONE = {"--batch", "--max-batch", "--inference-threads"}  # old names: hidden aliases at most


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def _visible(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {opt: a for a in parser._actions if a.help != argparse.SUPPRESS for opt in a.option_strings}


def test_every_command_is_listed() -> None:
    assert set(_subparsers()) == set(MINIMAL)


@pytest.mark.parametrize("command", sorted(MINIMAL))
def test_home_goes_before_or_after_the_command(command: str, tmp_path: Path) -> None:
    parser = build_parser()
    before = parser.parse_args(["--home", str(tmp_path), command, *MINIMAL[command]])
    after = parser.parse_args([command, *MINIMAL[command], "--home", str(tmp_path)])
    neither = parser.parse_args([command, *MINIMAL[command]])
    assert before.home == after.home == tmp_path and neither.home is None


def test_home_after_a_models_action(tmp_path: Path) -> None:
    assert build_parser().parse_args(["models", "rm", "a@1", "--home", str(tmp_path)]).home == tmp_path


@pytest.mark.parametrize("command", sorted(MINIMAL))
def test_one_name_per_concept(command: str) -> None:
    options = _visible(_subparsers()[command])
    assert not GONE & set(options), f"{command} still shows {GONE & set(options)}"
    if command in RUNS_A_MODEL:
        assert "--threads" in options and "WANWU_THREADS" in options["--threads"].help
        assert "the usable cores — CPU affinity and the container's CPU quota" in options["--threads"].help
    if command in BATCHES:
        assert "--batch-size" in options and "WANWU_BATCH_SIZE" in options["--batch-size"].help
    if "--model" in options:
        assert "NAME@V" in options["--model"].help and "newest version" in options["--model"].help


@pytest.mark.parametrize("command", sorted(MINIMAL))
def test_every_argument_has_help(command: str) -> None:
    parser = _subparsers()[command]
    undocumented = [a.dest for a in parser._actions if not a.help and not isinstance(a, argparse._SubParsersAction)]
    assert not undocumented, f"{command}: {undocumented}"


def test_shared_options_read_their_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"WANWU_THREADS": "3", "WANWU_MAX_PIXELS": "5000", "WANWU_BATCH_SIZE": "2", "WANWU_ENGINE": "onnxruntime"}.items():
        monkeypatch.setenv(name, value)
    args = build_parser().parse_args(["eval", "folder"])
    assert (args.threads, args.max_pixels, args.batch_size, args.engine) == (3, 5000, 2, "onnxruntime")
    assert build_parser().parse_args(["eval", "folder", "--threads", "1"]).threads == 1  # the flag wins


def test_serve_help_shows_variables_not_dest_metavars() -> None:
    serve = _subparsers()["serve"]
    text = serve.format_help()
    assert "SERVE_" not in text
    for option in ("--port PORT", "--cors-origin ORIGIN", "--host HOST", "--log-level LEVEL"):
        assert option in text
    for opt, action in _visible(serve).items():
        if opt not in {"-h", "--help"}:
            assert "WANWU_" in action.help, f"serve {opt}: its variable is not in its help"


def test_version(capsys) -> None:  # type: ignore[no-untyped-def]
    from wanwu.version import __version__

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"wanwu {__version__}"


def test_bare_wanwu_prints_help_and_exits_0(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: wanwu") and "predict" in out and "WANWU_THREADS" in out and "WANWU_HOME" in out


def test_the_pixel_limit_error_names_a_flag_predict_has() -> None:
    from wanwu.cli.common import image_limits

    args = build_parser().parse_args(["predict", "x.jpg", "--max-pixels", "100"])
    limits = image_limits(args)
    options = _visible(_subparsers()["predict"])
    for setting in (limits.pixels_setting, limits.bytes_setting):
        flag, variable = setting.split(" / ")
        assert flag in options and variable in options[flag].help
    assert limits.max_pixels == 100


def test_piped_output_is_plain(capsys) -> None:  # type: ignore[no-untyped-def]
    assert progress().disable  # stderr is captured: no bar
    long = "an error that is rather long " * 6
    err_line(long.strip(), "red")
    assert capsys.readouterr().err == long.strip() + "\n"


def test_models_table_keeps_names_whole_at_80_columns(monkeypatch: pytest.MonkeyPatch, capsys) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("COLUMNS", "80")
    key = "Intel Xeon|openvino 2025.1.0|threads=4|batch=8|fp32,int8"
    row = {"model": "efficientnet_lite0", "weights": "package", "top1": 75.1, "converted": ["onnxruntime", "openvino"],
           "reports": [{"precision": "int8", "top1_agreement": 0.99}], "precision_auto": [{"key": key, "precision": "int8"}]}
    _print_models(Path("/some/store"), [row, {**row, "model": "efficientnet_lite2"}])
    out = capsys.readouterr().out
    assert max(map(len, out.splitlines())) <= 80
    assert "efficientnet_lite0" in out and "efficientnet_lite2" in out
    assert auto_setting(key) == "openvino 2025.1.0, 4 threads, batch 8"


def test_hint_names_the_path_when_wanwu_is_not_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = tmp_path / "venv" / "bin" / "wanwu"
    script.parent.mkdir(parents=True)
    script.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -m wanwu.cli \"$@\"\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(sys, "argv", [str(script), "train"])
    assert command_name() == str(script)
    monkeypatch.setenv("PATH", str(script.parent))
    assert command_name() == "wanwu"
    monkeypatch.setattr(sys, "argv", ["/x/wanwu/cli/__main__.py", "train"])  # python -m wanwu.cli
    hint = command_name()
    assert hint.endswith("-m wanwu.cli")
    ran = subprocess.run([*shlex.split(hint), "--version"], capture_output=True, text=True, env=os.environ)
    assert ran.returncode == 0 and ran.stdout.startswith("wanwu ")
