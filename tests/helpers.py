"""Helpers the tests share: synthesized checkpoints, constructed images, a tiny HTTP server, a fake engine."""

from __future__ import annotations

import functools
import http.server
import importlib
import io
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import NoReturn

import numpy as np
import pytest
from PIL import Image

from tests.checkpoints import synthesize_resnet18  # noqa: F401 - tests import it from here


def encode(img: Image.Image, fmt: str, **params) -> bytes:  # type: ignore[no-untyped-def]
    buf = io.BytesIO()
    img.save(buf, fmt, **params)
    return buf.getvalue()


def gradient_image(width: int, height: int, mode: str = "RGB") -> Image.Image:
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    rgb = np.stack([x + 0 * y, y + 0 * x, (x + y) / 2], axis=-1).astype(np.uint8)
    return Image.fromarray(rgb, "RGB").convert(mode)


@contextmanager
def serve_directory(directory: Path) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 (random port) serving ``directory``; yields its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


class FakeEngine:
    """Deterministic, model-free engine: the top class of each image is a function of its input (pixels, as served).

    ``gate`` (a threading.Event) holds every call until set; ``fail`` makes calls raise;
    ``batches`` records the size of each call.
    """

    name = "fake"
    precision = "fp32"
    threads = 1

    def describe(self) -> dict:
        return {"engine": self.name, "precision": self.precision, "threads": self.threads}

    def replica(self) -> FakeEngine:
        return self  # one fake shared by every worker: tests count its calls across them

    def __init__(self) -> None:
        import threading

        self.batches: list[int] = []
        self.gate = threading.Event()
        self.gate.set()
        self.fail: Exception | None = None

    def calls_after_warmup(self, max_batch: int = 8, timeout: float = 30.0) -> int:
        """The number of calls so far, once every warm-up size has run.

        Sizes 1 and ``max_batch`` are warmed before ``/readyz``; the sizes between (up to 16) by the
        inference thread just after, so a count taken at readiness races with them.
        """
        import time

        from wanwu.service.state import warm_batch_sizes

        deadline = time.monotonic() + timeout
        while not set(warm_batch_sizes(max_batch)) <= set(self.batches):
            if time.monotonic() > deadline:
                raise AssertionError(f"warm-up never finished: batches {self.batches}")
            time.sleep(0.01)
        return len(self.batches)

    def run(self, batch: np.ndarray) -> np.ndarray:
        self.gate.wait(30)
        if self.fail is not None:
            raise self.fail
        self.batches.append(len(batch))
        logits = np.zeros((len(batch), 1000), np.float32)
        for row, image in zip(logits, batch, strict=True):
            top = int(abs(float(image.mean())) * 997) % 1000
            row[top], row[(top + 1) % 1000], row[(top + 2) % 1000] = 8.0, 6.0, 4.0
        return logits

    @staticmethod
    def expected_top(image: np.ndarray) -> int:
        return int(abs(float(image.mean())) * 997) % 1000


def fake_classifier(tmp: Path, engine: FakeEngine | None = None):  # type: ignore[no-untyped-def]
    from wanwu.classifier import Classifier
    from wanwu.models import get_model_spec
    from wanwu.sources import ModelSource

    source = ModelSource(get_model_spec("efficientnet_lite0"), "f" * 64, tmp)
    return Classifier(source, engine or FakeEngine())


def missing(reason: str) -> NoReturn:
    """A test's data, server, browser or package is absent: skip here, with the reason, but FAIL under CI.

    CI installs everything the tests need and has ../shared beside it, so an absence there is a broken
    setup that a skip would hide. Platform limits (not Linux, no bf16 in this CPU) are genuine skips: not this.
    """
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: a missing test input fails instead of skipping)", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def require_module(name: str) -> ModuleType:
    """``pytest.importorskip`` under the same rule: an optional package that CI must have installed."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        missing(f"{name} is not installed ({exc}); `make setup` installs it")


def open_model(name: str | None, home: Path | None = None, weights: Path | None = None):  # type: ignore[no-untyped-def]
    """The verified source of a model, as the loader opens it."""
    from wanwu.loader import ModelRequest, open_source

    return open_source(ModelRequest(name, home=home, weights=weights))


def int8_view(model_name: str, home: Path):  # type: ignore[no-untyped-def]
    """What `wanwu quantize` sees of a model: (its batch-dynamic OpenVINO graph, that graph's output shape at
    batch 4, the layers it keeps in fp32)."""
    import openvino as ov

    from wanwu.precision.int8 import _static_spatial_model, keep_fp32

    source = open_model(model_name, home)
    model = _static_spatial_model(ov.Core(), source.onnx_path(), 224)
    out = ov.Core().compile_model(model, "CPU")(np.zeros((4, 3, 224, 224), np.float32))[0]
    return model, out.shape, keep_fp32(source)


def dead_pid() -> int:
    """The PID of a process that has ended (a partial of it is a dead writer's)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def age(path: Path, seconds: float) -> None:
    """Set ``path``'s times ``seconds`` into the past."""
    old = time.time() - seconds
    os.utime(path, (old, old))


TRAINED_LABELS = (("mammals", "mammals"), ("birds", "鸟"), ("plants", "植物"), ("signs", "signs"), ("fish", "鱼"), ("insects", "昆虫"))


class TrainedEngine(FakeEngine):
    """A 6-class trained model's head: "mammals" for every image, sure (0.99) on a picture with detail and only
    0.40 on a flat one, under its measured ``unknown`` threshold (as a hedgehog on a 6-class animals/plants model)."""

    def run(self, batch: np.ndarray) -> np.ndarray:
        self.gate.wait(30)
        self.batches.append(len(batch))
        logits = np.zeros((len(batch), len(TRAINED_LABELS)), np.float32)
        for row, image in zip(logits, batch, strict=True):
            row[0] = 7.0 if float(np.std(image)) > 1e-3 else float(np.log(5 * 0.4 / 0.6))
        return logits


def fake_trained_classifier(tmp: Path, name: str = "tux@1"):  # type: ignore[no-untyped-def]
    """A trained version as the service sees one: its own 6 classes (two named the same in both languages) and
    its own ``unknown_below``, no ImageNet categories."""
    import dataclasses

    from wanwu.classifier import Classifier
    from wanwu.labels import LabelSet
    from wanwu.models import get_model_spec
    from wanwu.sources import ModelSource

    class TrainedSource(ModelSource):
        labels = LabelSet(tuple(en for en, _ in TRAINED_LABELS), tuple(zh for _, zh in TRAINED_LABELS),
                          tuple(f"class{i}" for i in range(len(TRAINED_LABELS))))
        unknown_below = 0.5

    spec = dataclasses.replace(get_model_spec("efficientnet_lite0"), name=name, num_classes=len(TRAINED_LABELS))
    return Classifier(TrainedSource(spec, "e" * 64, tmp), TrainedEngine())


def int8_agreement(ref: str, home: Path, files: list[Path]) -> int:
    """How many of ``files`` get the same top-1 from ``ref``'s INT8 model as from fp32 (OpenVINO)."""
    from wanwu.classifier import Classifier

    top1 = {}
    for precision in ("fp32", "int8"):
        classifier = Classifier.load(ref, engine="openvino", precision=precision, home=home, threads=2)
        top1[precision] = classifier.logits(np.stack([classifier.pixels(f) for f in files])).argmax(1)
    return int((top1["int8"] == top1["fp32"]).sum())
