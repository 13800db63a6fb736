"""Two bases joined: a companion base reads the first base's input, and the head reads both bases' features.

``--base auto`` cross-validates EfficientNet-Lite2 with Lite0 beside it (issue 24: "Lite0, Lite2, or both
concatenated"): the pair's features are Lite2's, then Lite0's of the same 260-pixel crop resized to Lite0's 224 in
the graph. One input keeps every engine, the service's batching and the Open Inference Protocol as they are. Lite0
does not read the 260 px itself: its last map would be 8×8, which the pyramid's 3×3 cells do not divide, and its
export pools a fixed size. The version's ONNX graph holds both (``graph.with_head(companion=...)``); the torch
engine joins the two feature modules (``joined``, ``resized_input``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

SEPARATOR = "+"  # ``--base efficientnet_lite2+efficientnet_lite0``


@dataclass(frozen=True)
class Companion:
    model: str
    weights_sha256: str
    size: int  # the input it reads: the first base's crop
    kind: str  # the features it adds: the same kind as the first base's (global or pyramid)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict | None) -> Companion | None:
        return None if not data else cls(data["model"], data["weights_sha256"], int(data["size"]), data["kind"])


def split_bases(name: str) -> tuple[str, str | None]:
    """``--base A+B`` -> ``(A, B)``; a single base -> ``(name, None)``."""
    first, _, second = name.partition(SEPARATOR)
    return first, second or None


def companion_of(manifest: dict) -> Companion | None:
    """A version's companion base, from its manifest (``head.features.companion``); None for most versions."""
    return Companion.from_dict((manifest["head"].get("features") or {}).get("companion"))


def bases_of(manifest: dict) -> str:
    """A version's base as people read it: ``efficientnet_lite2+efficientnet_lite0`` for a joined pair."""
    companion = companion_of(manifest)
    return manifest["base"]["model"] + (f"{SEPARATOR}{companion.model}" if companion else "")


def resized_input(features, size: int):  # type: ignore[no-untyped-def]
    """Torch twin of ``graph.resized_input``: ``features`` of the input resized to ``size`` (bilinear, no antialiasing)."""
    import torch

    class ResizedInput(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = features

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            resized = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
            return self.features(resized)

    return ResizedInput()


def joined(first, second):  # type: ignore[no-untyped-def]
    """Torch twin of the joined graph's features: ``cat([first(x), second(x)], 1)``."""
    import torch

    class JoinedFeatures(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.first, self.second = first, second

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.cat([self.first(x), self.second(x)], 1)

    return JoinedFeatures()
