"""Engines: one small interface (NCHW float32 batch -> logits), several backends.

Backends are registered as data and imported lazily, so a missing one raises
``EngineUnavailableError`` with the install command instead of an ImportError at start-up.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from wanwu.errors import EngineUnavailableError

if TYPE_CHECKING:
    import numpy as np

    from wanwu.artifacts import ModelSource

PRECISIONS = ("fp32", "bf16", "int8")


class Engine(Protocol):
    name: str
    precision: str
    threads: int

    def run(self, batch: np.ndarray) -> np.ndarray:
        """``(N, 3, H, W)`` float32 -> ``(N, classes)`` float32 logits."""
        ...


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
            "openvino", "wanwu.engines.openvino_engine:OpenVinoEngine", "openvino", ("fp32", "bf16", "int8"), streams=True
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


def create_engine(name: str, source: ModelSource, threads: int = 1, precision: str = "fp32", streams: int = 1) -> Engine:
    """``threads`` per worker; ``streams`` workers will share this engine where the backend can (see ``sibling``)."""
    info = get_engine_info(name)
    if precision not in info.precisions:
        others = [e for e, i in ENGINES.items() if precision in i.precisions]
        hint = f" ({precision} runs on: {', '.join(others)})" if others else ""
        raise EngineUnavailableError(
            f"engine {name} does not offer precision {precision}; it offers {', '.join(info.precisions)}{hint}"
        )
    module_name, _, attr = info.factory.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise EngineUnavailableError(
            f"engine {name} needs the {info.requires} package: pip install {info.requires} ({err})"
        ) from err
    extra = {"streams": streams} if info.streams and streams > 1 else {}
    engine: Engine = getattr(module, attr)(source, threads=threads, precision=precision, **extra)
    return engine


def available_engines() -> list[str]:
    return [name for name, info in ENGINES.items() if importlib.util.find_spec(info.requires) is not None]


def default_engine() -> str:
    """The fastest engine installed: OpenVINO, then ONNX Runtime, then torch."""
    available = available_engines()
    return next((e for e in ("openvino", "onnxruntime", "torch") if e in available), "torch")
