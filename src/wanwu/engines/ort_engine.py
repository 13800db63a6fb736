"""ONNX Runtime (CPU execution provider), with the optimized graph cached beside the bundle."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnxruntime as ort

from wanwu.engines import EngineBase, model_input
from wanwu.sources import INPUT_NAME, ModelSource
from wanwu.store import atomic_file

# ONNX Runtime warns at every load about initializers it folds; errors only. Set per session, not
# with ort.set_default_logger_severity: that would change the log level of every other ORT user
# in the process (a library user's own sessions included).
_LOG_ERRORS_ONLY = 3


def _save_portable_optimized(onnx_path: Path, optimized: Path) -> None:
    options = ort.SessionOptions()
    options.log_severity_level = _LOG_ERRORS_ONLY
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    if not (optimized.parent.is_dir() and os.access(optimized.parent, os.W_OK)):
        raise PermissionError(f"{optimized.parent} is not writable")
    try:
        with atomic_file(optimized) as tmp:  # never leave half a cache behind
            options.optimized_model_filepath = str(tmp)
            ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    except Exception as err:  # noqa: BLE001 - a full disk surfaces as ORT's INVALID_PROTOBUF, not an OSError
        raise OSError(f"could not write {optimized}: {err}") from err


class OrtEngine(EngineBase):
    name = "onnxruntime"

    def __init__(self, source: ModelSource, threads: int = 1, precision: str = "fp32") -> None:
        self.source = source
        self.threads = threads
        self.precision = precision
        self.preprocessing = source.spec.preprocessing
        onnx_path = source.onnx_path()
        optimized = source.engine_dir("onnxruntime", ort.__version__) / "model.opt.onnx"
        options = ort.SessionOptions()
        options.log_severity_level = _LOG_ERRORS_ONLY
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # Threads spin between runs by default, stealing the core that decodes the next image.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if not optimized.is_file():
            try:
                _save_portable_optimized(onnx_path, optimized)
            except OSError:
                optimized = onnx_path  # a read-only store: optimise at every load instead (~40 ms)
        # Layout transforms (NCHWc) are CPU-specific, so they run at every load, not in the cache.
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(optimized), options, providers=["CPUExecutionProvider"])

    def replica(self) -> OrtEngine:
        return OrtEngine(self.source, self.threads, self.precision)

    def run(self, batch: np.ndarray) -> np.ndarray:
        (logits,) = self.session.run(None, {INPUT_NAME: model_input(batch, self.preprocessing)})
        return logits
