"""Builds a torch model from its spec and a checkpoint, loading strictly."""

from __future__ import annotations

import importlib
import pickle
from pathlib import Path
from typing import TYPE_CHECKING

from wanwu.errors import WeightsError
from wanwu.models.registry import ModelSpec

if TYPE_CHECKING:
    from torch import nn


def build_architecture(spec: ModelSpec) -> nn.Module:
    module_name, _, func_name = spec.builder.partition(":")
    builder = getattr(importlib.import_module(module_name), func_name)
    return builder(num_classes=spec.num_classes)


def load_torch_model(spec: ModelSpec, weights_path: Path) -> nn.Module:
    """The model in eval mode with ``weights_path`` loaded strictly (every key, every shape)."""
    import torch

    model = build_architecture(spec)
    try:
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
        if isinstance(state, dict) and "state_dict" in state and len(state) <= 4:
            state = state["state_dict"]  # training checkpoints wrap the weights
        model.load_state_dict(state, strict=True)
    except (RuntimeError, ValueError, KeyError, EOFError, OSError, pickle.UnpicklingError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise WeightsError(
            f"{weights_path} is not a {spec.name} checkpoint that loads strictly: {reason}"
        ) from err
    return model.eval()
