"""Trained models in the store: ``<home>/trained/NAME@V/``, one folder per version, never edited after it appears.

A version is built in a hidden partial folder and renamed into place in one step, so a run killed at
any point leaves no version behind (the store's clean-up rule removes its partial folder later:
``wanwu.store.remove_stale``); ``rm`` renames a version out of sight before deleting it, for the same reason.
"""

from __future__ import annotations

import errno
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from wanwu.errors import InvalidNameError, UnknownModelError, WanwuError
from wanwu.store import Layout, install, remove_folder, write_file
from wanwu.store import new_partial as new_partial_folder

VERSION_FILE = "version.json"
_NEW = "new-version"  # what a partial folder is named after: its version number is chosen at commit
NAME_CHARS = "letters, digits, '-', '_' and '.' (not first), at most 64"


def check_name(name: str) -> str:
    """A model name is one path component: letters (any script), digits, ``-``, ``_``, ``.``; no ``@``, no ``/``."""
    ok = 0 < len(name) <= 64 and name[0].isalnum() and all(ch.isalnum() or ch in "-_." for ch in name)
    if not ok:
        raise InvalidNameError(f"invalid model name {name!r}: use {NAME_CHARS}")
    from wanwu.models.registry import list_models

    if name in {spec.name for spec in list_models()}:
        raise InvalidNameError(f"{name!r} is a built-in ImageNet model; give your model another name")
    return name


def parse_ref(ref: str) -> tuple[str, int | None]:
    """``NAME`` (the newest version) or ``NAME@V``."""
    name, at, version = ref.partition("@")
    if not at:
        return name, None
    if not version.isdigit() or int(version) < 1:
        raise InvalidNameError(f"invalid version in {ref!r}: expected NAME@1, NAME@2, ...")
    return name, int(version)


@dataclass(frozen=True)
class Version:
    name: str
    version: int
    path: Path
    manifest: dict

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


def _read(path: Path) -> Version | None:
    name, _, number = path.name.rpartition("@")
    try:
        manifest = json.loads((path / VERSION_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # not a version (or one being removed): listing never fails on it
    if not number.isdigit() or manifest.get("name") != name or manifest.get("version") != int(number):
        return None
    return Version(name, int(number), path, manifest)


def versions(home: Path, name: str | None = None) -> list[Version]:
    """Every version in the store (of ``name``), sorted by name then version."""
    root = Layout(home).trained
    if not root.is_dir():
        return []
    pattern = f"{name}@*" if name else "*@*"
    found = [v for p in root.glob(pattern) if not p.name.startswith(".") and (v := _read(p)) is not None]
    return sorted(found, key=lambda v: (v.name, v.version))


def is_trained_ref(ref: str | None, home: Path) -> bool:
    return bool(ref) and ("@" in ref or bool(versions(home, parse_ref(ref)[0])))  # type: ignore[arg-type]


def resolve(home: Path, ref: str) -> Version:
    """``NAME@V``, or the newest version of ``NAME``; an unknown one lists what is there."""
    name, number = parse_ref(ref)
    found = versions(home, name)
    match = [v for v in found if number is None or v.version == number]
    if not match:
        there = ", ".join(v.ref for v in versions(home)) or "none (train one with `wanwu train DATA --name NAME`)"
        raise UnknownModelError(f"no trained model {ref!r} in {Layout(home).trained}; trained models: {there}")
    return match[-1]


def new_partial(home: Path) -> Path:
    """An empty hidden folder to build a version in; stale ones of dead runs are removed first."""
    return new_partial_folder(Layout(home).trained / _NEW)


def commit(home: Path, partial: Path, name: str, manifest: dict, version: int | None = None,
           finish: Callable[[Path, int], dict[str, str]] | None = None) -> Version:
    """Write ``version.json`` into ``partial`` and rename it to ``NAME@V`` (V: ``version``, else the next free one).

    ``finish(partial, V)`` writes files that name the version (the report) and returns their SHA-256s.
    """
    check_name(name)
    while True:
        number = version or max((v.version for v in versions(home, name)), default=0) + 1
        files = {**manifest.get("files", {}), **(finish(partial, number) if finish else {})}
        data = {"name": name, "version": number, "model": f"{name}@{number}", **manifest, "files": files}
        data.update(name=name, version=number, model=f"{name}@{number}")
        write_file(partial / VERSION_FILE, json.dumps(data, indent=2, ensure_ascii=False) + "\n", durable=True)
        target = Layout(home).version(name, number)
        if install(partial, target):  # one rename; False when another run took this number first
            return Version(name, number, target, data)
        if version is not None:
            raise FileExistsError(errno.EEXIST, "this version is already in the store", str(target))


def remove(home: Path, ref: str) -> Version:
    found = resolve(home, ref)
    if "@" not in ref:
        raise WanwuError(f"say which version to remove: {found.ref} (the newest of {found.name})")
    remove_folder(found.path)  # gone from listings at once; deleting a big folder takes a moment
    return found
