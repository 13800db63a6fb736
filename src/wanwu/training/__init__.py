"""``wanwu train``: a head on a base model's embeddings, from a folder of labelled photos, into a versioned model.

``data``: the ImageFolder's hashes, duplicates and split; ``embed``: cached embeddings on the fast
engines; ``head``: the logistic-regression head; ``metrics``: validation metrics and the ``unknown``
threshold; ``report``: the HTML report; ``train``: the whole run, written atomically as ``NAME@V``.
"""

from __future__ import annotations

from typing import Protocol


class Reporter(Protocol):
    """Where a run says what it is doing: a stage with a known total, steps within it, and one-line notes."""

    def stage(self, name: str, total: int | None = None) -> None: ...

    def advance(self, n: int = 1) -> None: ...

    def note(self, message: str) -> None: ...


class Silent:
    def stage(self, name: str, total: int | None = None) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass

    def note(self, message: str) -> None:
        pass
