"""A trained version as a model like the others: a ``ModelSource`` whose ONNX graph is base + head.

Engines read ``model.onnx`` from the version's folder (and keep their caches beside it); the torch
engine rebuilds the base from its checkpoint and swaps the final ``Linear`` for the head.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from wanwu.errors import WanwuError, WeightsVerificationError
from wanwu.labels import LabelSet
from wanwu.models.registry import ModelSpec, Preprocessing, get_model_spec
from wanwu.sources import ONNX_FILE, ModelSource, open_source
from wanwu.store import Layout
from wanwu.trained.companion import Companion, companion_of, joined, resized_input
from wanwu.trained.outofset import EVIDENCE_FILE, InSetEvidence
from wanwu.trained.store import Version, resolve
from wanwu.weights import sha256_file

if TYPE_CHECKING:
    import onnx

HEAD_FILE = "head.npz"
FEATURES_DIR = {"global": "features", "pyramid": "features-pyramid"}


@dataclass(frozen=True)
class FeatureSource(ModelSource):
    """The base without its classifier layer (``images -> (N, D)`` features of ``kind``); see ``feature_source``."""

    kind: str = "global"

    def torch_model(self):  # type: ignore[no-untyped-def]
        return features_module(super().torch_model(), self.kind, self.spec.name, self.spec.preprocessing.crop_size)


def features_module(model, kind: str, name: str, size: int):  # type: ignore[no-untyped-def]
    """The torch features of ``model`` (the registry model ``name``) of ``kind``, in eval mode: ``PyramidFeatures``, or
    the model with its last ``Linear`` dropped; for ``size``-pixel images other than its own, resized to its own
    first (``companion.resized_input``, the twin of ``graph.resized_input``)."""
    import torch

    if kind == "pyramid":
        from wanwu.models.pyramid import PyramidFeatures

        features = PyramidFeatures(model)
    else:
        features = _replace_last_linear(model, torch.nn.Identity())
    own = get_model_spec(name).preprocessing.crop_size
    return (features if size == own else resized_input(features, own)).eval()


def feature_source(base: ModelSource, kind: str = "global", size: int | None = None) -> FeatureSource:
    """The base's features model: its ONNX export cut before the last layer (``pyramid``: with the pyramid pooling
    in place of the base's own), made once in its bundle (``features[-pyramid]/model.onnx``); the torch engine
    drops the last ``Linear`` (or runs ``PyramidFeatures``) instead. ``size``: for images of another size than the
    base's own (a companion base reads the first base's input, ``wanwu.trained.companion``): the same model reading
    them resized in the graph (``features[-pyramid]-from<size>/``), normalised as the base's own input."""
    if kind not in FEATURES_DIR:
        raise ValueError(f"unknown feature kind {kind!r}")
    own = size in (None, base.spec.preprocessing.crop_size)
    bundle = base.bundle / (FEATURES_DIR[kind] if own else f"{FEATURES_DIR[kind]}-from{size}")
    if not (bundle / ONNX_FILE).is_file():
        from wanwu.trained import graph

        if own:
            onnx_model = graph.load_model(base.onnx_path())
            maps = _pyramid_maps(base, onnx_model) if kind == "pyramid" else None
            graph.save_model(graph.features_model(onnx_model, maps), bundle / ONNX_FILE)
        else:
            own_model = graph.load_model(feature_source(base, kind).onnx_path())
            graph.save_model(graph.resized_input(own_model, size), bundle / ONNX_FILE)  # type: ignore[arg-type]
    if own:
        return FeatureSource(base.spec, base.weights_sha256, bundle, base.weights, kind)
    pre = dataclasses.replace(base.spec.preprocessing, resize_size=size, crop_size=size)
    return FeatureSource(dataclasses.replace(base.spec, preprocessing=pre), base.weights_sha256, bundle, base.weights, kind)


