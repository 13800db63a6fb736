"""Service settings: command-line flag -> ``WANWU_*`` environment variable -> default."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from wanwu.cpu import usable_cores
from wanwu.engines import ENGINES, PRECISIONS
from wanwu.preprocess import ImageLimits


class ServiceSettings(BaseSettings):
    # validate_by_name: ServiceSettings(max_batch=4) as well as the variables below
    model_config = SettingsConfigDict(env_prefix="WANWU_", extra="ignore", frozen=True, validate_by_name=True)

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    home: Path | None = None
    model: str | None = None
    extra_models: list[str] = Field(default_factory=list, description="models loaded beside `model` (--model A --model B@2)")
    engine: str | None = None
    weights: Path | None = None
    precision: str = "auto"
    fast_decode: bool = False

    top_k: int = Field(5, ge=1, le=100)
    max_top_k: int = Field(20, ge=1, le=1000)
    max_images_per_request: int = Field(16, ge=1, le=256)
    max_upload_bytes: int = Field(20 * 1024 * 1024, ge=1024)
    max_pixels: int = Field(64_000_000, ge=1024)

    # --batch-size / WANWU_BATCH_SIZE, as in every command (WANWU_MAX_BATCH: its old name, still read)
    max_batch: int = Field(8, ge=1, le=256, validation_alias=AliasChoices("WANWU_BATCH_SIZE", "WANWU_MAX_BATCH"))
    max_wait_ms: float = Field(5.0, ge=0, le=1000)
    max_queue: int = Field(64, ge=1)
    request_timeout_s: float = Field(30.0, gt=0)
    # --threads / WANWU_THREADS, as in every command (WANWU_INFERENCE_THREADS: its old name, still read)
    inference_threads: int = Field(default_factory=usable_cores, ge=1,
                                   validation_alias=AliasChoices("WANWU_THREADS", "WANWU_INFERENCE_THREADS"))
    inference_workers: int = Field(1, ge=1, le=64, description="engines in parallel; threads are split between them")
    decode_threads: int = Field(default_factory=usable_cores, ge=1)

    cache_size: int = Field(4096, ge=0, description="in-process LRU entries; 0 turns the cache off")
    redis_url: str | None = None
    cache_ttl_s: int = Field(7 * 24 * 3600, ge=1)

    api_key: str | None = None
    cors_origins: list[str] = Field(default_factory=list)
    graceful_shutdown_s: float = Field(20.0, ge=0)
    malloc_arenas: int = Field(2, ge=0, description="glibc malloc arenas (0: glibc's default, 8 per core); see service.memory")

    @field_validator("engine", "precision")
    @classmethod
    def _registered(cls, value: str | None, info):  # type: ignore[no-untyped-def]
        valid = {"engine": list(ENGINES), "precision": ("auto", *PRECISIONS)}[info.field_name]
        if value is not None and value not in valid:
            raise ValueError(f"{value!r} is not one of {', '.join(valid)}")
        return value

    def image_limits(self) -> ImageLimits:
        return ImageLimits(max_bytes=self.max_upload_bytes, max_pixels=self.max_pixels)

    @property
    def max_request_bytes(self) -> int:
        """A whole request: every allowed image at its limit, plus room for the multipart framing."""
        return self.max_upload_bytes * self.max_images_per_request * 4 // 3 + 64 * 1024
