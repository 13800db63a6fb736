"""One error hierarchy for the whole package.

Each error carries a stable machine-readable ``code``; the service maps classes to HTTP statuses in
one place (``wanwu.service.errors``) and the CLI prints ``message`` as a one-line reason.
"""

from __future__ import annotations

from typing import Any


class WanwuError(Exception):
    """Base class: ``code`` is stable and machine-readable, ``str(err)`` is for people."""

    code = "wanwu_error"

    def __init_subclass__(cls, code: str | None = None, **kwargs: Any) -> None:
        # ``class WeightsMissingError(WeightsError, code="weights_missing")``: one line per error
        super().__init_subclass__(**kwargs)
        if code is not None:
            cls.code = code


class UnknownModelError(WanwuError, KeyError, code="unknown_model"):
    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class EngineUnavailableError(WanwuError, code="engine_unavailable"): ...


class WeightsError(WanwuError, code="weights_error"): ...


class WeightsMissingError(WeightsError, code="weights_missing"): ...


class WeightsVerificationError(WeightsError, code="weights_hash_mismatch"): ...


class StoreError(WanwuError, code="store_unwritable"):
    """The store (``--home`` / ``WANWU_HOME``) cannot be written: read-only, full, or not ours."""


class ImageError(WanwuError, code="bad_image"):
    """Base for everything wrong with an uploaded image."""


class UnsupportedImageError(ImageError, code="unsupported_media_type"): ...


class ImageTooLargeError(ImageError, code="payload_too_large"): ...


class TooManyPixelsError(ImageError, code="too_many_pixels"): ...


class CorruptImageError(ImageError, code="corrupt_image"): ...


class DatasetError(WanwuError, code="bad_dataset"):
    """A training or evaluation folder that cannot be used as it is; the message names the folder."""


class InvalidNameError(WanwuError, code="invalid_name"): ...


class ArchiveError(WanwuError, code="bad_archive"):
    """A model archive that is not one, or whose files do not match its SHA-256 manifest."""