def _pyramid_maps(base: ModelSource, onnx_model: onnx.ModelProto) -> list[dict]:
    """The last feature map and the last block's input in the base's export, with their shapes (the exporter's graph
    does not say them: EfficientNet's padding is computed): the block's name and the shapes come from the architecture
    in torch (no weights are loaded), once per store."""
    try:
        import torch
    except ImportError as err:
        raise WanwuError("pyramid features need PyTorch once per store, to make their features model: "
                         "pip install 'wanwu[torch]', or train with --features global") from err

    from wanwu.models.build import build_architecture
    from wanwu.models.pyramid import map_shapes
    from wanwu.models.split import last_block_name
    from wanwu.trained import graph

    arch = build_architecture(base.spec).eval()
    height, width = (d.dim_value for d in onnx_model.graph.input[0].type.tensor_type.shape.dim[2:])
    with torch.no_grad():
        shapes = map_shapes(arch, height, width)
    names = graph.pyramid_maps(onnx_model, last_block_name(arch))
    return [{"tensor": name, "shape": list(shape)} for name, shape in zip(names, shapes, strict=True)]


def pyramid_maps(base: ModelSource) -> list[dict]:
    """The two maps of the base's ONNX export that its pyramid features pool (read from the features model)."""
    from wanwu.trained import graph

    maps = graph.feature_maps(graph.load_model(feature_source(base, "pyramid").onnx_path()))
    assert maps is not None
    return maps


def _replace_last_linear(model, replacement):  # type: ignore[no-untyped-def]
    """``model`` with its last ``Linear`` (the classifier layer) swapped for ``replacement``, in place."""
    import torch

    name = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)][-1]
    parent = model.get_submodule(name.rpartition(".")[0])
    setattr(parent, name.rpartition(".")[2], replacement)
    return model


# What a version's ``preprocessing`` may hold: the fields, and what ``wanwu train`` notes beside them (``crop``: the
# ``--crop`` it resolved; ``crop_why``). A key outside these was written by a newer wanwu, and serving the version
# without it would feed the model other pixels than it was trained on.
PREPROCESSING_NOTES = ("crop", "crop_why")


def preprocessing_from(data: dict) -> Preprocessing:
    unknown = sorted(set(data) - {f.name for f in dataclasses.fields(Preprocessing)} - set(PREPROCESSING_NOTES))
    if unknown:
        raise ValueError(f"its preprocessing has {', '.join(map(repr, unknown))}, unknown to this wanwu (written by a "
                         "newer one? upgrade wanwu to use it)")
    return Preprocessing(data["resize_size"], data["crop_size"], tuple(data["mean"]), tuple(data["std"]), data["interpolation"],
                         bool(data.get("pad", False)))  # versions written before --crop pad have no "pad"


