"""ImageFolder datasets (``DATA/<class>/*.jpg``): classes, their labels, and the files that are not images.

A class folder's name is its label, in any language; ``english|中文`` gives both languages, and a
labels file (``folder<TAB>english<TAB>中文`` per line) can name folders that are neither. Classes
are indexed in sorted folder-name order, like TorchVision's ``ImageFolder``. Files that are not images
are skipped and listed, never fatal; a folder that cannot be trained on is an error naming it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from wanwu.datasets import IMAGE_SUFFIXES
from wanwu.errors import DatasetError
from wanwu.labels import LabelSet

NOT_AN_IMAGE_NAME = "not an image file name"


@dataclass(frozen=True)
class ClassName:
    folder: str
    english: str
    chinese: str


@dataclass
class ImageFolder:
    root: Path
    classes: list[ClassName]
    files: list[list[Path]]  # per class index, sorted by name
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # (path, why)

    @property
    def labels(self) -> LabelSet:
        """English, Chinese and the folder names (in ``wnids``: a class's id is its folder name)."""
        return LabelSet(
            tuple(c.english for c in self.classes), tuple(c.chinese for c in self.classes), tuple(c.folder for c in self.classes)
        )

    def items(self) -> list[tuple[Path, int]]:
        return [(path, index) for index, paths in enumerate(self.files) for path in paths]


def _has_cjk(text: str) -> bool:
    return any("\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff" for ch in text)


def class_name(folder: str, names: dict[str, tuple[str, str]] | None = None) -> ClassName:
    """A folder name -> its labels: from the labels file, else ``english|中文``, else the name in both languages."""
    if names and folder in names:
        english, chinese = names[folder]
        return ClassName(folder, english, chinese or english)
    if "|" in folder:
        first, _, second = (part.strip() for part in folder.partition("|"))
        english, chinese = (second, first) if _has_cjk(first) and not _has_cjk(second) else (first, second)
        return ClassName(folder, english or chinese, chinese or english)
    return ClassName(folder, folder, folder)


def read_labels_file(path: Path) -> dict[str, tuple[str, str]]:
    """``folder<TAB>english[<TAB>中文]`` per line; blank lines and ``#`` comments are ignored."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise DatasetError(f"cannot read the labels file {path}: {err}") from err
    names: dict[str, tuple[str, str]] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = [p.strip() for p in line.split("\t")]
        if len(parts) < 2 or not parts[0] or not parts[1]:
            raise DatasetError(f"{path}:{number}: expected 'folder<TAB>english<TAB>中文', got {line!r}")
        names[parts[0]] = (parts[1], parts[2] if len(parts) > 2 else "")
    return names


def _class_files(folder: Path, skipped: list[tuple[Path, str]]) -> list[Path]:
    images = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts):
            continue  # .DS_Store, editors' swap files, a hidden folder: not part of the data
        if path.is_dir():
            continue
        if not path.is_file():
            skipped.append((path, "not a regular file"))
        elif path.suffix.lower() not in IMAGE_SUFFIXES | {".gif", ".tif", ".tiff"}:
            skipped.append((path, f"{NOT_AN_IMAGE_NAME} ({path.suffix or 'no suffix'})"))
        else:
            images.append(path)
    return images


def discover(root: Path, labels_file: Path | None = None, what: str = "training folder") -> ImageFolder:
    """The classes (sorted folder names) and image files under ``root``; checks nothing about counts."""
    if not root.is_dir():
        raise DatasetError(f"{what} {root} does not exist or is not a folder")
    names = read_labels_file(labels_file) if labels_file else None
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise DatasetError(f"{what} {root} has no class folders: put each class's images in {root}/<class name>/")
    skipped = [(p, "outside any class folder") for p in sorted(root.iterdir()) if p.is_file() and not p.name.startswith(".")]
    files = [_class_files(folder, skipped) for folder in folders]
    return ImageFolder(root, [class_name(f.name, names) for f in folders], files, skipped)


def check_trainable(data: ImageFolder, minimum: int = 2, skipped: Sequence[tuple[Path, str]] = (),
                    duplicates: Sequence[tuple[Path, Path]] = ()) -> None:
    """At least two classes, each with ``minimum`` images, or an error that names the folder and, where files were
    found but dropped (``skipped``: not images, unreadable; ``duplicates``: copies of another file), how many and why."""
    for name, paths in zip(data.classes, data.files, strict=True):
        folder = data.root / name.folder
        if len(paths) >= minimum:
            continue
        bad = [(p, why) for p, why in skipped if p.parent == folder]
        copies = [p for p, _ in duplicates if p.parent == folder]
        if not paths and not bad and not copies:
            raise DatasetError(f"class folder {folder} has no files (images: .jpg, .png, .webp, .bmp, .gif, .tiff)")
        found = len(paths) + len(bad) + len(copies)
        why = _dropped(bad)
        why += [f"{len(copies)} duplicate{'s' * (len(copies) != 1)} of another file"] if copies else []
        of = f" of {found} files found ({'; '.join(why)})" if why else ""
        raise DatasetError(f"class folder {folder} has {len(paths)} usable image{'s' * (len(paths) != 1)}{of}; "
                           f"each class needs at least {minimum}")
    if len(data.classes) < 2:
        raise DatasetError(
            f"{data.root} has one class ({data.root / data.classes[0].folder}); a classifier needs at least two class folders"
        )


def _dropped(bad: Sequence[tuple[Path, str]]) -> list[str]:
    """How many files were not named like images, and how many could not be read or decoded, each with a first example."""
    named = [(p, why) for p, why in bad if why.startswith(NOT_AN_IMAGE_NAME)]
    failed = [(p, why) for p, why in bad if not why.startswith(NOT_AN_IMAGE_NAME)]
    out = [f"{len(named)} not named like an image ({named[0][0].name}: {named[0][1]})"] if named else []
    return out + ([f"{len(failed)} could not be decoded ({failed[0][0].name}: {failed[0][1]})"] if failed else [])


def matched_items(root: Path, labels: LabelSet, what: str = "folder") -> list[tuple[Path, int]]:
    """An ImageFolder whose class folders are a model's classes -> (image, class index), for ``eval``."""
    data = discover(root, what=what)
    index = {folder: i for i, folder in enumerate(labels.wnids)}
    unknown = [c.folder for c in data.classes if c.folder not in index]
    if unknown:
        known = ", ".join(labels.wnids[:12]) + (" ..." if len(labels.wnids) > 12 else "")
        raise DatasetError(f"{what} {root}: class folder(s) {', '.join(unknown)} are not classes of this model ({known})")
    items = [(path, index[c.folder]) for c, paths in zip(data.classes, data.files, strict=True) for path in paths]
    if not items:
        raise DatasetError(f"{what} {root} has no images in its class folders")
    return items
