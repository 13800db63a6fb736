"""The same job on a Ray cluster (``pip install 'wanwu[ray]'``): Ray schedules, the records are the local path's.

    read_binary_files(paths) -> map_batches(decode_batch)  (tasks: hash, known check, decode + crop)
                             -> map_batches(Tagger)        (an actor pool: one engine per actor, threads = its CPUs)
                             -> records streamed back to the driver, appended per batch as a local run does

``decode_batch`` calls the local path's ``load_data``, ``Tagger`` its ``tag_batch``, and the driver keeps the
same ``Ledger`` (skip, reuse, durable appends), so a Ray run and a local run write the same records.
``Tagger`` is also the callable to drop into your own pipeline::

    ds = ray.data.read_binary_files("s3://bucket/photos/", include_paths=True)
    ds = ds.map_batches(Tagger, fn_constructor_kwargs={"model": "efficientnet_lite0"}, concurrency=4, batch_size=16)
    ds.write_json("s3://bucket/tags/")  # columns: path, record (the JSON record), label, score
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from wanwu.classifier import Classifier
from wanwu.loader import ModelRequest, load
from wanwu.tagging.batch import RankOptions, model_info, tag_batch
from wanwu.tagging.decode import TAG_LIMITS, DecodeSettings, Loaded, Task, load_data
from wanwu.tagging.records import make_record
from wanwu.tagging.vectors import DIM

_SCALARS = ("rel", "sha256", "size", "width", "height", "error_code", "error_message")


def to_columns(items: list[Loaded], crop: int) -> dict[str, np.ndarray]:
    """Decoded items -> a Ray Data batch (failed or undecoded rows get zero pixels and ``decoded`` False)."""
    pixels = np.zeros((len(items), crop, crop, 3), np.uint8)
    for row, item in enumerate(items):
        if item.pixels is not None:
            pixels[row] = item.pixels
    number = lambda x: -1 if x is None else x  # noqa: E731 - int64 columns: -1 stands for null
    values = {
        "rel": [i.rel for i in items], "sha256": [i.sha256 or "" for i in items], "size": [number(i.size) for i in items],
        "width": [number(i.width) for i in items], "height": [number(i.height) for i in items],
        "error_code": [i.error[0] if i.error else "" for i in items],
        "error_message": [i.error[1] if i.error else "" for i in items],
    }
    columns = {k: np.array(v, dtype=object if k in ("rel", "sha256", "error_code", "error_message") else np.int64)
               for k, v in values.items()}
    return {**columns, "pixels": pixels, "decoded": np.array([i.decoded for i in items]),
            "phash": np.array([i.phash or 0 for i in items], np.uint64),
            "known": np.array([i.known for i in items])}


def from_columns(batch: dict[str, np.ndarray]) -> list[Loaded]:
    items = []
    for row in range(len(batch["rel"])):
        v = {k: batch[k][row] for k in _SCALARS}
        number = lambda x: None if int(x) < 0 else int(x)  # noqa: E731
        items.append(Loaded(str(v["rel"]), v["sha256"] or None, number(v["size"]), number(v["width"]), number(v["height"]),
                            batch["pixels"][row] if batch["decoded"][row] else None,
                            (str(v["error_code"]), str(v["error_message"])) if v["error_code"] else None,
                            bool(batch["known"][row]),
                            int(batch["phash"][row]) if "phash" in batch and batch["decoded"][row] else None))
    return items


def decode_batch(batch: dict[str, np.ndarray], tasks: object, settings: DecodeSettings) -> dict[str, np.ndarray]:
    """Ray Data task: ``bytes`` + ``path`` rows (``read_binary_files(include_paths=True)``) -> decoded columns.

    ``tasks``: {path: Task}, or an ObjectRef to it (a large library's plan is put in the object store once,
    not pickled into every task).
    """
    plan = _plan_of(tasks)
    items = [load_data(bytes(data), plan[str(path)], settings) for data, path in zip(batch["bytes"], batch["path"], strict=True)]
    return to_columns(items, settings.preprocessing.crop_size)


_plans: dict[str, dict[str, Task]] = {}  # per worker process: the plan fetched once, by its ObjectRef


def _plan_of(tasks: object) -> dict[str, Task]:
    if isinstance(tasks, dict):
        return tasks
    import ray

    key = tasks.hex()  # type: ignore[attr-defined]
    if key not in _plans:
        _plans.clear()  # one run's plan at a time
        _plans[key] = ray.get(tasks)
    return _plans[key]


class Tagger:
    """A ``map_batches``-ready callable class: one engine per actor, ``threads`` = the actor's CPUs (default).

    Takes either raw files (a ``bytes`` column, and ``path``, as ``read_binary_files(include_paths=True)``
    gives; it decodes them itself) or ``decode_batch``'s columns. Returns, per row, ``path``, ``record``
    (the record as JSON, exactly what ``wanwu tag`` writes), the top-1 ``label`` and ``score``, and ``known``.
    """

    def __init__(self, model: str | None = None, engine: str | None = None, weights: str | None = None,
                 home: str | None = None, precision: str = "auto", threads: int | None = None, top_k: int = 5,
                 min_score: float = 0.0, fast_decode: bool = False, max_pixels: int = TAG_LIMITS.max_pixels,
                 batch: int = 16) -> None:
        # auto is resolved here, on this worker's CPU kind (remembered per kind in the bundle, as locally)
        request = ModelRequest(model, engine, Path(weights) if weights else None, Path(home) if home else None, precision,
                               threads or _assigned_cpus(), batch)
        self.classifier = Classifier.from_loaded(load(request))
        source = self.classifier.source
        self.info = model_info(self.classifier)
        self.rank = RankOptions(top_k, min_score)
        limits = type(TAG_LIMITS)(TAG_LIMITS.max_bytes, max_pixels, TAG_LIMITS.bytes_setting, TAG_LIMITS.pixels_setting)
        self.settings = DecodeSettings(source.spec.preprocessing, limits, fast_decode)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if "bytes" in batch:
            paths = batch.get("path", np.array([f"#{i}" for i in range(len(batch["bytes"]))], dtype=object))
            items = [load_data(bytes(d), Task(str(p), str(p), len(d)), self.settings)
                     for d, p in zip(batch["bytes"], paths, strict=True)]
        else:
            items = from_columns(batch)
        work = [i for i in items if i.decoded or i.error]
        records = iter(tag_batch(self.classifier, work, self.info, self.rank))
        out = [next(records) if (i.decoded or i.error) else make_record(self.info, i.rel, i.sha256, i.size) for i in items]
        tops = [r["predictions"][0] if r["predictions"] else {} for r in out]
        vectors = np.zeros((len(items), DIM), np.float16)
        for row, item in enumerate(items):
            if item.vector is not None:
                vectors[row] = item.vector
        return {"path": np.array([r["path"] for r in out], dtype=object),
                "record": np.array([json.dumps(r, ensure_ascii=False) for r in out], dtype=object),
                "label": np.array([t.get("label", "") for t in tops], dtype=object),
                "score": np.array([t.get("score", 0.0) for t in tops], dtype=np.float64),
                "known": np.array([i.known for i in items]),
                # the embedding and pHash for the vectors sidecar (wanwu.tagging.vectors); has_vector: a row is real
                "phash": np.array([i.phash or 0 for i in items], np.uint64), "vector": vectors,
                "has_vector": np.array([i.vector is not None and i.phash is not None for i in items])}


def _assigned_cpus() -> int:
    try:
        import ray

        if not ray.is_initialized():  # a plain call: asking for the runtime context would start a local Ray
            return 1
        return max(1, int(ray.get_runtime_context().get_assigned_resources().get("CPU", 1)))
    except Exception:  # noqa: BLE001 - outside an actor (the driver): one thread
        return 1


def connect(address: str) -> dict:
    """``auto``: the running cluster ``ray.init(address="auto")`` finds (``RAY_ADDRESS`` too), else a local one
    with logical CPU headroom (an actor pool that takes every CPU starves Ray Data's read stage); or an address."""
    import ray

    if ray.is_initialized():
        return ray.cluster_resources()
    quiet = {"log_to_driver": False, "logging_level": "warning", "configure_logging": True}
    if address == "auto":
        try:
            ray.init(address="auto", **quiet)
        except ConnectionError:
            ray.init(num_cpus=2 * (len(os.sched_getaffinity(0))), include_dashboard=False, **quiet)
    else:
        ray.init(address=address, **quiet)
    return ray.cluster_resources()
