"""Where everything lives under the home folder: the one place that builds a path in the store.

::

    <home>/weights/<checkpoint file>                         official checkpoints (wanwu fetch)
    <home>/compiled/<model>-<sha256[:16]>/                   a model's bundle: model.onnx, manifest.json,
                                                             engine caches, precision artifacts
    <home>/trained/<name>@<version>/                         trained models, one folder per version
    <home>/embeddings/<model>-<sha256[:16]>-<key>/           training's cache of a base model's features

The names are what existing stores hold; changing one orphans every store written before.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

WEIGHTS = "weights"
COMPILED = "compiled"
TRAINED = "trained"
EMBEDDINGS = "embeddings"


def _keyed(name: str, sha256: str) -> str:
    return f"{name}-{sha256[:16]}"


@dataclass(frozen=True)
class Layout:
    """The folders of the store at ``home``."""

    home: Path

    @classmethod
    def of_bundle(cls, bundle: Path) -> Layout:
        """The store a bundle folder (``<home>/compiled/<model>-<sha16>``) is in."""
        return cls(bundle.parent.parent)

    @property
    def weights(self) -> Path:
        return self.home / WEIGHTS

    def weights_file(self, file_name: str) -> Path:
        return self.weights / file_name

    @property
    def compiled(self) -> Path:
        return self.home / COMPILED

    def bundle(self, model: str, sha256: str) -> Path:
        """A model's converted forms, keyed by its weights' SHA-256."""
        return self.compiled / _keyed(model, sha256)

    def bundles(self, model: str) -> list[Path]:
        """Every bundle folder of ``model``, sorted (complete or not: the caller checks)."""
        return sorted(p for p in self.compiled.glob(_keyed(model, "*")) if p.is_dir())

    @property
    def trained(self) -> Path:
        return self.home / TRAINED

    def version(self, name: str, number: int) -> Path:
        """A trained model's version: ``NAME@V``."""
        return self.trained / f"{name}@{number}"

    @property
    def embeddings(self) -> Path:
        return self.home / EMBEDDINGS

    def embedding_cache(self, model: str, sha256: str, key: str) -> Path:
        """Feature vectors of a base model's weights; ``key`` names how they were computed."""
        return self.embeddings / f"{_keyed(model, sha256)}-{key}"
