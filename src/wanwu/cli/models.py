"""``wanwu models``: list the ImageNet models and the trained versions; ``rm``, ``export`` or ``import`` a trained one."""

from __future__ import annotations

import argparse
from pathlib import Path

from wanwu.cli.common import add_home, console, home_of, pct, print_json
from wanwu.errors import WanwuError
from wanwu.trained.companion import bases_of


def add_parser(sub) -> argparse.ArgumentParser:  # type: ignore[no-untyped-def]
    models = sub.add_parser("models", help="list models (ImageNet and trained versions); rm, export or import a trained one")
    models.add_argument("--json", action="store_true", help="one JSON object per model (every field, sha256 included)")
    actions = models.add_subparsers(dest="action", metavar="{rm,export,import}")
    rm = actions.add_parser("rm", help="remove a trained version NAME@V")
    rm.add_argument("ref", metavar="NAME@V", help="the trained version to remove")
    export = actions.add_parser("export", help="write a trained version to one archive file (SHA-256 manifest inside)")
    export.add_argument("ref", metavar="NAME@V", help="the trained version to export")
    export.add_argument("file", type=Path, metavar="FILE", help="the archive to write")
    imp = actions.add_parser("import", help="verify an archive and add its version to the store")
    imp.add_argument("file", type=Path, metavar="FILE", help="an archive made by `wanwu models export`")
    for action in (rm, export, imp):
        add_home(action)
    models.set_defaults(handler=run)
    return models


def run(args: argparse.Namespace) -> int:
    if getattr(args, "action", None):
        return _action(args)
    home = home_of(args)
    rows, trained = model_rows(home), trained_rows(home)
    if args.json:
        for row in [*rows, *trained]:
            print_json(row)
        return 0
    _print_models(home, rows)
    _print_trained(trained)
    return 0


def model_rows(home: Path) -> list[dict]:
    from wanwu.models import list_models
    from wanwu.precision import reports
    from wanwu.precision.auto import cached_choices
    from wanwu.sources import find_bundles
    from wanwu.weights import find_weights

    rows = []
    for spec in list_models():
        try:
            found = find_weights(spec, home)
            status, digest = (found.source, found.sha256) if found else ("missing", None)
        except WanwuError as err:
            status, digest = f"invalid: {err}", None
        pre, bundles = spec.preprocessing, [b for b, _ in find_bundles(home, spec)]
        rows.append({
            "model": spec.name, "weights": status, "sha256": digest, "bytes": spec.weights.num_bytes,
            "top1": spec.accuracy.top1, "top5": spec.accuracy.top5,
            "preprocessing": f"resize {pre.resize_size}, crop {pre.crop_size}, mean {pre.mean}, std {pre.std}",
            "converted": [b.name for b in bundles],
            "reports": [{"bundle": b.name, **r} for b in bundles for r in reports(b)],
            "precision_auto": [{"bundle": b.name, **c} for b in bundles for c in cached_choices(b)],
        })
    return rows


def _report_summary(r: dict) -> str:
    return (f"{r['precision']}: agrees {r.get('top1_agreement', float('nan')):.0%}"
            + (f" ({r['rechecked_fraction']:.0%} re-run in fp32)" if "rechecked_fraction" in r else ""))


def auto_setting(key: str) -> str:
    """``cpu|openvino 2025.1|threads=4|batch=8|fp32,int8`` -> ``openvino 2025.1, 4 threads, batch 8`` (the
    setting an ``auto`` choice was timed for: precision/auto.py's cache key)."""
    parts = key.rsplit("|", 4)
    if len(parts) < 5:
        return key
    _, engine, threads, batch, _ = parts
    return f"{engine}, {threads.removeprefix('threads=')} threads, batch {batch.removeprefix('batch=')}"


def _precision_cell(row: dict) -> str:
    lines = [_report_summary(r) for r in row["reports"]]
    lines += [f"auto: {c['precision']} for {auto_setting(c['key'])}" for c in row["precision_auto"]]
    return "\n".join(lines) or "—"


def _print_models(home: Path, rows: list[dict]) -> None:
    from rich.table import Table

    table = Table(title=f"store: {home}", title_justify="left")
    table.add_column("model", no_wrap=True, min_width=len(max((r["model"] for r in rows), key=len, default="")))
    for column in ("weights", "top-1", "converted (weights)", "precision (vs fp32; auto's pick per engine, threads, batch)"):
        table.add_column(column, overflow="fold")
    for row in rows:
        converted = ", ".join(name.rsplit("-", 1)[-1][:8] for name in row["converted"])  # bundles by their weights' hash
        table.add_row(row["model"], row["weights"], f"{row['top1']:.3f}", converted or "—", _precision_cell(row))
    console().print(table)


def trained_rows(home: Path) -> list[dict]:
    from wanwu.trained.store import versions

    rows = []
    for v in versions(home):
        m = v.manifest
        metrics = m.get("metrics") or {}
        rows.append({
            "model": v.ref, "kind": "trained", "base": bases_of(m), "classes": len(m["classes"]),
            "train_images": m["data"]["train_images"], "val_top1": metrics.get("top1"), "val_top5": metrics.get("top5"),
            "unknown_below": (m.get("unknown") or {}).get("threshold"), "created_at": m["created_at"],
            "head_sha256": m["files"]["head.npz"], "path": str(v.path),
        })
    return rows


def _print_trained(rows: list[dict]) -> None:
    from rich.table import Table

    if not rows:
        return
    # narrow enough for 80 columns; training images, top-5 and the rest are in --json
    table = Table(title="trained models (top-1 on validation; unknown: its threshold)", title_justify="left")
    for column in ("model", "base", "created"):
        table.add_column(column, no_wrap=True)
    for column in ("classes", "top-1", "unknown"):
        table.add_column(column, overflow="fold")
    for r in rows:
        table.add_row(r["model"], r["base"], r["created_at"][:10], str(r["classes"]), pct(r["val_top1"]),
                      "—" if r["unknown_below"] is None else f"{r['unknown_below']:.3f}")
    console().print(table)


def _action(args: argparse.Namespace) -> int:
    from wanwu.trained.archive import export_version, import_archive
    from wanwu.trained.store import remove

    home = home_of(args)
    if args.action == "rm":
        print(f"removed {remove(home, args.ref).ref}")
    elif args.action == "export":
        version = export_version(home, args.ref, args.file)
        print(f"{version.ref} -> {args.file} ({args.file.stat().st_size / 1e6:.1f} MB)")
    else:
        version, new = import_archive(home, args.file)
        print(f"imported {version.ref} ({version.path})" if new else f"{version.ref} is already in the store, unchanged")
    return 0
