"""The reference engine: PyTorch eager, inference mode."""

from __future__ import annotations

import numpy as np
import torch

from wanwu.engines import EngineBase, model_input
from wanwu.sources import ModelSource


class TorchEngine(EngineBase):
    name = "torch"

    def __init__(self, source: ModelSource, threads: int = 1, precision: str = "fp32") -> None:
        torch.set_num_threads(threads)
        self.source = source
        self.threads = threads
        self.precision = precision
        self.preprocessing = source.spec.preprocessing
        self.model = source.torch_model()

    def replica(self) -> TorchEngine:
        return TorchEngine(self.source, self.threads, self.precision)

    def run(self, batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self.model(torch.from_numpy(model_input(batch, self.preprocessing))).numpy()
