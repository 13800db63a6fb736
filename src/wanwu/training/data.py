"""A training set from an ImageFolder: content hashes, duplicates, files that disagree, and the validation split."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from wanwu.errors import DatasetError
from wanwu.imagefolder import ImageFolder, check_trainable, discover
from wanwu.training import Reporter, Silent


@dataclass(frozen=True)
class Sample:
    path: Path
    sha256: str
    label: int
    cutout: bool = False  # has transparency (``--crop auto`` letterboxes a set of mostly cut-outs)


@dataclass
class TrainingSet:
    folder: ImageFolder
    train: list[Sample]
    val: list[Sample]
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # (file, why): not images, unreadable, corrupt
    duplicates: list[tuple[Path, Path]] = field(default_factory=list)  # (dropped copy, kept file), same class
    conflicts: list[dict] = field(default_factory=list)  # one file under several classes: every copy dropped
    val_overlap: list[Path] = field(default_factory=list)  # --val files identical to training files: dropped

    @property
    def names(self) -> list[str]:
        return [c.english for c in self.folder.classes]


def _hashed(folder: ImageFolder, skipped: list[tuple[Path, str]], reporter: Reporter, what: str) -> list[Sample]:
    out = []
    reporter.stage(f"reading {what}", sum(len(p) for p in folder.files))
    for label, path in ((label, p) for label, paths in enumerate(folder.files) for p in paths):
        try:
            data = path.read_bytes()
        except OSError as err:
            skipped.append((path, f"unreadable: {err.strerror or err}"))
        else:
            why, cutout = _header(data)
            if why is not None:
                skipped.append((path, why))  # before hashing: copies of one non-image must not count as an image
            else:
                out.append(Sample(path, hashlib.sha256(data).hexdigest(), label, cutout))
        reporter.advance()
    return out


def _header(data: bytes) -> tuple[str | None, bool]:
    """Why ``data`` is not an image wanwu reads, or None (its header only: cheap); and whether it is a cut-out (an
    image with an alpha channel has it decoded once more here: the price of ``--crop auto`` knowing before extraction)."""
    from wanwu.errors import ImageError
    from wanwu.preprocess import ImageLimits, open_checked

    try:
        img = open_checked(data, ImageLimits(max_bytes=len(data) + 1, max_pixels=1 << 62))
    except ImageError as err:
        return str(err), False  # "not an image wanwu can read; ...", or the limit it breaks
    return None, _see_through(img)


def _see_through(img) -> bool:  # type: ignore[no-untyped-def]
    """Whether some pixel is transparent: an alpha channel alone is not enough (opaque RGBA screenshots and exports
    are photos); only images that have one are decoded, within the default pixel limit."""
    from wanwu.preprocess import ImageLimits, has_transparency

    if not has_transparency(img) or img.width * img.height > ImageLimits().max_pixels:
        return False
    try:
        alpha = img.getchannel("A") if "A" in img.getbands() else img.convert("RGBA").getchannel("A")
        return alpha.getextrema()[0] < 255
    except (OSError, ValueError, SyntaxError):  # a damaged file: extraction will say why
        return False


def _dedupe(samples: list[Sample], folder: ImageFolder, data: TrainingSet) -> list[Sample]:
    """Drops repeated copies within a class, and every copy of a file found under two or more classes."""
    by_hash: dict[str, list[Sample]] = defaultdict(list)
    for s in samples:
        by_hash[s.sha256].append(s)
    kept = []
    for sha, group in by_hash.items():
        classes = sorted({s.label for s in group})
        if len(classes) > 1:
            data.conflicts.append({
                "sha256": sha, "classes": [folder.classes[c].folder for c in classes], "paths": [str(s.path) for s in group],
            })
            continue
        kept.append(group[0])
        data.duplicates.extend((s.path, group[0].path) for s in group[1:])
    return sorted(kept, key=lambda s: (s.label, str(s.path)))


def usable(folder: ImageFolder, samples: list[Sample]) -> ImageFolder:
    """The folder with only ``samples`` left in it (to check the counts again after dropping files)."""
    files: list[list[Path]] = [[] for _ in folder.classes]
    for s in samples:
        files[s.label].append(s.path)
    return ImageFolder(folder.root, folder.classes, files, folder.skipped)


def drop_failed(data: TrainingSet, failed: list[tuple[Path, str]]) -> None:
    """Corrupt images are skipped and listed; the class counts are checked again without them."""
    bad = {path for path, _ in failed}
    listed = {path for path, _ in data.skipped}
    data.skipped.extend(f for f in failed if f[0] not in listed)  # a search extracts with two bases: listed once
    data.train = [s for s in data.train if s.path not in bad]
    data.val = [s for s in data.val if s.path not in bad]
    check_trainable(usable(data.folder, data.train + data.val), skipped=data.skipped, duplicates=data.duplicates)
    empty = [data.folder.root / c.folder for i, c in enumerate(data.folder.classes) if not any(s.label == i for s in data.train)]
    if empty:
        raise DatasetError(f"class folder {empty[0]} has no training image left after the validation split; add images")


def _rank_key(seed: int, sha256: str) -> str:
    return hashlib.sha256(f"{seed}:{sha256}".encode()).hexdigest()


def split(samples: list[Sample], fraction: float, seed: int) -> tuple[list[Sample], list[Sample]]:
    """Stratified and seeded: ``fraction`` of each class (at least one image, never all of them) to validation.

    Each class's images are ranked by a hash of the seed and their content, and the first ones
    validate: adding photos moves at most a boundary image between the sides, so a re-train reuses
    its cached embeddings (a shuffled permutation would reshuffle everything).
    """
    if not 0 <= fraction < 1:
        raise DatasetError(f"--val-split must be at least 0 and below 1, got {fraction}")
    train, val = [], []
    for label in sorted({s.label for s in samples}):
        group = sorted((s for s in samples if s.label == label), key=lambda s: _rank_key(seed, s.sha256))
        n_val = 0 if fraction == 0 else min(len(group) - 1, max(1, round(len(group) * fraction)))
        val.extend(group[:n_val])
        train.extend(group[n_val:])
    by_path = lambda s: (s.label, str(s.path))  # noqa: E731
    return sorted(train, key=by_path), sorted(val, key=by_path)


def _val_folder(val_dir: Path, folder: ImageFolder, data: TrainingSet, reporter: Reporter) -> list[Sample]:
    val = discover(val_dir, what="validation folder")
    index = {c.folder: i for i, c in enumerate(folder.classes)}
    unknown = [c.folder for c in val.classes if c.folder not in index]
    if unknown:
        raise DatasetError(
            f"validation folder {val_dir}: {', '.join(unknown)} is not a class of the training folder {folder.root}"
        )
    data.skipped.extend(val.skipped)
    samples = _hashed(val, data.skipped, reporter, "validation images")
    trained = {s.sha256 for s in data.train}
    data.val_overlap = [s.path for s in samples if s.sha256 in trained]
    return [Sample(s.path, s.sha256, index[val.classes[s.label].folder], s.cutout) for s in samples
            if s.sha256 not in trained]


def prepare(root: Path, labels_file: Path | None = None, val_dir: Path | None = None, val_split: float = 0.2,
            seed: int = 0, reporter: Reporter | None = None) -> TrainingSet:
    """Discover, hash and check ``root``; split off the validation images (or read ``val_dir``)."""
    folder = discover(root, labels_file)
    check_trainable(folder, skipped=folder.skipped)  # before hashing: an empty class or a single class fails at once
    reporter = reporter or Silent()
    data = TrainingSet(folder, [], [], list(folder.skipped))
    samples = _dedupe(_hashed(folder, data.skipped, reporter, "images"), folder, data)
    check_trainable(usable(folder, samples), skipped=data.skipped, duplicates=data.duplicates)
    if val_dir is not None:
        data.train = samples
        data.val = _val_folder(val_dir, folder, data, reporter)
    else:
        data.train, data.val = split(samples, val_split, seed)
    return data

