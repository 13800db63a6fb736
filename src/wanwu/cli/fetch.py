"""``wanwu fetch``: download and verify a model's official weights (and make its INT8 version)."""

from __future__ import annotations

import argparse
import importlib.util

from wanwu.cli.common import dim, err_line, home_of, progress


def add_parser(sub) -> argparse.ArgumentParser:  # type: ignore[no-untyped-def]
    fetch = sub.add_parser("fetch", help="download and verify a model's official weights")
    fetch.add_argument("model", metavar="MODEL", help="an ImageNet model (`wanwu models` lists them)")
    fetch.add_argument("--url", help="a mirror to download from (the official hash is still checked)")
    fetch.add_argument(
        "--no-int8", dest="int8", action="store_false",
        help="do not also make the INT8 version (from the shipped photos) that --precision auto can pick",
    )
    fetch.set_defaults(handler=run)
    return fetch


def run(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    from wanwu.models import get_model_spec
    from wanwu.weights import download_weights, find_weights

    spec = get_model_spec(args.model)
    home = home_of(args)
    found = find_weights(spec, home)
    if found is None:
        columns = (*Progress.get_default_columns()[:1], BarColumn(), DownloadColumn(), TransferSpeedColumn())
        with progress(*columns, transient=False) as bar:

            def start(total: int | None, name: str):  # type: ignore[no-untyped-def]
                if bar.disable:
                    err_line(f"downloading {name}" + (f" ({total / 1e6:.1f} MB)" if total else ""))
                task = bar.add_task(name, total=total)
                return lambda n: bar.advance(task, n)

            found = download_weights(spec, home, url=args.url, progress=start)
    print(f"{spec.name}: {found.path} (sha256 {found.sha256}, {found.source})")
    return _make_ready_int8(args, spec.name) if args.int8 else 0


def _make_ready_int8(args: argparse.Namespace, model: str) -> int:
    """What `make setup` does for the bundled model: an INT8 version calibrated on the shipped photos, so
    `--precision auto` has it to pick where it is faster and agrees with fp32 (else auto keeps fp32)."""
    from wanwu.cli.common import command_name

    missing = [name for name in ("openvino", "nncf") if importlib.util.find_spec(name) is None]
    if missing:
        err_line(f"no INT8 version made: it needs {' and '.join(missing)} (pip install 'wanwu[quantize]'); "
                 f"--precision auto runs fp32 until `{command_name()} quantize {model}`")
        return 0
    from wanwu.cli.quantize import print_int8
    from wanwu.cpu import usable_cores
    from wanwu.loader import ModelRequest, open_source
    from wanwu.precision.calibration import shipped_photos
    from wanwu.precision.int8 import quantize

    err_line(f"making {model}'s INT8 version from the shipped photos (once; --no-int8 skips it)")
    source = open_source(ModelRequest(model, weights=None, home=home_of(args)))
    artifact = quantize(source, [shipped_photos()], threads=usable_cores(), log=dim)  # quantize's own defaults
    print_int8(artifact, source.spec.name, "openvino")
    return 0
