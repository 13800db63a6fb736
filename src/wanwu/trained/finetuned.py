"""Fine-tuned versions: the base's frozen trunk as a model of its own, and the whole model rebuilt from the
base checkpoint + the trained tail's tensors (``wanwu.models.split``).

The trunk is exported once per base and cut (``<base bundle>/trunk-<blocks>/model.onnx``), so caching the
activations that feed the tail is plain inference on the fast engines. A fine-tuned version's
``model.onnx`` is the rebuilt model exported whole in eval mode: the base's own module tree with the trained
blocks and the new classifier in it, so its nodes carry the base export's names. The torch engine rebuilds
the same model from the checkpoint and ``head.npz`` (every tensor of the tail, BatchNorm statistics
included, by its name in ``Tail.state_dict()``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wanwu.errors import WeightsError
from wanwu.sources import ModelSource

TRUNK_DIR = "trunk-{}"


@dataclass(frozen=True)
class TrunkSource(ModelSource):
    """The base up to the tail: ``images -> (N, C, H, W)`` activations (see ``trunk_source``)."""

    blocks: int = 1

    def torch_model(self):  # type: ignore[no-untyped-def]
        from wanwu.models.split import Trunk

        return Trunk(super().torch_model(), self.blocks).eval()


def trunk_source(base: ModelSource, blocks: int) -> TrunkSource:
    """Exported from the base's checkpoint on first use (``onnx_path``), kept in the base's bundle."""
    return TrunkSource(base.spec, base.weights_sha256, base.bundle / TRUNK_DIR.format(blocks), base.weights, blocks)


def tail_tensors(tail) -> dict[str, np.ndarray]:  # type: ignore[no-untyped-def]
    return {name: t.detach().cpu().numpy().copy() for name, t in tail.state_dict().items()}


def rebuild(base: ModelSource, blocks: int, classes: int, tensors: dict[str, np.ndarray]):  # type: ignore[no-untyped-def]
    """The fine-tuned model in eval mode: the base from its checkpoint, its tail loaded strictly from ``tensors``."""
    import torch

    from wanwu.models.split import Tail, merged

    model = base.torch_model()
    tail = Tail(model, blocks, classes)  # its blocks are the model's own modules: loading it fine-tunes the model
    try:
        tail.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in tensors.items()}, strict=True)
    except RuntimeError as err:
        raise WeightsError(f"the fine-tuned tensors do not fit {base.spec.name} with {blocks} trained blocks: "
                           f"{str(err).splitlines()[0]}") from err
    return merged(model, tail)


def save_tensors(tensors: dict[str, np.ndarray], path: Path) -> None:
    with open(path, "wb") as f:
        np.savez(f, **tensors)


def load_tensors(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as data:
        return {k: data[k] for k in data.files}
