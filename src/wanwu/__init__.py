"""wanwu (万物识别): offline, CPU-first ImageNet-1k image recognition.

The Python API::

    from wanwu import Classifier
    clf = Classifier.load("efficientnet_lite0")
    result = clf.predict("photo.jpg", top_k=3)
    for p in result:
        print(p.label, p.label_zh, p.score)
    print(result.summary("both"), result.unknown)  # "猫 cat 92 % · 可能是埃及猫 Egyptian cat 39 %" False
    for c in result.categories:  # everyday categories, exact scores (sums of class probabilities)
        print(c.id, c.label, c.label_zh, c.score, c.parent)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wanwu.version import __version__

__all__ = ["Category", "Classifier", "Prediction", "Result", "__version__", "tag"]

if TYPE_CHECKING:
    from wanwu.categories import Category, Result
    from wanwu.classifier import Classifier
    from wanwu.ranking import Prediction
    from wanwu.tagging import tag


def __getattr__(name: str):  # type: ignore[no-untyped-def]
    # Lazy, so `import wanwu.errors` (or the CLI's --help) does not load numpy, Pillow and the engines.
    if name == "Classifier":
        from wanwu.classifier import Classifier

        return Classifier
    if name == "Prediction":
        from wanwu.ranking import Prediction

        return Prediction
    if name in ("Category", "Result"):
        import wanwu.categories

        return getattr(wanwu.categories, name)
    if name == "tag":
        from wanwu.tagging import tag

        return tag
    raise AttributeError(f"module 'wanwu' has no attribute {name!r}")
