"""ONNX surgery on a base model's export: its embeddings (the classifier layer cut off), or base + a new head.

Every registered model ends in one ``Gemm`` (the final ``Linear``) whose input is the pooled
penultimate-layer embedding. Cutting that node gives the feature model that training runs on the
fast engines; swapping its weight and bias for a trained head gives a trained model as one ONNX
graph, so every engine, precision and parity check runs it unchanged.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from wanwu.errors import WanwuError

if TYPE_CHECKING:
    import onnx

FEATURES_OUTPUT = "features"


def _final_gemm(model: onnx.ModelProto) -> tuple[int, onnx.NodeProto]:
    (output,) = model.graph.output
    for i, node in enumerate(model.graph.node):
        if output.name in node.output:
            if node.op_type != "Gemm":
                break
            return i, node
    raise WanwuError(f"the base model's output {output.name!r} is not produced by a final Gemm (Linear) layer")


def _trans_b(node: onnx.NodeProto) -> bool:
    import onnx

    return any(a.name == "transB" and onnx.helper.get_attribute_value(a) == 1 for a in node.attribute)


def _initializers(model: onnx.ModelProto) -> dict[str, onnx.TensorProto]:
    return {t.name: t for t in model.graph.initializer}


def head_node(model: onnx.ModelProto) -> str:
    """The final Gemm's node name (the head's, in a trained model)."""
    return _final_gemm(model)[1].name


def embedding_size(model: onnx.ModelProto) -> int:
    import onnx.numpy_helper

    _, gemm = _final_gemm(model)
    weight = onnx.numpy_helper.to_array(_initializers(model)[gemm.input[1]])
    return int(weight.shape[1] if _trans_b(gemm) else weight.shape[0])


def features_model(base: onnx.ModelProto) -> onnx.ModelProto:
    """The base without its final layer: ``images -> features (N, D)``."""
    import onnx

    model = onnx.ModelProto()
    model.CopyFrom(base)
    index, gemm = _final_gemm(model)
    size = embedding_size(model)
    features, dropped = gemm.input[0], set(gemm.input[1:])  # read before the node is deleted
    del model.graph.node[index]
    keep = [t for t in model.graph.initializer if t.name not in dropped]
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep)
    model.graph.node.append(onnx.helper.make_node("Identity", [features], [FEATURES_OUTPUT]))
    del model.graph.output[:]
    model.graph.output.append(onnx.helper.make_tensor_value_info(FEATURES_OUTPUT, onnx.TensorProto.FLOAT, ["batch", size]))
    return model


def _insert_signed_sqrt(model: onnx.ModelProto, index: int, gemm: onnx.NodeProto) -> None:
    """``sign(x) * sqrt(|x|)`` on the Gemm's input, as the head was trained (``wanwu.training.head``)."""
    import onnx

    x = gemm.input[0]
    nodes = [
        onnx.helper.make_node("Abs", [x], ["head/abs"]),
        onnx.helper.make_node("Sqrt", ["head/abs"], ["head/sqrt"]),
        onnx.helper.make_node("Sign", [x], ["head/sign"]),
        onnx.helper.make_node("Mul", ["head/sign", "head/sqrt"], ["head/signed_sqrt"]),
    ]
    gemm.input[0] = "head/signed_sqrt"
    existing = list(model.graph.node)
    del model.graph.node[:]
    model.graph.node.extend([*existing[:index], *nodes, *existing[index:]])


def _flatten_input(model: onnx.ModelProto, gemm: onnx.NodeProto) -> None:
    """The ``Reshape(x, [N, -1])`` that feeds the final layer (N computed from ``Shape(x)``) becomes ``Flatten(x)``.

    Same values; but ``wanwu quantize`` folds constants with the batch fixed at 1, which turned the computed
    shape of a trained graph into a constant ``[1, -1]`` (every batch collapsed into one row), while a Flatten
    keeps the batch whatever is folded.
    """
    import onnx

    for i, node in enumerate(model.graph.node):
        if node.op_type == "Reshape" and gemm.input[0] in node.output:
            flatten = onnx.helper.make_node("Flatten", [node.input[0]], list(node.output), name=node.name, axis=1)
            model.graph.node[i].CopyFrom(flatten)
            return


def flatten_head_input(model: onnx.ModelProto) -> onnx.ModelProto:
    """An export whose final layer reads ``x.view(batch, -1)``, with that Reshape made a Flatten (see ``_flatten_input``)."""
    _flatten_input(model, _final_gemm(model)[1])
    return model


def with_head(base: onnx.ModelProto, weight: np.ndarray, bias: np.ndarray, transform: str | None = None) -> onnx.ModelProto:
    """The base with its final layer replaced: ``weight`` ``(classes, D)``, ``bias`` ``(classes,)``,
    applied after ``transform`` (``signed_sqrt`` or None)."""
    import onnx
    import onnx.numpy_helper

    model = onnx.ModelProto()
    model.CopyFrom(base)
    index, gemm = _final_gemm(model)
    if transform not in (None, "signed_sqrt"):
        raise ValueError(f"unknown feature transform {transform!r}")
    if weight.shape[1] != embedding_size(model) or bias.shape != (weight.shape[0],):
        raise ValueError(f"head {weight.shape} + {bias.shape} does not fit an embedding of {embedding_size(model)}")
    tensors = _initializers(model)
    w = weight if _trans_b(gemm) else weight.T
    tensors[gemm.input[1]].CopyFrom(onnx.numpy_helper.from_array(np.ascontiguousarray(w, np.float32), gemm.input[1]))
    tensors[gemm.input[2]].CopyFrom(onnx.numpy_helper.from_array(np.ascontiguousarray(bias, np.float32), gemm.input[2]))
    dims = model.graph.output[0].type.tensor_type.shape.dim
    dims[-1].Clear()
    dims[-1].dim_value = weight.shape[0]
    _flatten_input(model, gemm)
    if transform == "signed_sqrt":
        _insert_signed_sqrt(model, index, gemm)  # last: it rebuilds the node list (``gemm`` is stale after)
    onnx.checker.check_model(model)
    return model


def save_model(model: onnx.ModelProto, path: Path) -> None:
    """Written beside ``path`` then renamed into place: a reader never sees half a file."""
    import onnx

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".onnx.part")
    os.close(fd)
    try:
        onnx.save(model, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def load_model(path: Path) -> onnx.ModelProto:
    try:
        import onnx
    except ImportError as err:
        raise WanwuError("the onnx package is needed to build a trained model: pip install 'wanwu[torch]'") from err
    return onnx.load(str(path))
