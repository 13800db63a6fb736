"""The local run: found files -> decode stage -> batches -> infer stage -> records appended per batch.

What it decides per file, in the main thread, as decoded results come back in order:

- an error (unreadable, not an image, a bomb, ...) -> an error record; the run goes on;
- already tagged (same path, same content hash, same model + weights + precision) -> skipped;
- identical to a file already tagged -> a record with those predictions, not decoded again
  (files whose size matches another file's are hashed first, so identical content is decoded once);
- otherwise its crop joins the next batch.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from wanwu.classifier import Classifier
from wanwu.tagging.batch import RankOptions, record_for, tag_batch
from wanwu.tagging.decode import DecodeSettings, Loaded, Task, worker_load
from wanwu.tagging.discover import Found
from wanwu.tagging.records import Existing, ModelInfo
from wanwu.tagging.stages import DecodeStage, InferStage
from wanwu.tagging.writers import LineFile

Progress = Callable[[int, int], None]  # (images finished, of which failed), called after every write


@dataclass
class TagSummary:
    out: str
    images: int = 0  # found
    tagged: int = 0  # new records, predicted by the engine
    reused: int = 0  # new records for files identical to one already tagged (not decoded again)
    skipped: int = 0  # already in the output
    failed: int = 0
    decoded: int = 0
    replaced: int = 0  # older records of re-tagged images (failed or changed), dropped at the end
    elapsed_s: float = 0.0
    cpu_s: float = 0.0  # CPU time of the run (this process and its decode workers), for core-ms per image
    errors: Counter = field(default_factory=Counter)  # code -> images
    symlinks_skipped: int = 0
    torn_bytes: int = 0  # a killed run's half-written last line, truncated before appending
    settings: dict = field(default_factory=dict)  # what ran, how (for the report)

    @property
    def images_per_s(self) -> float:
        done = self.tagged + self.reused + self.failed
        return done / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def line(self) -> str:
        """The one-line summary the command prints."""
        failed = f"failed {self.failed:,}" + (f" ({', '.join(f'{c} {n}' for c, n in self.errors.most_common())})"
                                              if self.errors else "")
        parts = [f"tagged {self.tagged:,}", f"reused {self.reused:,} (identical files)",
                 f"skipped {self.skipped:,} (already tagged)", failed]
        torn = f" (cut a half-written last line left by a killed run: {self.torn_bytes} bytes)" if self.torn_bytes else ""
        return (f"{', '.join(parts)} · {self.images:,} images in {self.elapsed_s:.1f} s, "
                f"{self.images_per_s:.1f} images/s → {self.out}{torn}")

    def as_dict(self) -> dict:
        return {**{k: v for k, v in self.__dict__.items() if k != "errors"}, "errors": dict(self.errors),
                "images_per_s": round(self.images_per_s, 2)}


class LocalRun:
    def __init__(self, classifier: Classifier, engines: list, info: ModelInfo, output: LineFile, existing: Existing,
                 settings: DecodeSettings, rank: RankOptions, batch_size: int, decode_workers: int,
                 progress: Progress | None = None, load: Callable[[Task], Loaded] = worker_load) -> None:
        self.classifier, self.engines, self.info, self.output, self.existing = classifier, engines, info, output, existing
        self.settings, self.rank, self.batch_size, self.decode_workers = settings, rank, batch_size, decode_workers
        self.progress, self.load = progress, load
        self.summary = TagSummary(str(output.path))
        self._lock = threading.Lock()
        self._claims: dict[str, list[Loaded]] = {}  # hash -> identical files waiting for its predictions
        self._settled: dict[str, tuple[list[dict] | None, tuple[str, str] | None]] = {}
        self._pending: list[Loaded] = []

    def run(self, files: list[Found]) -> TagSummary:
        started, cpu = time.perf_counter(), _cpu_s()
        self.summary.images = len(files)
        sizes = Counter(f.size for f in files if f.error is None)
        window = max(4 * self.decode_workers, 2 * self.batch_size * len(self.engines))
        decode = DecodeStage(self.settings, self.decode_workers, window, self.load)
        infer = InferStage(self.engines, self._infer)
        try:
            for found in files:
                if found.error is not None:
                    self._write([record_for(self.info, Loaded(found.rel, error=found.error))])
                    continue
                decode.submit(Task(found.path, found.rel, found.size, self.existing.known(found.size),
                                   hash_only=sizes[found.size] > 1))
                while decode.full:
                    self._take(decode, infer)
            while len(decode):
                self._take(decode, infer)
            if self._pending:
                infer.put(self._pending)
        finally:
            infer.close()
            decode.close()
        self._orphans()
        self.summary.elapsed_s, self.summary.cpu_s = time.perf_counter() - started, _cpu_s() - cpu
        return self.summary

    def _take(self, decode: DecodeStage, infer: InferStage) -> None:
        task, item = decode.next()
        if item.error is not None:
            self._settle([(item, record_for(self.info, item))])
        elif item.known:
            self._known(item)
        elif not item.decoded:
            self._hashed(task, item, decode)
        else:
            self._pending.append(item)
            if len(self._pending) >= self.batch_size:
                infer.put(self._pending)
                self._pending = []

    def _known(self, item: Loaded) -> None:
        assert item.sha256 is not None
        if self.existing.is_done(item.rel, item.sha256):
            with self._lock:
                self.summary.skipped += 1
            self._report()
        else:
            self._write([record_for(self.info, item, self.existing.predictions(item.sha256))], reused=1)

    def _hashed(self, task: Task, item: Loaded, decode: DecodeStage) -> None:
        """A file that has a same-size twin, hashed but not decoded: decode it only if its content is new."""
        sha = item.sha256
        assert sha is not None
        with self._lock:
            settled = self._settled.get(sha)
            if settled is None:
                if sha in self._claims:
                    self._claims[sha].append(item)
                    return
                self._claims[sha] = []
        if settled is not None:
            self._write([record_for(self.info, item, settled[0], settled[1])], reused=1)
        else:
            decode.submit(Task(task.path, task.rel, task.size))

    def _infer(self, batch: list[Loaded], engine: object) -> None:
        records = tag_batch(self.classifier, batch, self.info, self.rank, engine)  # type: ignore[arg-type]
        with self._lock:
            self.summary.decoded += len(batch)
        self._settle(list(zip(batch, records, strict=True)))

    def _settle(self, done: list[tuple[Loaded, dict]]) -> None:
        """Write ``done`` plus a record for every identical file that waited on one of them."""
        records, waiting = [r for _, r in done], []
        with self._lock:
            for item, record in done:
                if item.sha256 in self._claims:
                    self._settled[item.sha256] = (record["predictions"], item.error or _error_of(record))
                    waiting += [(w, record) for w in self._claims.pop(item.sha256)]
        records += [record_for(self.info, w, r["predictions"], _error_of(r)) for w, r in waiting]
        self._write(records, reused=len(waiting))

    def _orphans(self) -> None:
        """Files that waited on content that changed on disk between hashing and decoding."""
        left = [w for waiting in self._claims.values() for w in waiting]
        self._claims.clear()
        self._write([record_for(self.info, w, error=("file_changed", f"{w.rel} changed while it was being tagged; run again"))
                     for w in left])

    def _write(self, records: list[dict], reused: int = 0) -> None:
        if not records:
            return
        with self._lock:
            self.output.append(records)
            failed = [r["error"]["code"] for r in records if r["error"]]
            reused_ok = sum(not r["error"] for r in records[len(records) - reused:])  # the last ``reused`` are copies
            self.summary.failed += len(failed)
            self.summary.errors.update(failed)
            self.summary.reused += reused_ok
            self.summary.tagged += len(records) - len(failed) - reused_ok
            self.summary.replaced += sum(self.existing.has_record(r["path"]) for r in records)
        self._report()

    def _report(self) -> None:
        if self.progress is not None:
            s = self.summary
            self.progress(s.tagged + s.reused + s.failed + s.skipped, s.failed)


def _cpu_s() -> float:
    """CPU seconds of this process and of its children that have ended (the decode workers, once closed)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def _error_of(record: dict) -> tuple[str, str] | None:
    error = record["error"]
    return (error["code"], error["message"]) if error else None
