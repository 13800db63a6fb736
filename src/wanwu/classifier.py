"""The classifier: preprocessing, an engine and labels behind one call. Knows nothing of HTTP."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from wanwu.artifacts import ModelSource, has_weights_or_bundle, open_source
from wanwu.engines import Engine, create_engine
from wanwu.labels import LabelSet, get_labels
from wanwu.models.registry import ModelSpec, get_model_spec
from wanwu.preprocess import ImageLimits, preprocess_pixels
from wanwu.weights import wanwu_home

DEFAULT_MODELS = ("resnet18", "efficientnet_lite0")


@dataclass(frozen=True)
class Prediction:
    index: int
    label: str
    label_zh: str
    score: float

    def as_dict(self) -> dict:
        return asdict(self)


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits.astype(np.float64) - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def top_k(probs: np.ndarray, labels: LabelSet, k: int = 5, min_score: float = 0.0) -> list[Prediction]:
    """Highest scores first; ties broken by the lower class index, so the order is deterministic."""
    order = np.lexsort((np.arange(probs.shape[0]), -probs))[:k]
    return [
        Prediction(int(i), labels.english[i], labels.chinese[i], float(probs[i]))
        for i in order
        if probs[i] >= min_score
    ]


def default_model_name(home: Path) -> str:
    """ResNet-18 when its weights (or its converted bundle) are here, else the bundled model."""
    for name in DEFAULT_MODELS:
        if has_weights_or_bundle(get_model_spec(name), home):
            return name
    return DEFAULT_MODELS[-1]


class Classifier:
    def __init__(self, source: ModelSource, engine: Engine, limits: ImageLimits | None = None) -> None:
        self.source = source
        self.engine = engine
        self.limits = limits or ImageLimits()
        self.labels = get_labels(source.spec.labels)

    @classmethod
    def load(
        cls,
        model: str | None = None,
        engine: str = "openvino",
        weights: Path | None = None,
        home: Path | None = None,
        threads: int = 1,
        precision: str = "fp32",
        limits: ImageLimits | None = None,
        export_in_child: bool = False,
        workers: int = 1,
    ) -> Classifier:
        home = home or wanwu_home()
        spec = get_model_spec(model or default_model_name(home))
        source = open_source(spec, home, weights)
        if export_in_child and engine != "torch":
            source.export_in_child_process()
        return cls(source, create_engine(engine, source, threads=threads, precision=precision, streams=workers), limits)

    @property
    def spec(self) -> ModelSpec:
        return self.source.spec

    @property
    def model_name(self) -> str:
        return self.source.spec.name

    @property
    def weights_sha256(self) -> str:
        return self.source.weights_sha256

    def preprocess(self, data: bytes, fast_decode: bool = False) -> np.ndarray:
        """Bytes -> the crop's uint8 pixels, the cheapest input every engine takes (see ``wanwu.engines``)."""
        return preprocess_pixels(data, self.spec.preprocessing, self.limits, fast_decode=fast_decode)

    def replica(self, threads: int) -> Engine:
        """Another engine like this one (its own state and threads), for a second inference worker.

        Backends with streams hand out a sibling on the same compiled model instead of a second copy.
        """
        sibling = getattr(self.engine, "sibling", None)
        if sibling is not None and getattr(self.engine, "streams", 1) > 1:
            return sibling()
        return create_engine(self.engine.name, self.source, threads=threads, precision=self.engine.precision)

    def logits(self, batch: np.ndarray, engine: Engine | None = None) -> np.ndarray:
        out = (engine or self.engine).run(batch)
        if out.shape != (batch.shape[0], self.spec.num_classes):
            raise RuntimeError(f"engine returned shape {out.shape} for a batch of {batch.shape[0]}")
        return out

    def predict_arrays(self, batch: np.ndarray, k: int = 5, min_score: float = 0.0) -> list[list[Prediction]]:
        probs = softmax(self.logits(batch))
        return [top_k(row, self.labels, k, min_score) for row in probs]

    def predict_bytes(self, data: bytes, k: int = 5, min_score: float = 0.0) -> list[Prediction]:
        return self.predict_arrays(self.preprocess(data)[None], k, min_score)[0]
