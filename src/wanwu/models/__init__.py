"""Model specs (plain data) and the torch builders they name."""

from __future__ import annotations

from wanwu.models.registry import (
    Accuracy,
    ModelSpec,
    Preprocessing,
    WeightsSpec,
    get_model_spec,
    list_models,
    register_model,
)

__all__ = [
    "Accuracy",
    "ModelSpec",
    "Preprocessing",
    "WeightsSpec",
    "get_model_spec",
    "list_models",
    "register_model",
]
