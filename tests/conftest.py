"""Shared fixtures: real sample data (skipped where ../shared is absent), stores, synthesized weights."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("WANWU_SHARED", REPO.parent / "shared"))
SAMPLES = SHARED / "data" / "imagenet-samples"
PHOTOS = SHARED / "data" / "photos"


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    if not SAMPLES.is_dir():
        pytest.skip(f"real ImageNet samples not found at {SAMPLES}")
    return SAMPLES


@pytest.fixture(scope="session")
def photos_dir() -> Path:
    if not PHOTOS.is_dir():
        pytest.skip(f"photos not found at {PHOTOS}")
    return PHOTOS


@pytest.fixture(autouse=True)
def _isolated_caches(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads or writes the user's real caches (a stray checkpoint would change defaults)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path_factory.getbasetemp() / "torch-home"))
    monkeypatch.delenv("WANWU_HOME", raising=False)


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
