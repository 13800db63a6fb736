"""Converted models, cached in the store and keyed by the weights' SHA-256.

Layout: ``<home>/compiled/<model>-<sha256[:16]>/`` holds ``model.onnx`` (exported once from torch;
both ONNX Runtime and OpenVINO read it), ``manifest.json`` (what produced it) and per-engine
subfolders named with the engine's version. Torch is imported only to export: a store that
already has the bundle serves without PyTorch installed (the container image does exactly that).
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

from wanwu.errors import EngineUnavailableError, WeightsMissingError
from wanwu.labels import LabelSet, get_labels
from wanwu.models.build import load_torch_model
from wanwu.models.registry import ModelSpec
from wanwu.store import Layout, atomic_file, store_error, write_file
from wanwu.weights import ResolvedWeights, find_weights, missing_message, resolve_weights

MANIFEST = "manifest.json"
ONNX_FILE = "model.onnx"
INPUT_NAME = "images"
OUTPUT_NAME = "logits"


@dataclass(frozen=True)
class ModelSource:
    """A model's identity plus where its weights and converted forms live."""

    spec: ModelSpec
    weights_sha256: str
    bundle: Path
    weights: ResolvedWeights | None = None

    @property
    def labels(self) -> LabelSet:
        return get_labels(self.spec.labels)

    @property
    def unknown_below(self) -> float | None:
        """Top scores below this are marked ``unknown`` (trained models measure one; ImageNet models have none)."""
        return None

    def torch_model(self):  # type: ignore[no-untyped-def]
        if self.weights is None:
            raise WeightsMissingError(
                f"the torch engine needs the checkpoint itself; only a converted bundle of "
                f"{self.spec.name} is here ({self.bundle})"
            )
        return load_torch_model(self.spec, self.weights.path)

    def onnx_path(self) -> Path:
        path = self.bundle / ONNX_FILE
        if not path.is_file():
            self._export_onnx(path)
        return path

    def export_in_child_process(self) -> None:
        """Export in a separate Python process, so this one never imports PyTorch (~300 MB of RSS).

        A long-running server calls this on a fresh store; the CLI exports in-process.
        """
        if (self.bundle / ONNX_FILE).is_file() or self.weights is None:
            return
        home = Layout.of_bundle(self.bundle).home
        cmd = [sys.executable, "-m", "wanwu.sources", self.spec.name, str(home), str(self.weights.path)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise EngineUnavailableError(f"exporting {self.spec.name} to ONNX failed: {reason}")

    def engine_dir(self, engine: str, version: str) -> Path:
        path = self.bundle / f"{engine}-{version}"
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError:
            pass  # a read-only store (a container's baked bundle): engines fall back to no cache
        return path

    def _export_onnx(self, path: Path) -> None:
        try:
            import torch
        except ImportError as err:
            raise EngineUnavailableError(
                f"{path} is missing and PyTorch is not installed to export it; run "
                f"`wanwu export {self.spec.name}` where torch is installed"
            ) from err
        model = self.torch_model()
        try:
            self._write_onnx(torch, model, path)
            self._write_manifest(torch.__version__)
        except OSError as err:  # read-only, full disk, permission denied: one line, nothing half-written
            raise store_error(err.filename or path, err) from err

    def _write_onnx(self, torch, model, path: Path) -> None:  # type: ignore[no-untyped-def]
        export_onnx(model, path, self.spec.preprocessing.crop_size)

    def _write_manifest(self, torch_version: str) -> None:
        manifest = {
            "model": self.spec.name,
            "weights_sha256": self.weights_sha256,
            "input": [None, 3, self.spec.preprocessing.crop_size, self.spec.preprocessing.crop_size],
            "exported_with": f"torch {torch_version}",
        }
        # Written beside and renamed: a full disk must not leave a truncated manifest that breaks find_bundles.
        write_file(self.bundle / MANIFEST, json.dumps(manifest, indent=2) + "\n")


def export_onnx(model, path: Path, size: int) -> None:  # type: ignore[no-untyped-def]
    """``model`` (eval mode) -> ``path``: ``images (batch, 3, size, size)`` -> its output, batch dynamic, opset 17;
    written beside and renamed, so a reader never sees half a file."""
    import torch

    with atomic_file(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's constant-folding chatter
        torch.onnx.export(
            model,
            (torch.zeros(1, 3, size, size),),
            str(tmp),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )


def find_bundles(home: Path, spec: ModelSpec) -> list[tuple[Path, dict]]:
    found = []
    for manifest in (bundle / MANIFEST for bundle in Layout(home).bundles(spec.name)):
        if not manifest.is_file():
            continue
        data = json.loads(manifest.read_text())
        if data.get("model") == spec.name and (manifest.parent / ONNX_FILE).is_file():
            found.append((manifest.parent, data))
    return found


def open_source(spec: ModelSpec, home: Path, weights_path: Path | None = None) -> ModelSource:
    """The model's source: its verified weights if present, else a converted bundle in the store."""
    if weights_path is not None:
        weights = resolve_weights(spec, home, explicit=weights_path)
    else:
        weights = find_weights(spec, home)
    if weights is not None:
        return ModelSource(spec, weights.sha256, Layout(home).bundle(spec.name, weights.sha256), weights)
    bundles = official_bundles(home, spec)
    if len(bundles) == 1:
        path, manifest = bundles[0]
        return ModelSource(spec, manifest["weights_sha256"], path)
    raise WeightsMissingError(missing_message(spec, home))


def official_bundles(home: Path, spec: ModelSpec) -> list[tuple[Path, dict]]:
    """Bundles converted from the official weights: the only ones that may stand in for them.

    A bundle made from someone's own checkpoint (``--weights``, a benchmark's random one) is
    used when that checkpoint is passed again, never as the model's default.
    """
    return [(path, manifest) for path, manifest in find_bundles(home, spec) if spec.weights.matches(manifest["weights_sha256"])]


def has_weights_or_bundle(spec: ModelSpec, home: Path) -> bool:
    return find_weights(spec, home) is not None or len(official_bundles(home, spec)) == 1


if __name__ == "__main__":  # python -m wanwu.sources MODEL HOME WEIGHTS (see export_in_child_process)
    from wanwu.models.registry import get_model_spec

    _name, _home, _weights = sys.argv[1:4]
    open_source(get_model_spec(_name), Path(_home), Path(_weights)).onnx_path()

