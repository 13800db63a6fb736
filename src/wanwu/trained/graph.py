"""ONNX surgery on a base model's export: its embeddings (the classifier layer cut off), or base + a new head.

Every registered model ends in one ``Gemm`` (the final ``Linear``) whose input is the pooled
penultimate-layer embedding. Cutting that node gives the feature model that training runs on the
fast engines; swapping its weight and bias for a trained head gives a trained model as one ONNX
graph, so every engine, precision and parity check runs it unchanged.

Two kinds of features: ``global``, the base's own embedding (the last feature map, globally averaged), and
``pyramid``, which also keeps *where* things are: the global average and a 3×3 grid of cell averages of the
last feature map and of the last block's input (the same pooling as ``wanwu.models.pyramid.PyramidFeatures``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from wanwu.errors import WanwuError
from wanwu.store import atomic_file

if TYPE_CHECKING:
    import onnx

    from wanwu.trained.outofset import InSetEvidence

FEATURES_OUTPUT = "features"
PYRAMID_GRID = 3  # cells per side; the torch twin is ``wanwu.models.pyramid.GRID``
PYRAMID_GLOBAL = "features/map0/global_flat"  # the pyramid's first part: the last map's global average
IN_SET = "in_set"  # the out-of-set evidence's nodes and tensors
MAPS_KEY = "wanwu.pyramid_maps"  # metadata of a pyramid features model: the two maps it pools (JSON list)
COMPANION = "companion"  # the second base's nodes and weights in a joined graph (``with_head(companion=...)``)
JOINED = "features/joined"  # the base's features, then the companion's
RESIZED = "resized"  # a features model's input resized to its own size (``resized_input``)


def _final_gemm(model: onnx.ModelProto) -> tuple[int, onnx.NodeProto]:
    (output,) = model.graph.output
    names = {output.name, f"{IN_SET}/logits"}  # a trained graph's logits, before its out-of-set column (with_in_set)
    for i, node in enumerate(model.graph.node):
        if names & set(node.output):
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


def features_model(base: onnx.ModelProto, maps: list[dict] | None = None) -> onnx.ModelProto:
    """The base without its final layer: ``images -> features (N, D)``; with ``maps`` (``{"tensor": name, "shape":
    [C, H, W]}`` of the last feature map and of the last block's input, see ``pyramid_maps``) the pyramid features of
    those maps, which are written into the model's metadata (``MAPS_KEY``, read back by ``feature_maps``)."""
    import onnx

    model = onnx.ModelProto()
    model.CopyFrom(base)
    index, gemm = _final_gemm(model)
    features, size, nodes = gemm.input[0], embedding_size(model), []
    _flatten_producer(model.graph.node, features)  # the batch stays dynamic in a joined graph's quantized companion
    if maps:
        nodes, features, size = _pyramid_nodes(maps)
        model.metadata_props.add(key=MAPS_KEY, value=json.dumps(maps))
    del model.graph.node[index]
    _insert(model, index, [*nodes, onnx.helper.make_node("Identity", [features], [FEATURES_OUTPUT])])
    del model.graph.output[:]
    model.graph.output.append(onnx.helper.make_tensor_value_info(FEATURES_OUTPUT, onnx.TensorProto.FLOAT, ["batch", size]))
    _prune(model)  # the classifier's weights (and, for the pyramid, the base's own pooling) are no longer read
    onnx.checker.check_model(model)
    return model


def pyramid_maps(model: onnx.ModelProto, block_scope: str) -> list[str]:
    """``[the last feature map, the last block's input]``: the map the base's global average pool reads, and the one
    tensor that enters the nodes named ``.../<block_scope>/...`` from outside (the exporter names a node by the
    path of module names it ran in: ``/_blocks.15/_project_conv/Conv``, ``/layer4/layer4.1/conv1/Conv``)."""
    producers = {o: n for n in model.graph.node for o in n.output}
    node = producers.get(_final_gemm(model)[1].input[0])
    while node is not None and node.op_type in ("Reshape", "Flatten", "Squeeze"):
        node = producers.get(node.input[0])
    if node is None or node.op_type != "GlobalAveragePool":
        raise WanwuError("pyramid features need a base whose embedding is a GlobalAveragePool of its last feature map")
    inside = [n for n in model.graph.node if f"/{block_scope}/" in n.name]
    made = {o for n in inside for o in n.output}
    constants = {t.name for t in model.graph.initializer}
    constants |= {o for n in model.graph.node if n.op_type == "Constant" for o in n.output}
    entering = {i for n in inside for i in n.input if i and i not in made and i not in constants}
    if len(entering) != 1:
        raise WanwuError(f"the base's block {block_scope!r} should read one tensor, found {sorted(entering)}")
    return [node.input[0], entering.pop()]


def feature_maps(model: onnx.ModelProto) -> list[dict] | None:
    """The maps a pyramid features model pools (None: a global one)."""
    found = [p.value for p in model.metadata_props if p.key == MAPS_KEY]
    return json.loads(found[0]) if found else None


def _grid(side: int, grid: int) -> tuple[int, int]:
    """(kernel, stride) of an AveragePool whose cells are adaptive average pooling's ``grid`` bins on ``side``
    (bin i spans floor(i·side/grid) to ceil((i+1)·side/grid)); 7 -> (3, 2), 9 -> (3, 3)."""
    starts = [i * side // grid for i in range(grid)]
    ends = [-(-(i + 1) * side // grid) for i in range(grid)]
    sizes = {e - s for s, e in zip(starts, ends, strict=True)}
    steps = {b - a for a, b in zip(starts, starts[1:], strict=False)}
    if len(sizes) != 1 or len(steps) > 1:
        raise WanwuError(f"a {side}-pixel feature map does not split into {grid} equal cells")
    return sizes.pop(), steps.pop() if steps else 1


def _pyramid_nodes(maps: list[dict]) -> tuple[list[onnx.NodeProto], str, int]:
    """(nodes, their output, its width): per map, its global average, then its 3×3 cell averages (channel-major,
    as torch's ``flatten`` of ``adaptive_avg_pool2d(x, 3)``); all concatenated. Flatten keeps the batch dynamic."""
    import onnx

    make, nodes, parts, size = onnx.helper.make_node, [], [], 0
    for i, (name, (channels, height, width)) in enumerate((m["tensor"], m["shape"]) for m in maps):
        (kh, sh), (kw, sw) = _grid(height, PYRAMID_GRID), _grid(width, PYRAMID_GRID)
        tag = f"features/map{i}"
        nodes += [make("GlobalAveragePool", [name], [f"{tag}/global"], name=f"{tag}/global"),
                  make("Flatten", [f"{tag}/global"], [f"{tag}/global_flat"], name=f"{tag}/global_flat", axis=1),
                  make("AveragePool", [name], [f"{tag}/grid"], name=f"{tag}/grid", kernel_shape=[kh, kw], strides=[sh, sw]),
                  make("Flatten", [f"{tag}/grid"], [f"{tag}/grid_flat"], name=f"{tag}/grid_flat", axis=1)]
        parts += [f"{tag}/global_flat", f"{tag}/grid_flat"]
        size += channels * (1 + PYRAMID_GRID * PYRAMID_GRID)
    nodes.append(make("Concat", parts, ["features/pyramid"], name="features/pyramid", axis=1))
    return nodes, "features/pyramid", size


def _insert(model: onnx.ModelProto, index: int, nodes: list[onnx.NodeProto]) -> None:
    existing = list(model.graph.node)
    del model.graph.node[:]
    model.graph.node.extend([*existing[:index], *nodes, *existing[index:]])


def _prune(model: onnx.ModelProto) -> None:
    """Drops the nodes and initializers no graph output depends on."""
    needed = {o.name for o in model.graph.output}
    keep = []
    for node in reversed(model.graph.node):
        if any(o in needed for o in node.output):
            keep.append(node)
            needed.update(node.input)
    nodes = list(reversed(keep))
    initializers = [t for t in model.graph.initializer if t.name in needed]
    del model.graph.node[:], model.graph.initializer[:]
    model.graph.node.extend(nodes)
    model.graph.initializer.extend(initializers)


def _signed_sqrt_nodes(gemm: onnx.NodeProto) -> list[onnx.NodeProto]:
    """``sign(x) * sqrt(|x|)`` on the Gemm's input, as the head was trained (``wanwu.training.head``)."""
    import onnx

    x = gemm.input[0]
    gemm.input[0] = "head/signed_sqrt"
    return [
        onnx.helper.make_node("Abs", [x], ["head/abs"]),
        onnx.helper.make_node("Sqrt", ["head/abs"], ["head/sqrt"]),
        onnx.helper.make_node("Sign", [x], ["head/sign"]),
        onnx.helper.make_node("Mul", ["head/sign", "head/sqrt"], ["head/signed_sqrt"]),
    ]


def _flatten_input(model: onnx.ModelProto, gemm: onnx.NodeProto) -> None:
    """The ``Reshape(x, [N, -1])`` that feeds the final layer (N computed from ``Shape(x)``) becomes ``Flatten(x)``.

    Same values; but ``wanwu quantize`` folds constants with the batch fixed at 1, which turned the computed
    shape of a trained graph into a constant ``[1, -1]`` (every batch collapsed into one row), while a Flatten
    keeps the batch whatever is folded.
    """
    _flatten_producer(model.graph.node, gemm.input[0])


def _flatten_producer(nodes, tensor: str) -> None:  # type: ignore[no-untyped-def]
    """The Reshape that makes ``tensor`` (if one does) becomes a Flatten (``_flatten_input``)."""
    import onnx

    for node in nodes:
        if node.op_type == "Reshape" and tensor in node.output:
            node.CopyFrom(onnx.helper.make_node("Flatten", [node.input[0]], list(node.output), name=node.name, axis=1))
            return


def flatten_head_input(model: onnx.ModelProto) -> onnx.ModelProto:
    """An export whose final layer reads ``x.view(batch, -1)``, with that Reshape made a Flatten (see ``_flatten_input``)."""
    _flatten_input(model, _final_gemm(model)[1])
    return model


def with_head(base: onnx.ModelProto, weight: np.ndarray, bias: np.ndarray, transform: str | None = None,
              maps: list[dict] | None = None, in_set: InSetEvidence | None = None,
              companion: onnx.ModelProto | None = None) -> onnx.ModelProto:
    """The base with its final layer replaced: ``weight`` ``(classes, D)``, ``bias`` ``(classes,)``,
    applied after ``transform`` (``signed_sqrt`` or None) to the base's embedding, or (``maps``, from
    ``feature_maps``) to the pyramid features of those maps. The final Gemm keeps its name. ``in_set``: one more
    output column, the embedding's similarity to the nearest training image (``with_in_set``). ``companion``: a
    second base's features model on the same input, its features joined after the base's (``_joined``)."""
    import onnx
    import onnx.numpy_helper

    model = onnx.ModelProto()
    model.CopyFrom(base)
    index, gemm = _final_gemm(model)
    if transform not in (None, "signed_sqrt"):
        raise ValueError(f"unknown feature transform {transform!r}")
    nodes, features, size = _pyramid_nodes(maps) if maps else ([], gemm.input[0], embedding_size(model))
    if companion is not None:
        size += output_width(companion)
    if weight.shape[1] != size or bias.shape != (weight.shape[0],):
        raise ValueError(f"head {weight.shape} + {bias.shape} does not fit an embedding of {size}")
    tensors = _initializers(model)
    w = weight if _trans_b(gemm) else weight.T
    tensors[gemm.input[1]].CopyFrom(onnx.numpy_helper.from_array(np.ascontiguousarray(w, np.float32), gemm.input[1]))
    tensors[gemm.input[2]].CopyFrom(onnx.numpy_helper.from_array(np.ascontiguousarray(bias, np.float32), gemm.input[2]))
    dims = model.graph.output[0].type.tensor_type.shape.dim
    dims[-1].Clear()
    dims[-1].dim_value = weight.shape[0]
    if maps:
        gemm.input[0] = features
    else:
        _flatten_input(model, gemm)
    embedding = PYRAMID_GLOBAL if maps else gemm.input[0]  # the base's global embedding, before the transform
    if companion is not None:
        nodes += _joined(model, companion, gemm.input[0])
        gemm.input[0] = JOINED
    if transform == "signed_sqrt":
        nodes += _signed_sqrt_nodes(gemm)
    _insert(model, index, nodes)  # last: it rebuilds the node list (``gemm`` is stale after)
    if maps:
        _prune(model)  # the base's own pooling and the Reshape that fed the final layer
    if in_set is not None:
        with_in_set(model, embedding, in_set)
    onnx.checker.check_model(model)
    return model


def resized_input(model: onnx.ModelProto, size: int) -> onnx.ModelProto:
    """``model`` reading ``size``-pixel square images: resized first to its own input size (bilinear, half-pixel
    centres: torch's ``interpolate(mode="bilinear")`` without antialiasing, ``companion.ResizedInput``)."""
    import onnx
    import onnx.numpy_helper

    out = onnx.ModelProto()
    out.CopyFrom(model)
    images = out.graph.input[0]
    height, width = (d.dim_value for d in images.type.tensor_type.shape.dim[2:])
    for node in out.graph.node:
        node.input[:] = [RESIZED if i == images.name else i for i in node.input]
    # Scales, not sizes: OpenVINO's CPU plugin refuses an INT8 graph whose Resize sizes are computed from the input's
    # shape ("only supports resize on spatial dimensions"). float32(224/260) × 260 = 224.000002 -> 224 rows.
    scales = np.array([1.0, 1.0, height / size, width / size], np.float32)
    out.graph.initializer.extend([onnx.numpy_helper.from_array(scales, f"{RESIZED}/scales")])
    nodes = [onnx.helper.make_node("Resize", [images.name, "", f"{RESIZED}/scales"], [RESIZED], name=RESIZED,
                                   mode="linear", coordinate_transformation_mode="half_pixel")]
    _insert(out, 0, nodes)
    dims = images.type.tensor_type.shape.dim
    dims[2].dim_value = dims[3].dim_value = size
    onnx.checker.check_model(out)
    return out


def output_width(model: onnx.ModelProto) -> int:
    """The width of a features model's ``(batch, D)`` output."""
    return int(model.graph.output[0].type.tensor_type.shape.dim[1].dim_value)


def _joined(model: onnx.ModelProto, companion: onnx.ModelProto, features: str) -> list[onnx.NodeProto]:
    """``companion``'s nodes and weights moved into ``model`` (every name under ``companion/``, reading the same
    input), then ``JOINED = Concat(features, the companion's output)``: the nodes to insert before the head."""
    import onnx

    def opset(m: onnx.ModelProto) -> int | None:
        return next((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), None)

    if opset(companion) != opset(model):
        raise WanwuError("the companion's features model has another ONNX opset than the base's export")
    shared = model.graph.input[0].name
    if companion.graph.input[0].name != shared:
        raise WanwuError(f"the companion reads {companion.graph.input[0].name!r}, the base {shared!r}")

    def moved(name: str) -> str:
        return name if name in ("", shared) else f"{COMPANION}/{name}"

    for tensor in companion.graph.initializer:
        copy = model.graph.initializer.add()
        copy.CopyFrom(tensor)
        copy.name = moved(tensor.name)
    nodes = []
    for node in companion.graph.node:
        copy = onnx.NodeProto()
        copy.CopyFrom(node)
        copy.name = moved(node.name or node.output[0])
        copy.input[:] = [moved(i) for i in node.input]
        copy.output[:] = [moved(o) for o in node.output]
        nodes.append(copy)
    output = moved(companion.graph.output[0].name)
    last = next(n for n in nodes if output in n.output)
    _flatten_producer(nodes, last.input[0] if last.op_type == "Identity" else output)  # features models made before
    return [*nodes, onnx.helper.make_node("Concat", [features, output], [JOINED], name=JOINED, axis=1)]


def with_in_set(model: onnx.ModelProto, embedding: str, in_set: InSetEvidence) -> None:
    """The graph's output gets one more column: the cosine similarity of ``embedding``, centred on the training
    mean, to the nearest stored training embedding (``wanwu.trained.outofset``), so every engine returns the
    out-of-set evidence with the logits in one array, at ~M·D multiply-adds per image (M <= 2,048 references)."""
    import onnx
    import onnx.numpy_helper

    make, output = onnx.helper.make_node, model.graph.output[0]
    last = next(n for n in model.graph.node if output.name in n.output)
    last.output[list(last.output).index(output.name)] = f"{IN_SET}/logits"
    model.graph.initializer.extend([
        onnx.numpy_helper.from_array(in_set.mean.astype(np.float32), f"{IN_SET}/mean"),
        onnx.numpy_helper.from_array(np.ascontiguousarray(in_set.references.T, np.float32), f"{IN_SET}/references"),
    ])
    steps = [("Sub", [embedding, f"{IN_SET}/mean"], "centred", {}),
             ("LpNormalization", [f"{IN_SET}/centred"], "unit", {"axis": 1, "p": 2}),
             ("MatMul", [f"{IN_SET}/unit", f"{IN_SET}/references"], "cosines", {}),
             ("ReduceMax", [f"{IN_SET}/cosines"], "similarity", {"axes": [1], "keepdims": 1}),
             ("Concat", [f"{IN_SET}/logits", f"{IN_SET}/similarity"], None, {"axis": 1})]
    for op, inputs, name, attributes in steps:
        out = f"{IN_SET}/{name}" if name else output.name
        model.graph.node.append(make(op, inputs, [out], name=f"{IN_SET}/{name or 'output'}", **attributes))
    dim = output.type.tensor_type.shape.dim[-1]
    dim.dim_value += 1


def save_model(model: onnx.ModelProto, path: Path) -> None:
    """Written beside ``path`` then renamed into place: a reader never sees half a file."""
    import onnx

    with atomic_file(path) as tmp:
        onnx.save(model, str(tmp))


def load_model(path: Path) -> onnx.ModelProto:
    try:
        import onnx
    except ImportError as err:
        raise WanwuError("the onnx package is needed to build a trained model: pip install 'wanwu[torch]'") from err
    return onnx.load(str(path))
