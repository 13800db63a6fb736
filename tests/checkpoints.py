"""A ResNet-18 checkpoint in the official format with random weights, for tests and benchmarks.

The tests need ResNet-18 without downloading its weights, and speed does not depend on the values.
It lives in tests/ (not installed, like bench/): the benchmarks in bench/ import it from here, the
tests never import bench/.
"""

from __future__ import annotations

from pathlib import Path


def synthesize_resnet18(path: Path, seed: int = 0) -> Path:
    """Random ResNet-18 weights with plausible BN statistics, saved like torchvision's official file."""
    import torch

    from wanwu.models.resnet import resnet18

    torch.manual_seed(seed)
    model = resnet18()
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.normal_(0, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    torch.save(model.state_dict(), path)
    return path
