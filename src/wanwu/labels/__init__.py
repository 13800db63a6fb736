"""ImageNet-1k labels as package data (works from a wheel and offline)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources


@dataclass(frozen=True)
class LabelSet:
    english: tuple[str, ...]
    chinese: tuple[str, ...]
    wnids: tuple[str, ...]

    def index_of_wnid(self, wnid: str) -> int:
        return self._wnid_index()[wnid]

    @lru_cache(maxsize=1)  # noqa: B019 - label sets are module-level singletons
    def _wnid_index(self) -> dict[str, int]:
        return {wnid: i for i, wnid in enumerate(self.wnids)}


def _read_lines(name: str) -> tuple[str, ...]:
    text = resources.files(__name__).joinpath(name).read_text(encoding="utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip())


@cache
def get_labels(name: str = "imagenet1k") -> LabelSet:
    if name != "imagenet1k":
        raise KeyError(f"unknown label set {name!r}; valid: imagenet1k")
    labels = LabelSet(
        _read_lines("imagenet_en.txt"), _read_lines("imagenet_zh.txt"), _read_lines("imagenet_wnids.txt")
    )
    if not len(labels.english) == len(labels.chinese) == len(labels.wnids) == 1000:
        raise RuntimeError("package label files are damaged: expected 1000 lines each")
    return labels
