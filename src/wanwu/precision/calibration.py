"""A calibration set: the images a reduced precision is fitted on, their hashes, and where the result goes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from wanwu.datasets import image_files
from wanwu.precision.store import calibration_hash
from wanwu.precision.views import CalibrationViews, choose_subset
from wanwu.sources import ModelSource
from wanwu.weights import sha256_file

Log = Callable[[str], None]


def quiet(message: str) -> None:
    return None


def shipped_photos() -> Path:
    """The five public-domain/CC0 photos wanwu ships (licences in their README.md): the default calibration set,
    so a ready INT8 version can be made on any machine, offline, without the user's images."""
    return Path(str(resources.files("wanwu") / "photos"))


@dataclass(frozen=True)
class CalibrationSet:
    files: tuple[Path, ...]
    digests: dict[Path, str]

    def artifact_folder(self, bundle: Path, prefix: str, recipe: dict) -> tuple[str, Path]:
        """The calibration hash (images + recipe) and the artifact folder it names in ``bundle``."""
        calib_hash = calibration_hash(self.digests, recipe)
        return calib_hash, bundle / f"{prefix}{calib_hash[:12]}"

    def views(self, source: ModelSource, per_image: int) -> CalibrationViews:
        return CalibrationViews(self.files, self.digests, source.spec.preprocessing, per_image)

    def describe(self, source: ModelSource, calib_hash: str, folders: Sequence[Path]) -> dict:
        """The part of ``calibration.json`` every kind of artifact shares."""
        return {
            "model": source.spec.name,
            "weights_sha256": source.weights_sha256,
            "calib_hash": calib_hash,
            "images": len(self.files),
            "files": sorted(_relative(p, folders) for p in self.files),
            "folders": [str(d) for d in folders],
        }


def calibration_set(folders: Sequence[Path], subset: int | None) -> CalibrationSet:
    """At most ``subset`` images from ``folders`` and their subfolders (a trained model's ImageFolder calibrates
    on its own training images), spread evenly, with their content hashes."""
    files = choose_subset(image_files(folders, what="calibration folder", recursive=True), subset)
    return CalibrationSet(tuple(files), {p: sha256_file(p) for p in files})


def _relative(path: Path, folders: Sequence[Path]) -> str:
    """``path`` inside the calibration folder it came from (class folders kept: two classes may both hold 000.png)."""
    for folder in folders:
        if path.is_relative_to(folder):
            return path.relative_to(folder).as_posix()
    return path.name
