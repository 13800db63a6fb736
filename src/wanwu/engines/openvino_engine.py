"""OpenVINO on the CPU: fp32 by default; bf16 only when asked for and the CPU has it."""

from __future__ import annotations

import numpy as np
import openvino as ov

from wanwu.artifacts import ModelSource
from wanwu.errors import EngineUnavailableError

_PRECISION_HINT = {"fp32": "f32", "bf16": "bf16"}


class OpenVinoEngine:
    name = "openvino"

    def __init__(self, source: ModelSource, threads: int = 1, precision: str = "fp32") -> None:
        self.threads = threads
        self.precision = precision
        core = ov.Core()
        if precision == "bf16" and "BF16" not in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
            raise EngineUnavailableError("this CPU has no bf16 support; use --precision fp32")
        version = ov.get_version().split("-")[0]
        cache = source.engine_dir("openvino", version) / f"cache-{precision}"
        config = {
            # OpenVINO silently runs bf16 on CPUs that have it; fp32 must be asked for explicitly.
            "INFERENCE_PRECISION_HINT": _PRECISION_HINT[precision],
            "INFERENCE_NUM_THREADS": threads,
            "NUM_STREAMS": 1,
            "PERFORMANCE_HINT": "LATENCY",
            "CACHE_DIR": str(cache),
        }
        self.compiled = core.compile_model(str(source.onnx_path()), "CPU", config)
        self.request = self.compiled.create_infer_request()

    def run(self, batch: np.ndarray) -> np.ndarray:
        self.request.infer({0: np.ascontiguousarray(batch, dtype=np.float32)})
        return np.array(self.request.get_output_tensor(0).data, copy=True)
