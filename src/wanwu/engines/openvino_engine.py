"""OpenVINO on the CPU: fp32 by default; bf16 only when asked for and the CPU has it; int8 from
an artifact made by ``wanwu quantize`` (NNCF post-training static quantization)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import openvino as ov

from wanwu.artifacts import ModelSource
from wanwu.errors import EngineUnavailableError

# int8 models keep a few sensitive layers in fp32 (see wanwu.quantize.KEEP_FP32); those run in f32.
_PRECISION_HINT = {"fp32": "f32", "bf16": "bf16", "int8": "f32"}


def cpu_has_bf16(core: ov.Core | None = None) -> bool:
    return "BF16" in (core or ov.Core()).get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(folder, os.W_OK)


class OpenVinoEngine:
    name = "openvino"

    def __init__(
        self, source: ModelSource, threads: int = 1, precision: str = "fp32", int8_model: Path | None = None, streams: int = 1
    ) -> None:
        self.threads = threads  # per stream
        self.streams = streams
        self.precision = precision
        core = ov.Core()
        if precision == "bf16" and not cpu_has_bf16(core):
            raise EngineUnavailableError("this CPU has no bf16 support; use --precision fp32")
        version = ov.get_version().split("-")[0]
        if precision == "int8":
            if int8_model is None:
                from wanwu.quantize import latest_int8

                int8_model = latest_int8(source, self.name).engine_file(self.name)
            model_path = int8_model
            self.artifact: Path | None = int8_model.parent
        else:
            model_path = source.onnx_path()
            self.artifact = None
        cache = source.engine_dir("openvino", version) / f"cache-{precision}"
        config = {
            # OpenVINO silently runs bf16 on CPUs that have it; fp32 must be asked for explicitly.
            "INFERENCE_PRECISION_HINT": _PRECISION_HINT[precision],
            # Streams run requests in parallel on one compiled model (one copy of the weights);
            # --inference-workers N gives N streams, each with its own infer request.
            "INFERENCE_NUM_THREADS": threads * streams,
            "NUM_STREAMS": streams,
            "PERFORMANCE_HINT": "LATENCY" if streams == 1 else "THROUGHPUT",
            # Each compiled model pins its threads from the first core on; two single-thread engines
            # in one process (--inference-workers 2) would then share one core (measured: half speed).
            "ENABLE_CPU_PINNING": False,
        }
        if _writable(cache):  # a read-only store (a container's baked bundle) compiles at each start
            config["CACHE_DIR"] = str(cache)
        self.compiled = core.compile_model(str(model_path), "CPU", config)
        self.request = self.compiled.create_infer_request()

    def sibling(self) -> OpenVinoEngine:
        """Another worker on the same compiled model (its own infer request, no second copy of the weights)."""
        twin = object.__new__(OpenVinoEngine)
        twin.__dict__.update(self.__dict__)
        twin.request = self.compiled.create_infer_request()
        return twin

    def run(self, batch: np.ndarray) -> np.ndarray:
        self.request.infer({0: np.ascontiguousarray(batch, dtype=np.float32)})
        return np.array(self.request.get_output_tensor(0).data, copy=True)
