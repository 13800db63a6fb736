"""One store for reduced-precision artifacts, inside a model's bundle (already keyed by the weights' SHA-256).

An artifact is a folder ``<bundle>/<kind>-<calib_hash[:12]>/`` holding ``calibration.json`` (what
produced it), ``report.json`` (how far it is from fp32) and, for INT8, the model files. Folders are
written under a hidden partial name and renamed into place, so a killed run never leaves a half-written
artifact that a later load would pick up (and a later write removes its leftovers: ``wanwu.store.remove_stale``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from wanwu.store import atomic_folder, store_error

CALIBRATION = "calibration.json"
REPORT = "report.json"


@dataclass(frozen=True)
class Artifact:
    path: Path
    calibration: dict
    report: dict | None
    reused: bool = False

    def file(self, name: str) -> Path:
        return self.path / name


def find_artifacts(bundle: Path, prefix: str, required: tuple[str, ...] = ()) -> list[Artifact]:
    """Complete artifacts of one kind in a bundle, oldest first; unreadable or incomplete ones are skipped."""
    found = []
    for manifest in bundle.glob(f"{prefix}*/{CALIBRATION}"):
        folder = manifest.parent
        try:
            calibration = json.loads(manifest.read_text())
            report_path = folder / REPORT
            report = json.loads(report_path.read_text()) if report_path.is_file() else None
        except (OSError, ValueError):
            continue
        if isinstance(calibration, dict) and all((folder / name).is_file() for name in required):
            found.append(Artifact(folder, calibration, report))
    return sorted(found, key=lambda a: (a.calibration.get("created", 0), a.path.name))


def reuse(candidates: list, folder: Path, log: Callable[[str], None]):  # type: ignore[no-untyped-def]
    """The artifact already at ``folder`` (same weights, images and recipe), marked reused, or None."""
    for artifact in candidates:
        if artifact.path == folder:
            log(f"reusing {folder} (same weights, calibration images and recipe)")
            return dataclasses.replace(artifact, reused=True)
    return None


def newest(artifacts: list[Artifact]) -> Artifact | None:
    return artifacts[-1] if artifacts else None


def calibration_hash(digests: dict[Path, str], recipe: dict) -> str:
    """SHA-256 of the sorted (file name, content SHA-256) pairs plus the recipe."""
    h = hashlib.sha256()
    for name, digest in sorted((p.name, d) for p, d in digests.items()):
        h.update(f"{name}\0{digest}\n".encode())
    h.update(json.dumps(recipe, sort_keys=True).encode())
    return h.hexdigest()


def write_json(folder: Path, calibration: dict, report: dict) -> None:
    # the report first: an artifact counts as complete once its calibration.json exists
    (folder / REPORT).write_text(json.dumps(report, indent=2) + "\n")
    (folder / CALIBRATION).write_text(json.dumps(calibration, indent=2) + "\n")


def write_atomically(folder: Path, write: Callable[[Path], None]) -> None:
    """Run ``write`` on a hidden partial sibling folder, then rename it to ``folder`` (``wanwu.store.atomic_folder``).

    A store that cannot take it (read-only, full, not ours) is one ``StoreError`` naming the setting,
    and nothing is left behind; what killed writers left in the same folder is removed first. When
    another process finished the same artifact first, its folder is kept.
    """
    try:
        atomic_folder(folder, write)
    except (OSError, RuntimeError) as err:  # OpenVINO's save_model says RuntimeError("basic_ios::clear") on a full disk
        raise store_error(folder, err) from err
