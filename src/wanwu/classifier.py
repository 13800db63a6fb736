"""The classifier: preprocessing, an engine and labels behind one call — the Python API. Knows nothing of HTTP.

    from wanwu import Classifier
    clf = Classifier.load("efficientnet_lite0")
    result = clf.predict("photo.jpg", top_k=3)  # a path, bytes, a PIL image or an (H, W, 3) uint8 array
    result[0].label, result.categories[0].label_zh, result.unknown, result.summary("zh")  # "猫 97 % · 可能是埃及猫 42 %"

``predict`` returns a ``Result``: the top classes as a list (as before) with everyday categories and ``unknown``,
computed from the full 1,000 probabilities (see ``wanwu.categories``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Union, overload

import numpy as np

from wanwu.categories import Result, applies_to, categorize_batch, unknown_batch
from wanwu.engines import Engine
from wanwu.loader import Loaded, ModelRequest, load
from wanwu.models.registry import ModelSpec
from wanwu.preprocess import ImageLimits, crop_pixels, preprocess_pixels, to_rgb
from wanwu.ranking import Prediction, label, rank_probabilities, softmax
from wanwu.sources import ModelSource
from wanwu.trained.outofset import is_out_of_set

if TYPE_CHECKING:
    from PIL import Image

    from wanwu.precision.auto import PrecisionChoice

ImageInput = Union[str, os.PathLike, bytes, "Image.Image", np.ndarray]


class Classifier:
    def __init__(self, source: ModelSource, engine: Engine, limits: ImageLimits | None = None,
                 precision_choice: PrecisionChoice | None = None, loaded: Loaded | None = None) -> None:
        self.source = source
        self.engine = engine
        self.limits = limits or ImageLimits()
        self.precision_choice = precision_choice  # why ``--precision auto`` picked what runs
        self.loaded = loaded  # the loader's answer: what runs and why (None for a classifier built by hand)
        self.labels = source.labels
        # ImageNet's everyday categories and unknown rule; a trained model keeps its own classes and threshold
        self.has_categories = applies_to(self.labels, source.unknown_below)
        # a trained version with out-of-set evidence returns it as one more column after its logits
        self.out_of_set_below: float | None = getattr(source, "out_of_set_below", None)
        self.width = self.spec.num_classes + (self.out_of_set_below is not None)

    @classmethod
    def from_loaded(cls, loaded: Loaded, limits: ImageLimits | None = None) -> Classifier:
        return cls(loaded.source, loaded.engine, limits, loaded.choice, loaded)

    def __repr__(self) -> str:
        what = self.loaded.why() if self.loaded else (
            f"{self.model_name} (weights {self.weights_sha256[:12]}) on {self.engine.name}, {self.engine.precision}")
        return f"<Classifier {what}>"

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
        """``model`` by name, or ``NAME@V`` trained with ``wanwu train`` (default: ResNet-18 where its weights are
        here, else EfficientNet-Lite0) on ``engine`` (default: the fastest installed) with ``threads`` (default: the
        usable cores) at ``precision`` (default ``auto``: the fastest one ready for these weights on this CPU).
        ``wanwu.loader.ModelRequest`` says what each means; ``repr()`` says what runs and why."""
        request = ModelRequest(model, engine, weights, home, precision, threads)
        return cls.from_loaded(load(request), limits)

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

    def class_logits(self, outputs: np.ndarray) -> np.ndarray:
        """``outputs`` without the evidence column (bare logits pass through)."""
        return outputs[:, : self.spec.num_classes]

    def _out_of_set(self, outputs: np.ndarray) -> list[bool | None]:
        if self.out_of_set_below is None or outputs.shape[1] == self.spec.num_classes:
            return [None] * len(outputs)
        return is_out_of_set(outputs[:, self.spec.num_classes], self.out_of_set_below)

    def preprocess(self, data: bytes, fast_decode: bool = False) -> np.ndarray:
        """Bytes -> the crop's uint8 pixels, the cheapest input every engine takes (see ``wanwu.engines``)."""
        return preprocess_pixels(data, self.spec.preprocessing, self.limits, fast_decode=fast_decode)

    def pixels(self, image: ImageInput, fast_decode: bool = False) -> np.ndarray:
        """Any accepted image -> the crop's pixels. Files and bytes are decoded under ``limits`` (EXIF
        orientation applied); a PIL image or a uint8 array is taken as it is, converted to RGB."""
        if isinstance(image, str | os.PathLike):
            image = Path(image).read_bytes()
        if isinstance(image, bytes | bytearray | memoryview):
            return self.preprocess(bytes(image), fast_decode)
        if isinstance(image, np.ndarray):
            image = _array_image(image)
        elif not _is_pil_image(image):
            raise TypeError(f"cannot classify a {type(image).__name__}: {ACCEPTED}")
        return crop_pixels(to_rgb(image), self.spec.preprocessing, resize_crop_only=fast_decode)

    def outputs(self, batch: np.ndarray, engine: Engine | None = None) -> np.ndarray:
        """What the engine returns for a batch of pixels: the logits, then (a trained version with out-of-set
        evidence) the similarity to its training images; ``engine``: one of this engine's replicas."""
        out = (engine or self.engine).run(batch)
        if out.shape != (batch.shape[0], self.width):
            raise RuntimeError(f"engine returned shape {out.shape} for a batch of {batch.shape[0]}")
        return out

    def logits(self, batch: np.ndarray, engine: Engine | None = None) -> np.ndarray:
        """The class logits of a batch of pixels (``outputs`` without the evidence column)."""
        return self.class_logits(self.outputs(batch, engine))

    def predict_arrays(self, batch: np.ndarray, top_k: int = 5, min_score: float = 0.0) -> list[Result]:
        return self.results(self.outputs(batch), top_k, min_score)

    def results(self, outputs: np.ndarray, top_k: int = 5, min_score: float = 0.0) -> list[Result]:
        """``outputs`` (or bare logits) -> per image, a ``Result``: the top classes, and the categories and
        ``unknown`` computed from all the probabilities (a trained model: no categories, its own ``unknown`` rule,
        and out of set where its evidence column says the image is like none of its training images)."""
        probs = softmax(self.class_logits(outputs))
        predictions = [label(ranked, self.labels, min_score) for ranked in rank_probabilities(probs, top_k)]
        if not self.has_categories:  # out of set is unknown; otherwise the model's own rule (None: it has none)
            outside = self._out_of_set(outputs)
            return [Result(p, (), True if o else self.unknown(p), out_of_set=o)
                    for p, o in zip(predictions, outside, strict=True)]
        return [Result(p, c, u) for p, c, u in zip(predictions, categorize_batch(probs), unknown_batch(probs), strict=True)]

    @overload
    def predict(self, image: ImageInput, top_k: int = 5, min_score: float = 0.0) -> Result: ...

    @overload
    def predict(self, image: Sequence[ImageInput], top_k: int = 5, min_score: float = 0.0) -> list[Result]: ...

    def predict(self, image, top_k=5, min_score=0.0):  # type: ignore[no-untyped-def]
        """The ``top_k`` most probable classes of one image, highest first (ties: the lower class index), as a
        ``Result`` (a list, with ``categories``, ``unknown`` and ``summary(lang)``); for a list or tuple of images,
        one such result per image (run in batches)."""
        if isinstance(image, list | tuple):
            return self.predict_many(list(image), top_k, min_score)
        return self.predict_arrays(self.pixels(image)[None], top_k, min_score)[0]

    def predict_many(self, images: Sequence[ImageInput], top_k: int = 5, min_score: float = 0.0,
                     batch_size: int = 8) -> list[Result]:
        """``predict`` for several images, run ``batch_size`` at a time."""
        out: list[Result] = []
        for start in range(0, len(images), batch_size):
            batch = np.stack([self.pixels(image) for image in images[start : start + batch_size]])
            out.extend(self.predict_arrays(batch, top_k, min_score))
        return out


ACCEPTED = ("pass a file path, the file's bytes, a PIL image, or an (H, W), (H, W, 3) or (H, W, 4) uint8 array "
            "of 0-255 pixels (or a list of these)")


def _is_pil_image(image: object) -> bool:
    from PIL import Image

    return isinstance(image, Image.Image)


def _array_image(array: np.ndarray) -> Image.Image:
    """A uint8 pixel array -> a PIL image; anything else is refused with what would be accepted, since a float array
    could mean 0-1, 0-255 or an already normalised tensor, and guessing wrong gives confident nonsense."""
    from PIL import Image

    if array.dtype != np.uint8:
        hint = " (for pixels in 0-1, pass (array * 255).round().astype(np.uint8))" if array.dtype.kind == "f" else ""
        raise TypeError(f"cannot classify a {array.dtype} array: {ACCEPTED}{hint}")
    if array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4)):
        return Image.fromarray(array)
    raise TypeError(f"cannot classify an array of shape {array.shape}: {ACCEPTED}")