@dataclass(frozen=True)
class TrainedSource(ModelSource):
    version: Version | None = None
    home: Path | None = None

    @property
    def manifest(self) -> dict:
        assert self.version is not None
        return self.version.manifest

    @property
    def labels(self) -> LabelSet:
        classes = self.manifest["classes"]
        return LabelSet(
            tuple(c["label"] for c in classes), tuple(c["label_zh"] for c in classes), tuple(c["folder"] for c in classes)
        )

    @property
    def base_model(self) -> str:
        return self.manifest["base"]["model"]

    @property
    def fp32_nodes(self) -> tuple[str, ...]:
        """The head's nodes as OpenVINO names them, kept in fp32 by ``wanwu quantize``."""
        head = self.manifest["head"]
        gemm = head.get("node")
        if gemm is None:
            return ()
        sqrt = head.get("transform") == "signed_sqrt"
        evidence = ("in_set/cosines",) if self.out_of_set_below is not None else ()  # graph.with_in_set's MatMul
        return (f"{gemm}/WithoutBiases", *(f"head/{op}" for op in ("abs", "sqrt", "sign", "signed_sqrt") if sqrt), *evidence)

    @property
    def unknown_below(self) -> float | None:
        return (self.manifest.get("unknown") or {}).get("threshold")

    @property
    def out_of_set_below(self) -> float | None:
        """Similarity to the training images below which an image is out of set; None for versions trained before
        there was out-of-set evidence (or without validation images): only the ``unknown`` rule applies."""
        return (self.manifest.get("out_of_set") or {}).get("threshold")

    def in_set_evidence(self) -> InSetEvidence | None:
        if self.out_of_set_below is None:
            return None
        return InSetEvidence.load(self.bundle / self.manifest["out_of_set"]["file"])

    def head(self) -> tuple[np.ndarray, np.ndarray]:
        with np.load(self.bundle / HEAD_FILE) as data:
            return data["weight"], data["bias"]

    def _base_source(self) -> ModelSource:
        base = self.manifest["base"]
        return self._verified(base["model"], base["weights_sha256"])

    def _verified(self, name: str, sha256: str) -> ModelSource:
        spec = get_model_spec(name)
        source = open_source(spec, self.home or Layout.of_bundle(self.bundle).home)
        if source.weights_sha256 != sha256:
            raise WeightsVerificationError(
                f"{self.spec.name} was trained on {spec.name} weights {sha256[:12]}, "
                f"but the store has {source.weights_sha256[:12]}; use the onnxruntime or openvino engine"
            )
        return source

    @property
    def companion(self) -> Companion | None:
        """A second base whose features the head also reads (``wanwu.trained.companion``); None for most versions."""
        return companion_of(self.manifest)

    @property
    def features(self) -> str:
        """Head mode: the features the head reads (``global``, or ``pyramid``); versions before there was a choice: global."""
        return (self.manifest["head"].get("features") or {}).get("kind", "global")

    def torch_model(self):  # type: ignore[no-untyped-def]
        """Head mode: the base from its checkpoint with the final ``Linear`` replaced by signed sqrt + the head (as in
        the ONNX graph; pyramid features: ``PyramidFeatures`` + signed sqrt + the head); finetune: the base with its
        fine-tuned tail (``wanwu.trained.finetuned``)."""
        import torch

        if self.manifest.get("kind") == "finetune":
            from wanwu.trained.finetuned import load_tensors, rebuild

            tensors = load_tensors(self.bundle / HEAD_FILE)
            return rebuild(self._base_source(), self.manifest["head"]["blocks"], len(self.manifest["classes"]), tensors)
        model = self._base_source().torch_model()
        weight, bias = self.head()
        layer = torch.nn.Linear(weight.shape[1], weight.shape[0])
        with torch.no_grad():
            layer.weight.copy_(torch.from_numpy(weight))
            layer.bias.copy_(torch.from_numpy(bias))
        base = self.manifest["base"]["model"]
        features = features_module(model, self.features, base, get_model_spec(base).preprocessing.crop_size)
        companion = self.companion
        if companion is not None:  # its torch model straight from its checkpoint: no ONNX file is made for it
            second = self._verified(companion.model, companion.weights_sha256).torch_model()
            features = joined(features, features_module(second, companion.kind, companion.model, companion.size))
        head = torch.nn.Sequential(_signed_sqrt_module(), layer)
        evidence = self.in_set_evidence()
        if evidence is None:
            return torch.nn.Sequential(features, head).eval()
        from wanwu.trained.outofset import with_similarity

        return with_similarity(features, head, evidence).eval()  # the ONNX graph's extra column (graph.with_in_set)


def _signed_sqrt_module():  # type: ignore[no-untyped-def]
    import torch

    class SignedSqrt(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.sign(x) * torch.sqrt(torch.abs(x))

    return SignedSqrt()


def trained_spec(version: Version) -> ModelSpec:
    base = get_model_spec(version.manifest["base"]["model"])
    try:
        preprocessing = preprocessing_from(version.manifest["preprocessing"])
    except ValueError as err:
        raise WanwuError(f"{version.ref}: {err}") from None
    return dataclasses.replace(
        base,
        name=version.ref,
        preprocessing=preprocessing,
        labels=f"trained:{version.ref}",
        num_classes=len(version.manifest["classes"]),
        description=f"trained on {len(version.manifest['classes'])} classes from {base.name}",
    )


def verify_files(version: Version) -> None:
    """The model and head files have the SHA-256 the version lists, checked before anything loads them."""
    evidence = (EVIDENCE_FILE,) if EVIDENCE_FILE in version.manifest["files"] else ()  # versions since out-of-set
    for name in (ONNX_FILE, HEAD_FILE, *evidence):
        expected = version.manifest["files"][name]
        path = version.path / name
        actual = sha256_file(path) if path.is_file() else "missing"
        if actual != expected:
            raise WeightsVerificationError(
                f"{path} does not match its version's manifest (SHA-256 {actual[:16]}, expected {expected[:16]}): "
                f"the store was modified; remove {version.ref} with `wanwu models rm {version.ref}` and train or import it again"
            )


def open_trained(ref: str, home: Path) -> TrainedSource:
    version = resolve(home, ref)
    verify_files(version)
    head_sha = version.manifest["files"][HEAD_FILE]
    return TrainedSource(trained_spec(version), head_sha, version.path, None, version, home)
