"""EfficientNet-Lite0 and -Lite2 from the ``efficientnet_lite_pytorch`` package (plain torch)."""

from __future__ import annotations

from torch import nn


def efficientnet_lite0(num_classes: int = 1000) -> nn.Module:
    from efficientnet_lite_pytorch import EfficientNet

    return EfficientNet.from_name("efficientnet-lite0", num_classes=num_classes)


def efficientnet_lite2(num_classes: int = 1000) -> nn.Module:
    from efficientnet_lite_pytorch import EfficientNet

    return EfficientNet.from_name("efficientnet-lite2", num_classes=num_classes)
