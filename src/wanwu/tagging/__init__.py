"""Tagging a library: every image under some folders -> one record each in a JSONL, CSV or Parquet file.

    import wanwu
    summary = wanwu.tag(["~/Pictures"], "tags.jsonl")   # re-running resumes where it stopped

Layout: ``discover`` (which files), ``decode`` (a file -> hash + crop, in worker processes),
``batch`` (crops -> one engine call -> records; shared with the Ray path), ``records`` (the record
and what a run knows of earlier ones), ``writers``/``parquet`` (durable appends), ``stages`` and
``runner`` (the local pipeline), ``xmp`` (keyword sidecars), ``api`` (``tag``, ``TagOptions``, ``load_tagger``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = ["TagFailedError", "TagInterrupted", "TagOptions", "TagSummary", "load_tagger", "tag"]

if TYPE_CHECKING:
    from wanwu.tagging.api import TagFailedError, TagInterrupted, TagOptions, load_tagger, tag
    from wanwu.tagging.ledger import TagSummary


def __getattr__(name: str):  # type: ignore[no-untyped-def]
    # Lazy: importing wanwu.tagging.decode in a worker process should not load the engines.
    if name in ("TagFailedError", "TagInterrupted", "TagOptions", "load_tagger", "tag"):
        from wanwu.tagging import api

        return getattr(api, name)
    if name == "TagSummary":
        from wanwu.tagging.ledger import TagSummary

        return TagSummary
    raise AttributeError(f"module 'wanwu.tagging' has no attribute {name!r}")
