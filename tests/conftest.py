"""Shared fixtures: real sample data, stores, synthesized weights.

``samples_dir``/``photos_dir`` are ../shared (or $WANWU_SHARED): skipped where absent, failed under CI=true.
``examples_dir`` is the repo's own public-domain photos, always there: the tests that need a real photo but
not a labelled ImageNet sample use it, so they run on a fresh clone.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import missing

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("WANWU_SHARED", REPO.parent / "shared"))
SAMPLES = SHARED / "data" / "imagenet-samples"
PHOTOS = SHARED / "data" / "photos"
EXAMPLES = REPO / "examples"


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    if not SAMPLES.is_dir():
        missing(f"real ImageNet samples not found at {SAMPLES} (set WANWU_SHARED)")
    return SAMPLES


@pytest.fixture(scope="session")
def photos_dir() -> Path:
    if not PHOTOS.is_dir():
        missing(f"photos not found at {PHOTOS} (set WANWU_SHARED)")
    return PHOTOS


@pytest.fixture(scope="session")
def examples_dir() -> Path:
    if not any(EXAMPLES.glob("*.jpg")):
        missing(f"no sample photos in {EXAMPLES}")  # only a broken checkout lacks them
    return EXAMPLES


@pytest.fixture(autouse=True)
def _isolated_caches(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads or writes the user's real caches (a stray checkpoint would change defaults)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path_factory.getbasetemp() / "torch-home"))
    monkeypatch.delenv("WANWU_HOME", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "xdg-cache"))  # the default store


@pytest.fixture(scope="session")
def shared_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One store for the whole session, so models are exported and compiled once."""
    return tmp_path_factory.mktemp("wanwu-home")


@pytest.fixture(scope="session")
def resnet18_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ResNet-18 checkpoint in the official format (a plain state_dict saved by torch.save)."""
    from tests.helpers import synthesize_resnet18

    path = tmp_path_factory.mktemp("ckpt") / "resnet18-synthetic.pth"
    synthesize_resnet18(path)
    return path
