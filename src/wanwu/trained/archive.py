"""Portable archives of a trained version: a tar file with a SHA-256 manifest, verified before anything is installed.

``wanwu-model.json`` lists every file with its SHA-256; import reads only plain files named in it
(no paths, no links), hashes each as it is written into a hidden partial folder, and installs the
version with one rename only when every hash, the file list and ``version.json`` agree. A tampered
or truncated archive is refused and leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tarfile
from pathlib import Path

from wanwu.errors import ArchiveError
from wanwu.store import Layout, atomic_file, install
from wanwu.trained.store import VERSION_FILE, Version, check_name, new_partial, resolve, versions
from wanwu.weights import sha256_file

MANIFEST = "wanwu-model.json"
FORMAT = 1
_MAX_MANIFEST = 1 << 20


def export_version(home: Path, ref: str, target: Path) -> Version:
    """``NAME@V`` -> one tar file at ``target`` (written beside it, then renamed)."""
    version = resolve(home, ref)
    names = [VERSION_FILE, *sorted(version.manifest["files"])]
    hashes = {name: sha256_file(version.path / name) for name in names}
    for name, expected in version.manifest["files"].items():
        if hashes[name] != expected:
            raise ArchiveError(f"{version.path / name} does not match its version's manifest; the store copy is damaged")
    manifest = {"format": FORMAT, "model": version.ref, "name": version.name, "version": version.version, "files": hashes}
    with atomic_file(target) as tmp, tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        data = json.dumps(manifest, indent=2, ensure_ascii=False).encode()
        info = tarfile.TarInfo(MANIFEST)
        info.size, info.mode = len(data), 0o644
        tar.addfile(info, _bytes_io(data))
        for name in names:
            tar.add(version.path / name, arcname=name, recursive=False)
    return version


def _bytes_io(data: bytes):  # type: ignore[no-untyped-def]
    import io

    return io.BytesIO(data)


def _read_manifest(tar: tarfile.TarFile, source: Path) -> dict:
    try:
        member = tar.getmember(MANIFEST)
    except KeyError:
        raise ArchiveError(f"{source} is not a wanwu model archive (no {MANIFEST})") from None
    if not member.isreg() or member.size > _MAX_MANIFEST:
        raise ArchiveError(f"{source}: {MANIFEST} is not a small plain file")
    try:
        manifest = json.loads(tar.extractfile(member).read())  # type: ignore[union-attr]
        files, name, number = manifest["files"], manifest["name"], manifest["version"]
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise ArchiveError(f"{source}: {MANIFEST} is not valid ({err})") from None
    check_name(name)
    ok = isinstance(number, int) and number >= 1 and isinstance(files, dict) and VERSION_FILE in files
    if not ok or any(not _plain_name(f) or not isinstance(h, str) for f, h in files.items()):
        raise ArchiveError(f"{source}: {MANIFEST} lists a file that is not a plain name, or no {VERSION_FILE}")
    return manifest


def _plain_name(name: object) -> bool:
    return isinstance(name, str) and 0 < len(name) < 100 and "/" not in name and "\\" not in name and not name.startswith(".")


def _extract_verified(tar: tarfile.TarFile, manifest: dict, folder: Path, source: Path) -> None:
    expected = manifest["files"]
    seen = set()
    for member in tar.getmembers():
        if member.name == MANIFEST:
            continue
        if member.name not in expected or member.name in seen or not member.isreg():
            raise ArchiveError(f"{source}: unexpected entry {member.name!r} (not a plain file listed in {MANIFEST})")
        seen.add(member.name)
        digest = hashlib.sha256()
        with tar.extractfile(member) as src, open(folder / member.name, "wb") as out:  # type: ignore[union-attr]
            while chunk := src.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != expected[member.name]:
            raise ArchiveError(
                f"{source}: {member.name} does not match its SHA-256 in {MANIFEST} (tampered or damaged); nothing was imported"
            )
    missing = sorted(set(expected) - seen)
    if missing:
        raise ArchiveError(f"{source}: {', '.join(missing)} listed in {MANIFEST} but missing; nothing was imported")


def _check_version(folder: Path, manifest: dict, source: Path) -> dict:
    from wanwu.models.registry import get_model_spec
    from wanwu.trained.source import preprocessing_from

    try:
        data = json.loads((folder / VERSION_FILE).read_text(encoding="utf-8"))
        get_model_spec(data["base"]["model"])
        preprocessing_from(data["preprocessing"])  # a version from a newer wanwu is refused here, not served wrong
        consistent = data["name"] == manifest["name"] and data["version"] == manifest["version"]
        consistent = consistent and all(manifest["files"].get(f) == h for f, h in data["files"].items())
    except (ValueError, KeyError, TypeError) as err:
        raise ArchiveError(f"{source}: {VERSION_FILE} is not valid ({err})") from None
    if not consistent:
        raise ArchiveError(f"{source}: {VERSION_FILE} does not agree with {MANIFEST}; nothing was imported")
    return data


def import_archive(home: Path, source: Path) -> tuple[Version, bool]:
    """Verify and install ``source``; returns the version and whether it was new (False: already in the store)."""
    try:
        tar = tarfile.open(source, "r:*")
    except (OSError, tarfile.TarError) as err:
        raise ArchiveError(f"{source} is not a readable model archive: {err}") from err
    partial = new_partial(home)
    try:
        with tar:
            manifest = _read_manifest(tar, source)
            _extract_verified(tar, manifest, partial, source)
        data = _check_version(partial, manifest, source)
        name, number = manifest["name"], manifest["version"]
        existing = [v for v in versions(home, name) if v.version == number]
        if existing:
            if existing[0].manifest.get("files") == data["files"]:
                return existing[0], False
            raise ArchiveError(f"{name}@{number} is already in the store with other weights; remove it first "
                               f"(wanwu models rm {name}@{number})")
        target = Layout(home).version(name, number)
        if not install(partial, target):
            raise ArchiveError(f"{name}@{number} appeared in the store while importing; import again to compare")
        return Version(name, number, target, data), True
    except (tarfile.TarError, EOFError, OSError) as err:
        raise ArchiveError(f"{source} is damaged: {err}; nothing was imported") from err
    finally:
        shutil.rmtree(partial, ignore_errors=True)
