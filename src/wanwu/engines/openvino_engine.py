"""OpenVINO on the CPU: fp32 by default; bf16 only when asked for and the CPU has it; int8 from
an artifact made by ``wanwu quantize`` (NNCF post-training static quantization)."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import openvino as ov
from openvino.preprocess import PrePostProcessor

from wanwu.cpu import usable_cores
from wanwu.engines import EngineBase, is_pixels, model_input
from wanwu.errors import EngineUnavailableError
from wanwu.sources import ModelSource

if TYPE_CHECKING:
    from wanwu.models.registry import Preprocessing

# int8 models keep a few sensitive layers in fp32 (see wanwu.precision.int8.KEEP_FP32); those run in f32.
PRECISION_HINT = {"fp32": "f32", "bf16": "bf16", "int8": "f32"}


def cpu_has_bf16(core: ov.Core | None = None) -> bool:
    return "BF16" in (core or ov.Core()).get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(folder, os.W_OK)


class OpenVinoEngine(EngineBase):
    name = "openvino"

    def __init__(
        self, source: ModelSource, threads: int = 1, precision: str = "fp32", model_file: Path | None = None, streams: int = 1
    ) -> None:
        self.threads = threads  # per stream
        self.streams = streams
        self.precision = precision
        core = ov.Core()
        if precision == "bf16" and not cpu_has_bf16(core):
            raise EngineUnavailableError("this CPU has no bf16 support; use --precision fp32")
        version = ov.get_version().split("-")[0]
        if precision == "int8" and model_file is None:
            raise EngineUnavailableError("int8 needs a quantized model file (wanwu.precision.open_engine finds it)")
        model_path = model_file or source.onnx_path()
        self.artifact: Path | None = None if model_file is None else model_file.parent
        self.preprocessing = source.spec.preprocessing
        self._model_path = model_path
        self._config = {
            # OpenVINO silently runs bf16 on CPUs that have it; fp32 must be asked for explicitly.
            "INFERENCE_PRECISION_HINT": PRECISION_HINT[precision],
            # Streams run requests in parallel on one compiled model (one copy of the weights);
            # --inference-workers N gives N streams, each with its own infer request.
            "INFERENCE_NUM_THREADS": threads * streams,
            "NUM_STREAMS": streams,
            "PERFORMANCE_HINT": "LATENCY" if streams == 1 else "THROUGHPUT",
            # Pinned threads keep the cores busier when serving (ResNet-18 INT8: +2-6 % req/s, see
            # docs/benchmarks.md), but a compiled model pins from the first core on: an engine on fewer
            # threads than the process may use would be confined to the first cores (two single-thread
            # engines once shared one core: half speed). So pin only an engine that spans every core.
            "ENABLE_CPU_PINNING": threads * streams == usable_cores(),
        }
        cache = source.engine_dir("openvino", version) / f"cache-{precision}"
        if _writable(cache):  # a read-only store (a container's baked bundle) compiles at each start
            self._config["CACHE_DIR"] = str(cache)
        self._core = core
        # One compiled model per input kind, made on first use (the service only ever sends pixels).
        self._compiled: dict[bool, ov.CompiledModel] = {}
        self._requests: dict[bool, ov.InferRequest] = {}
        self._lock = threading.Lock()
        self._compiled_for(pixels=True)  # at load, so a broken model fails here and the pixel path is warm

    @property
    def compiled(self) -> ov.CompiledModel:
        """The model the service runs (pixel input)."""
        return self._compiled[True]

    def _compiled_for(self, pixels: bool) -> ov.CompiledModel:
        with self._lock:
            if pixels not in self._compiled:
                # The pixel model is built in memory, not saved: a saved IR would ship a second copy of
                # the weights in the store and the container image; a cached start costs ~80 ms more.
                model: str | ov.Model = str(self._model_path)
                if pixels:
                    model = with_pixel_input(self._core.read_model(model), self.preprocessing)
                self._compiled[pixels] = self._core.compile_model(model, "CPU", self._config)
            return self._compiled[pixels]

    def replica(self) -> OpenVinoEngine:
        """Another worker on the same compiled model (its own infer request, no second copy of the weights)."""
        twin = object.__new__(OpenVinoEngine)
        twin.__dict__.update(self.__dict__)
        twin._requests = {}
        return twin

    def run(self, batch: np.ndarray) -> np.ndarray:
        pixels = is_pixels(batch)
        request = self._requests.get(pixels)
        if request is None:
            request = self._requests[pixels] = self._compiled_for(pixels).create_infer_request()
        request.infer({0: np.ascontiguousarray(batch) if pixels else model_input(batch, self.preprocessing)})
        return np.array(request.get_output_tensor(0).data, copy=True)


def with_pixel_input(model: ov.Model, pre: Preprocessing) -> ov.Model:
    """uint8 NHWC in, then ``ToTensor`` + ``Normalize`` as graph ops (OpenVINO's PrePostProcessor).

    Same arithmetic as ``wanwu.preprocess.normalize`` (÷255, −mean, ÷std in float32): logits agree
    to ~1e-7, and the engine time does not change measurably (it fuses into the first layer's reorder).
    """
    ppp = PrePostProcessor(model)
    ppp.input().tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC"))
    ppp.input().model().set_layout(ov.Layout("NCHW"))
    ppp.input().preprocess().convert_element_type(ov.Type.f32).scale(255.0).mean(list(pre.mean)).scale(list(pre.std))
    return ppp.build()
