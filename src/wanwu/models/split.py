"""A model cut in two for fine-tuning: a frozen ``Trunk`` (stem + all but the last blocks) and a trained ``Tail``
(the last ``blocks`` blocks + the classifier), so ``Tail(Trunk(x))`` is the model's forward pass.

Training runs the trunk once per image (its activations are cached) and only the tail per epoch. Both
families are seen as a flat list of blocks: EfficientNet's ``_blocks`` (the tail also holds
``_conv_head``/``_bn1``, the 1×1 conv that makes the 1280-wide embedding), ResNet's ``layer1..4`` blocks.
The tail flattens with ``torch.flatten`` (an ONNX ``Flatten``), so an exported graph keeps its batch
dimension dynamic even where quantization folds shapes at batch 1.
"""

from __future__ import annotations

import torch
from torch import nn

from wanwu.errors import WanwuError


def _is_efficientnet(model: nn.Module) -> bool:
    return hasattr(model, "_blocks") and hasattr(model, "_conv_head")


def _blocks(model: nn.Module) -> list[nn.Module]:
    if _is_efficientnet(model):
        return list(model._blocks)
    if all(hasattr(model, f"layer{i}") for i in range(1, 5)):
        return [block for i in range(1, 5) for block in getattr(model, f"layer{i}")]
    raise WanwuError(f"fine-tuning does not know how to split {type(model).__name__} into blocks")


def block_count(model: nn.Module) -> int:
    return len(_blocks(model))


def last_block_name(model: nn.Module) -> str:
    """The last block's module name (``_blocks.15``, ``layer4.1``): its ONNX nodes are named ``.../<name>/...``."""
    last = _blocks(model)[-1]
    return next(name for name, module in model.named_modules() if module is last)


class Trunk(nn.Module):
    """The frozen part: ``images -> the activations that feed the tail``."""

    def __init__(self, model: nn.Module, blocks: int) -> None:
        super().__init__()
        self.efficientnet = _is_efficientnet(model)
        if self.efficientnet:
            self.stem = nn.Sequential(model._conv_stem, model._bn0, model._swish)
        else:
            self.stem = nn.Sequential(model.conv1, model.bn1, model.relu, model.maxpool)
        self.blocks = nn.ModuleList(_blocks(model)[: block_count(model) - blocks])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)  # eval: EfficientNet's drop-connect is off, so no rate is passed
        return x


class Tail(nn.Module):
    """The trained part: the last ``blocks`` blocks, then (EfficientNet) the 1×1 head conv, pooling and a new
    ``Linear`` with ``classes`` outputs. Drop-connect rates are the base's, by the block's depth in the whole model."""

    def __init__(self, model: nn.Module, blocks: int, classes: int) -> None:
        super().__init__()
        total = block_count(model)
        if not 0 <= blocks <= total:
            raise WanwuError(f"--blocks must be between 0 and {total} for {type(model).__name__}, got {blocks}")
        self.blocks = nn.ModuleList(_blocks(model)[total - blocks :])
        self.efficientnet = _is_efficientnet(model)
        self.rates = [0.0] * blocks
        if self.efficientnet:
            rate = model._global_params.drop_connect_rate or 0.0
            self.rates = [rate * (total - blocks + i) / total for i in range(blocks)]
            self.conv_head = nn.Sequential(model._conv_head, model._bn1, model._swish)
            self.dropout = nn.Dropout(model._global_params.dropout_rate)
            fc = model._fc
        else:
            self.conv_head = nn.Identity()
            self.dropout = nn.Identity()
            fc = model.fc
        self.fc = nn.Linear(fc.in_features, classes)

    def last_map(self, x: torch.Tensor) -> torch.Tensor:
        """The blocks and the head conv: the feature map the base pools into its embedding."""
        for block, rate in zip(self.blocks, self.rates, strict=True):
            x = block(x, drop_connect_rate=rate) if self.efficientnet else block(x)
        return self.conv_head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(nn.functional.adaptive_avg_pool2d(self.last_map(x), 1), 1)
        return self.fc(self.dropout(x))


def merged(model: nn.Module, tail: Tail) -> nn.Module:
    """The base ``model`` with the tail's new ``Linear`` as its classifier, in eval mode: the tail's blocks already are
    the model's own modules (``Tail`` shares them), so this is the fine-tuned model with the base's module names
    (an ONNX export names its nodes as the base's export does: ``wanwu quantize``'s per-layer choices still apply)."""
    if _is_efficientnet(model):
        model._fc = tail.fc
    else:
        model.fc = tail.fc
    return model.eval()
