"""Pyramid features in PyTorch: what ``wanwu.trained.graph`` builds in ONNX for ``--features pyramid``.

A base's embedding averages its last feature map over the whole image, which forgets where things are
(a sandal's straps, a shirt's collar). The pyramid keeps the global average and adds the averages of a 3×3
grid of cells, of the last feature map and of the last block's input: ``[avg(map), cells(map), avg(input),
cells(input)]``, each flattened channel-major. Lite0: (1 + 9) × 1280 + (1 + 9) × 192 = 14,720 floats.
"""

from __future__ import annotations

import torch
from torch import nn

from wanwu.models.split import Tail, Trunk

GRID = 3  # cells per side; the ONNX twin is ``wanwu.trained.graph.PYRAMID_GRID``


def pooled(x: torch.Tensor) -> torch.Tensor:
    """``(N, C, H, W)`` -> ``(N, C × (1 + GRID²))``: the global average, then the grid cells' averages."""
    cells = nn.functional.adaptive_avg_pool2d(x, GRID)
    return torch.cat([torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1), torch.flatten(cells, 1)], 1)


class PyramidFeatures(nn.Module):
    """``images -> (N, D)`` pyramid features of a base model (its own modules, in eval mode)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.trunk = Trunk(model, 1)  # all but the last block: its output is the last block's input
        self.tail = Tail(model, 1, 1)  # the last block and the head conv (its new one-class Linear is not used)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        block_input = self.trunk(x)
        return torch.cat([pooled(self.tail.last_map(block_input)), pooled(block_input)], 1)


def map_shapes(model: nn.Module, height: int, width: int) -> list[tuple[int, int, int]]:
    """(C, H, W) of the last feature map and of the last block's input, for ``height`` × ``width`` images."""
    features = PyramidFeatures(model)
    block_input = features.trunk(torch.zeros(1, 3, height, width))
    return [tuple(features.tail.last_map(block_input).shape[1:]), tuple(block_input.shape[1:])]  # type: ignore[misc]
