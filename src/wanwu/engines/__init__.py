"""Engines: one small interface (a batch of images -> logits), several backends.

A batch is either the crop's raw pixels, ``(N, H, W, 3)`` uint8 from ``preprocess_pixels``, or
the normalised ``(N, 3, H, W)`` float32 tensor TorchVision would feed the model. Pixels are the
cheap path: OpenVINO folds the normalisation into its graph (no float copy in Python, 4x fewer
bytes through the batcher); the other backends normalise them with ``model_input``.

Backends are registered as data and imported lazily, so a missing one raises
``EngineUnavailableError`` with the install command instead of an ImportError at start-up.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from wanwu.errors import EngineUnavailableError
from wanwu.preprocess import normalize

if TYPE_CHECKING:
    from pathlib import Path

    from wanwu.models.registry import Preprocessing
    from wanwu.sources import ModelSource

PRECISIONS = ("fp32", "bf16", "int8")


class Engine(Protocol):
    name: str
    precision: str
    threads: int

    def run(self, batch: np.ndarray) -> np.ndarray:
        """``(N, H, W, 3)`` uint8 pixels or ``(N, 3, H, W)`` float32 -> ``(N, classes)`` float32 logits."""
        ...

    def describe(self) -> dict:
        """What runs: ``engine``, ``precision``, ``threads`` and whatever else the backend wants shown."""
        ...

    def replica(self) -> Engine:
        """Another engine like this one for a second inference worker: its own state and threads, the
        weights shared where the backend can (OpenVINO: another infer request on the same compiled model)."""
        ...


class EngineBase:
    """What every backend shares: ``describe`` from its name, precision and threads."""

    name: str
    precision: str
    threads: int

    def describe(self) -> dict:
        return {"engine": self.name, "precision": self.precision, "threads": self.threads}


def is_pixels(batch: np.ndarray) -> bool:
    return batch.dtype == np.uint8


def model_input(batch: np.ndarray, pre: Preprocessing) -> np.ndarray:
    """Either kind of batch -> the contiguous normalised float32 tensor, for backends without in-graph normalisation."""
    return np.ascontiguousarray(normalize(batch, pre) if is_pixels(batch) else batch, dtype=np.float32)


@dataclass(frozen=True)
class EngineInfo:
    name: str
    factory: str  # "module:function"
    requires: str  # the pip package that provides the backend
    precisions: tuple[str, ...]
    streams: bool = False  # runs parallel requests on one compiled model (workers share the weights)


ENGINES: dict[str, EngineInfo] = {
    info.name: info
    for info in (
        EngineInfo("torch", "wanwu.engines.torch_engine:TorchEngine", "torch", ("fp32",)),
        EngineInfo("onnxruntime", "wanwu.engines.ort_engine:OrtEngine", "onnxruntime", ("fp32",)),
        EngineInfo(
            "openvino", "wanwu.engines.openvino_engine:OpenVinoEngine", "openvino", PRECISIONS, streams=True
        ),
    )
}


def get_engine_info(name: str) -> EngineInfo:
    try:
        return ENGINES[name]
    except KeyError:
        raise EngineUnavailableError(
            f"unknown engine {name!r}; valid engines: {', '.join(ENGINES)}"
        ) from None


def check_precision(name: str, precision: str) -> EngineInfo:
    """The engine's record, or an error naming the precisions it offers and the engines that offer ``precision``."""
    info = get_engine_info(name)
    if precision not in info.precisions:
        others = [e for e, i in ENGINES.items() if precision in i.precisions]
        hint = f" ({precision} runs on: {', '.join(others)})" if others else ""
        raise EngineUnavailableError(
            f"engine {name} does not offer precision {precision}; it offers {', '.join(info.precisions)}{hint}"
        )
    return info


def create_engine(
    name: str, source: ModelSource, threads: int = 1, precision: str = "fp32", streams: int = 1, model_file: Path | None = None
) -> Engine:
    """``threads`` per worker; ``streams`` workers will share this engine where the backend can (see ``replica``).

    ``model_file`` is a model to load instead of the bundle's ONNX export (an INT8 artifact, chosen by
    ``wanwu.precision``, which also wraps bf16 in its guard: use ``wanwu.precision.open_engine``).
    """
    info = check_precision(name, precision)
    module_name, _, attr = info.factory.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise EngineUnavailableError(
            f"engine {name} needs the {info.requires} package: pip install {info.requires} ({err})"
        ) from err
    extra: dict = {"streams": streams} if info.streams and streams > 1 else {}
    if model_file is not None:
        extra["model_file"] = model_file
    return getattr(module, attr)(source, threads=threads, precision=precision, **extra)


def available_engines() -> list[str]:
    return [name for name, info in ENGINES.items() if importlib.util.find_spec(info.requires) is not None]


def default_engine() -> str:
    """The fastest engine installed: OpenVINO, then ONNX Runtime, then torch."""
    available = available_engines()
    return next((e for e in ("openvino", "onnxruntime", "torch") if e in available), "torch")
