"""Pyramid features: the grid's cells, the torch pooling, and which kind ``--features auto`` picks."""

from __future__ import annotations

import numpy as np
import pytest

from wanwu.errors import DatasetError, WanwuError
from wanwu.trained.graph import _grid
from wanwu.training.train import PYRAMID_BELOW, features_for


@pytest.mark.parametrize(("side", "cells"), [(7, (3, 2)), (9, (3, 3)), (3, (1, 1)), (6, (2, 2))])
def test_the_grid_is_adaptive_pooling_as_an_average_pool(side: int, cells: tuple[int, int]) -> None:
    assert _grid(side, 3) == cells


def test_a_map_that_does_not_split_evenly_is_refused() -> None:
    with pytest.raises(WanwuError, match="8-pixel"):
        _grid(8, 3)  # adaptive bins 0-3, 2-6, 5-8: not one AveragePool


def test_pooled_is_the_global_average_then_the_cells_channel_major() -> None:
    torch = pytest.importorskip("torch")
    from wanwu.models.pyramid import pooled

    x = torch.from_numpy(np.random.default_rng(0).random((2, 3, 7, 7)).astype(np.float32))
    out = pooled(x).numpy()
    assert out.shape == (2, 3 * 10)
    a = x.numpy()
    np.testing.assert_allclose(out[:, :3], a.mean(axis=(2, 3)), rtol=1e-6)
    cells = np.stack([a[:, :, 2 * i : 2 * i + 3, 2 * j : 2 * j + 3].mean(axis=(2, 3)) for i in range(3) for j in range(3)], 2)
    np.testing.assert_allclose(out[:, 3:], cells.reshape(2, -1), rtol=1e-5)  # channel 0's nine cells, then channel 1's


def test_auto_features_are_pyramid_below_the_threshold() -> None:
    assert features_for("auto", 800) == "pyramid"
    assert features_for("auto", PYRAMID_BELOW) == "global" and features_for("auto", 48_000) == "global"
    assert features_for("global", 10) == "global" and features_for("pyramid", 48_000) == "pyramid"
    with pytest.raises(DatasetError, match="--features"):
        features_for("spatial", 10)


def test_without_torch_the_pyramid_features_model_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from wanwu.trained import source

    monkeypatch.setitem(sys.modules, "torch", None)  # ``import torch`` raises ImportError
    with pytest.raises(WanwuError, match="--features global"):
        source._pyramid_maps(None, None)  # type: ignore[arg-type]
