"""``wanwu quantize``: make an INT8 model, or measure the bf16 guard's margin, on your images."""

from __future__ import annotations

import argparse
from pathlib import Path

from wanwu.cli.common import add_options, command_name, dim, model_source, print_json, threads_of


def add_parser(sub) -> argparse.ArgumentParser:  # type: ignore[no-untyped-def]
    quantize = sub.add_parser(
        "quantize",
        help="make an INT8 model (or measure the bf16 guard's margin) on your images",
        description="Calibrate INT8 activation ranges on a few hundred images like the ones you will classify "
        "(NNCF, OpenVINO). The artifact is cached in the store, keyed by the weights and the calibration set, "
        "with an accuracy report beside it. (Dynamic quantization of the final Linear layer alone, the old "
        "recipe, leaves every convolution in fp32: it is not INT8 for a CNN.) With --precision bf16: measure "
        "on the same views the top-1/top-2 gap below which --precision bf16 re-runs an image in fp32.",
    )
    quantize.add_argument("model", metavar="MODEL", help="the model to quantize (`wanwu models` lists them)")
    quantize.add_argument("--precision", default="int8", choices=("int8", "bf16"), help="int8 (default) or bf16 (the guard)")
    quantize.add_argument(
        "--target", type=float, default=0.995, help="bf16: top-1 agreement with fp32 the guard aims for on the views (0.995)"
    )
    quantize.add_argument(
        "--calib", type=Path, action="append", metavar="DIR",
        help="folder of calibration images like the ones you will classify (repeatable; default: the five photos wanwu ships)",
    )
    quantize.add_argument("--engine", default="openvino", choices=("openvino",), help="the engine (openvino)")
    add_options(quantize, ("weights", "threads"))
    quantize.add_argument("--subset", type=int, default=300, help="at most this many calibration images (default 300)")
    quantize.add_argument(
        "--no-augment", dest="augment", action="store_false", help="calibrate on the images only (no mirrored/cropped views)"
    )
    quantize.add_argument(
        "--accuracy-control",
        action="store_true",
        help="NNCF accuracy-aware search: revert layers to fp32 until top-1 agreement drops ≤ 1 point (slow, ~10 min)",
    )
    quantize.add_argument("--eval", type=Path, metavar="DIR", help="labelled folder (<wnid>_*.JPEG) for the accuracy report")
    quantize.add_argument("--json", action="store_true", help="print the accuracy report as JSON")
    quantize.set_defaults(handler=run)
    return quantize


def run(args: argparse.Namespace) -> int:
    from wanwu.precision.calibration import shipped_photos

    source, threads = model_source(args), threads_of(args)
    args.calib = args.calib or [shipped_photos()]
    if args.precision == "bf16":
        return _calibrate_bf16(args, source, threads)
    from wanwu.precision.int8 import quantize

    artifact = quantize(source, args.calib, engine=args.engine, subset=args.subset, augment=args.augment,
                        accuracy_control=args.accuracy_control, eval_dir=args.eval, threads=threads, log=dim)
    if args.json:
        print_json({"artifact": str(artifact.path), "reused": artifact.reused, **(artifact.report or {})})
    else:
        print_int8(artifact, source.spec.name, args.engine)
    return 0


def print_int8(artifact, model: str, engine: str) -> None:  # type: ignore[no-untyped-def]
    """An INT8 artifact for people: where it is, how it agrees with fp32, what auto will do with it."""
    from wanwu.precision.validated import FOLDER_PREFIX

    report = artifact.report or {}
    print(artifact.path)
    if report:
        folder = report.get("folder") or ""
        what = "images" if folder else "calibration views (no --eval folder)"
        if folder.startswith(FOLDER_PREFIX):
            what = "labelled photos (the wanwu project's measurement of this exact model; see report.json)"
        line = (
            f"int8 vs fp32 on {report['images']} {what}: top-1 agreement {report['top1_agreement']:.1%}, "
            f"top-5 overlap {report['top5_overlap']:.1%}"
        )
        if "top1_int8" in report:
            line += f", top-1 {report['top1_int8']:.1%} (fp32 {report['top1_fp32']:.1%})"
        if report.get("images_in_calibration_set"):
            line += f"; {report['images_in_calibration_set']} of them were in the calibration set"
        print(line)
        print(_auto_verdict(report["top1_agreement"]))
    print(f"use it: {command_name()} predict --model {model} --engine {engine} --precision int8 IMAGE")


def _auto_verdict(agreement: float) -> str:
    from wanwu.precision.auto import TARGET_AGREEMENT

    if agreement >= TARGET_AGREEMENT:
        return f"--precision auto (the default) runs it wherever it times faster than fp32 (agreement ≥ {TARGET_AGREEMENT:.0%})"
    return (f"below --precision auto's {TARGET_AGREEMENT:.0%} agreement target: auto keeps fp32 (--eval LABELLED_DIR "
            "measures on real photos; --precision int8 uses it anyway)")


def _calibrate_bf16(args: argparse.Namespace, source, threads: int) -> int:  # type: ignore[no-untyped-def]
    from wanwu.precision.bf16 import calibrate_bf16

    guard = calibrate_bf16(source, args.calib, subset=args.subset, target=args.target, eval_dir=args.eval,
                           threads=threads, log=dim)
    report = guard.report or {}
    if args.json:
        print_json({"artifact": str(guard.path), "reused": guard.reused, **report})
        return 0
    print(guard.path)
    what = "images" if report.get("folder") else "calibration views (no --eval folder)"
    line = (f"bf16 guard margin {guard.margin:.4f}; on {report['images']} {what}: top-1 agreement with fp32 "
            f"{report['top1_agreement']:.1%} guarded ({report['top1_agreement_unguarded']:.1%} unguarded), "
            f"{report['rechecked_fraction']:.1%} re-run in fp32")
    if "top1_bf16" in report:
        line += f", top-1 {report['top1_bf16']:.1%} (fp32 {report['top1_fp32']:.1%})"
    print(line)
    print(f"use it: {command_name()} predict --model {source.spec.name} --engine openvino --precision bf16 IMAGE")
    return 0
