"""Several models in one service: what is loaded (``/v1/models``) and what an activation asks for.

Each loaded model has its own engine and micro-batcher in ``ServiceState.pipelines`` (keyed by the name
without the version, so a slot holds one version at a time); a request picks one with ``model=``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from wanwu.service.errors import InvalidRequestError
from wanwu.store import wanwu_home
from wanwu.trained.companion import bases_of
from wanwu.trained.store import versions

if TYPE_CHECKING:
    from wanwu.classifier import Classifier
    from wanwu.service.state import ServiceState


def class_info(classifier: Classifier | None) -> dict | None:
    """What the page's subtitle says of a model: its name, how many classes, and whether they are ImageNet's
    (with everyday categories) rather than a trained model's own."""
    if classifier is None:
        return None
    return {"model": classifier.model_name, "classes": len(classifier.labels.english), "imagenet": classifier.has_categories}


def loaded_models(state: ServiceState) -> dict:
    """``loaded``: each model the service holds (the default first flagged); ``trained``: the versions in the store."""
    default = state.pipeline
    loaded = [
        {"name": name, "model": p.classifier.model_name, "default": p is default, "weights_sha256": p.classifier.weights_sha256,
         **p.classifier.engine.describe(), **(class_info(p.classifier) or {})}
        for name, p in state.pipelines.items()
    ]
    trained = [
        {"model": v.ref, "base": bases_of(v.manifest), "classes": len(v.manifest["classes"]),
         "val_top1": (v.manifest.get("metrics") or {}).get("top1"), "created_at": v.manifest.get("created_at")}
        for v in versions(state.settings.home or wanwu_home())
    ]
    return {"loaded": loaded, "trained": trained}


def activation_request(name: str, query: Mapping[str, str]) -> tuple[str, bool]:
    """``POST /v1/models/{name}/activate[?version=V][&default=true]`` -> (the model to load, make it the default)."""
    version = query.get("version")
    if version is not None:
        if "@" in name or not version.isdigit() or int(version) < 1:
            raise InvalidRequestError("invalid version: give ?version=N (N ≥ 1) with a plain name, or activate NAME@N")
        name = f"{name}@{int(version)}"
    flag = query.get("default", "false").lower()
    if flag not in ("true", "false", "1", "0"):
        raise InvalidRequestError("invalid default: true or false")
    return name, flag in ("true", "1")
