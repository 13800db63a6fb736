"""The classifier: preprocessing, an engine and labels behind one call — the Python API. Knows nothing of HTTP.

    from wanwu import Classifier
    clf = Classifier.load("efficientnet_lite0")
    clf.predict("photo.jpg", top_k=3)  # a path, bytes, a PIL image or an (H, W, 3) uint8 array
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Union

import numpy as np

from wanwu.engines import Engine, default_engine
from wanwu.errors import WeightsError
from wanwu.models.registry import ModelSpec, get_model_spec
from wanwu.precision import open_engine, resolve_precision
from wanwu.preprocess import ImageLimits, crop_pixels, preprocess_pixels, to_rgb
from wanwu.ranking import Prediction, label, rank
from wanwu.sources import ModelSource, has_weights_or_bundle, open_source
from wanwu.store import wanwu_home
from wanwu.trained.source import open_trained
from wanwu.trained.store import is_trained_ref, resolve

if TYPE_CHECKING:
    from PIL import Image

    from wanwu.precision.auto import PrecisionChoice

ImageInput = Union[str, os.PathLike, bytes, "Image.Image", np.ndarray]

DEFAULT_MODELS = ("resnet18", "efficientnet_lite0")


def default_model_name(home: Path) -> str:
    """ResNet-18 when its weights (or its converted bundle) are here, else the bundled model."""
    for name in DEFAULT_MODELS:
        if has_weights_or_bundle(get_model_spec(name), home):
            return name
    return DEFAULT_MODELS[-1]


def open_model(model: str | None, home: Path | None = None, weights: Path | None = None) -> ModelSource:
    """The named model (default: ``default_model_name``) with its verified weights or converted bundle;
    ``NAME@V`` (or ``NAME``, its newest version) is a model trained with ``wanwu train``."""
    home = home or wanwu_home()
    if is_trained_ref(model, home):
        if weights is not None:
            raise WeightsError(f"--weights is for ImageNet models; {model} carries its own (its base's and its head's)")
        return open_trained(model, home)  # type: ignore[arg-type]
    return open_source(get_model_spec(model or default_model_name(home)), home, weights)


def check_model_name(model: str, home: Path | None = None) -> None:
    """Raises ``UnknownModelError`` (listing the valid names) unless ``model`` is registered or trained here."""
    if not is_trained_ref(model, home or wanwu_home()):
        get_model_spec(model)
    else:
        resolve(home or wanwu_home(), model)


class Classifier:
    def __init__(self, source: ModelSource, engine: Engine, limits: ImageLimits | None = None,
                 precision_choice: PrecisionChoice | None = None) -> None:
        self.source = source
        self.engine = engine
        self.limits = limits or ImageLimits()
        self.precision_choice = precision_choice  # why ``--precision auto`` picked what runs
        self.labels = source.labels

    @classmethod
    def load(
        cls,
        model: str | None = None,
        engine: str | None = None,
        weights: Path | None = None,
        home: Path | None = None,
        threads: int | None = None,
        precision: str = "auto",
        limits: ImageLimits | None = None,
    ) -> Classifier:
        """``model`` by name (default: ResNet-18 where its weights are here, else EfficientNet-Lite0) on
        ``engine`` (default: the fastest installed) with ``threads`` (default: every core) at ``precision``
        (default ``auto``: the fastest one ready for these weights on this CPU, see ``wanwu.precision.auto``)."""
        source = open_model(model, home, weights)
        engine, threads = engine or default_engine(), threads or os.cpu_count() or 1
        precision, choice = resolve_precision(engine, source, threads, precision)
        return cls(source, open_engine(engine, source, threads=threads, precision=precision), limits, choice)

    @property
    def spec(self) -> ModelSpec:
        return self.source.spec

    @property
    def model_name(self) -> str:
        return self.source.spec.name

    @property
    def weights_sha256(self) -> str:
        return self.source.weights_sha256

    def unknown(self, predictions: list[Prediction]) -> bool | None:
        """Whether the top score is below the model's measured ``unknown`` threshold; None for models without one."""
        threshold = self.source.unknown_below
        if threshold is None:
            return None
        return not predictions or predictions[0].score < threshold

    def preprocess(self, data: bytes, fast_decode: bool = False) -> np.ndarray:
        """Bytes -> the crop's uint8 pixels, the cheapest input every engine takes (see ``wanwu.engines``)."""
        return preprocess_pixels(data, self.spec.preprocessing, self.limits, fast_decode=fast_decode)

    def pixels(self, image: ImageInput, fast_decode: bool = False) -> np.ndarray:
        """Any accepted image -> the crop's pixels. Files and bytes are decoded under ``limits`` (EXIF
        orientation applied); a PIL image or an array is taken as it is, converted to RGB."""
        if isinstance(image, str | os.PathLike):
            image = Path(image).read_bytes()
        if isinstance(image, bytes | bytearray | memoryview):
            return self.preprocess(bytes(image), fast_decode)
        if isinstance(image, np.ndarray):
            from PIL import Image

            image = Image.fromarray(image)
        return crop_pixels(to_rgb(image), self.spec.preprocessing, resize_crop_only=fast_decode)

    def logits(self, batch: np.ndarray, engine: Engine | None = None) -> np.ndarray:
        """Logits of a batch of pixels; ``engine``: one of this engine's replicas (another worker's)."""
        out = (engine or self.engine).run(batch)
        if out.shape != (batch.shape[0], self.spec.num_classes):
            raise RuntimeError(f"engine returned shape {out.shape} for a batch of {batch.shape[0]}")
        return out

    def predict_arrays(self, batch: np.ndarray, top_k: int = 5, min_score: float = 0.0) -> list[list[Prediction]]:
        return [label(ranked, self.labels, min_score) for ranked in rank(self.logits(batch), top_k)]

    def predict(self, image: ImageInput, top_k: int = 5, min_score: float = 0.0) -> list[Prediction]:
        """The ``top_k`` most probable classes of one image, highest first (ties: the lower class index)."""
        return self.predict_arrays(self.pixels(image)[None], top_k, min_score)[0]

    def predict_many(self, images: list[ImageInput], top_k: int = 5, min_score: float = 0.0,
                     batch_size: int = 8) -> list[list[Prediction]]:
        """``predict`` for several images, run ``batch_size`` at a time."""
        out: list[list[Prediction]] = []
        for start in range(0, len(images), batch_size):
            batch = np.stack([self.pixels(image) for image in images[start : start + batch_size]])
            out.extend(self.predict_arrays(batch, top_k, min_score))
        return out
