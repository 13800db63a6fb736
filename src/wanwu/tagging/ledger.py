"""What a run has written and what it still owes: the bookkeeping both runners (local and Ray) share.

- an error (unreadable, not an image, a bomb, ...) -> an error record; the run goes on;
- already tagged (its last record: same content hash, same model + weights + category table, and precision
  unless the run asked for ``auto``) -> skipped; a record of another model or table is replaced by a new one;
- identical to a file already tagged, here or in an earlier run -> a record with those predictions,
  not decoded again; identical files of one run wait on the first one's record (``claim``/``settle``);
- everything else is decoded and inferred, and its record written with its batch (``settle``).
"""

from __future__ import annotations

import os
import queue
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from wanwu.tagging.batch import record_for
from wanwu.tagging.decode import Loaded
from wanwu.tagging.records import Existing, ModelInfo
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
    vectors_filled: int = 0  # already tagged, but missing from the vectors sidecar: decoded again for it only
    elapsed_s: float = 0.0
    cpu_s: float = 0.0  # CPU time of the run (this process and its decode workers), for core-ms per image
    errors: Counter = field(default_factory=Counter)  # code -> images
    symlinks_skipped: int = 0
    torn_bytes: int = 0  # a killed run's half-written last line, truncated before appending
    settings: dict = field(default_factory=dict)  # what ran, how (for the report)
    sidecars: dict = field(default_factory=dict)  # --xmp: written, unchanged, empty, problems (xmp.SidecarSummary)

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
        if self.vectors_filled:
            parts.append(f"vectors filled {self.vectors_filled:,} (records kept)")
        torn = f" (cut a half-written last line left by a killed run: {self.torn_bytes} bytes)" if self.torn_bytes else ""
        sidecars = (f" · XMP sidecars: written {self.sidecars['written']:,}, unchanged {self.sidecars['unchanged']:,}, "
                    f"left alone {len(self.sidecars['problems']):,}") if self.sidecars else ""
        return (f"{', '.join(parts)} · {self.images:,} images in {self.elapsed_s:.1f} s, "
                f"{self.images_per_s:.1f} images/s → {self.out}{torn}{sidecars}")

    @property
    def saved(self) -> int:
        """Records this run wrote (tagged, reused and failed images)."""
        return self.tagged + self.reused + self.failed

    def as_dict(self) -> dict:
        return {**{k: v for k, v in self.__dict__.items() if k != "errors"}, "errors": dict(self.errors),
                "images_per_s": round(self.images_per_s, 2)}


class Ledger:
    """Records go to the output through one writer thread: what is queued when it wakes is one ``write`` and one
    ``fsync`` (a group commit), so no inference worker ever waits on the disk. ``close()`` drains it."""

    def __init__(self, info: ModelInfo, output: LineFile, existing: Existing, progress: Progress | None = None) -> None:
        self.info, self.output, self.existing, self.progress = info, output, existing, progress
        self.summary = TagSummary(str(output.path))
        self._lock = threading.Lock()
        self._claims: dict[str, list[Loaded]] = {}  # hash -> identical files waiting for its predictions
        self._settled: dict[str, dict] = {}  # hash -> the record its first file got (its twins get a copy)
        self._queue: queue.Queue[list[dict] | None] = queue.Queue()
        self._error: BaseException | None = None
        self._writer = threading.Thread(target=self._write_loop, name="wanwu-tag-writer", daemon=True)
        self._writer.start()

    def known(self, item: Loaded) -> None:
        """A file whose hash the output already holds: skipped (same path) or given those predictions."""
        assert item.sha256 is not None
        if self.existing.is_done(item.rel, item.sha256):
            with self._lock:
                self.summary.skipped += 1
            self._report()
        else:
            self.write([self._copy(item, self.existing.record(item.sha256))], reused=1)

    def claim(self, item: Loaded) -> bool:
        """A hashed file: True if the caller should decode it (its content is new to this run); otherwise it
        is recorded now (its twin is done) or when its twin's record is settled."""
        sha = item.sha256
        assert sha is not None
        with self._lock:
            settled = self._settled.get(sha)
            if settled is None:
                if sha in self._claims:
                    self._claims[sha].append(item)
                    return False
                self._claims[sha] = []
                return True
        self.write([self._copy(item, settled)], reused=1)
        return False

    def _copy(self, item: Loaded, record: dict) -> dict:
        """The record of an identical file: its predictions and categories, and the precision and engine that made
        them (on Ray with ``auto``, the actor's, which may differ from another actor's)."""
        copy = record_for(self.info, item, record["predictions"], _error_of(record), record.get("categories"),
                          record.get("unknown"), record.get("out_of_set"))
        return {**copy, "precision": record["precision"], "engine": record["engine"]}

    def settle(self, done: list[tuple[Loaded, dict]], decoded: int = 0) -> None:
        """Write ``done`` plus a record for every identical file that waited on one of them."""
        records, waiting = [r for _, r in done], []
        with self._lock:
            self.summary.decoded += decoded
            for item, record in done:
                if item.sha256 in self._claims:
                    self._settled[item.sha256] = record
                    waiting += [(w, record) for w in self._claims.pop(item.sha256)]
        records += [self._copy(w, r) for w, r in waiting]
        self.write(records, reused=len(waiting))

    def filled(self, count: int) -> None:
        """``count`` already-tagged images got their missing sidecar rows (their records stay as they are)."""
        with self._lock:
            self.summary.vectors_filled += count

    def orphans(self) -> None:
        """Files that waited on content that changed on disk between hashing and decoding."""
        left = [w for waiting in self._claims.values() for w in waiting]
        self._claims.clear()
        self.write([record_for(self.info, w, error=("file_changed", f"{w.rel} changed while it was being tagged; run again"))
                    for w in left])

    def write(self, records: list[dict], reused: int = 0) -> None:
        """Queue ``records`` for the output; the last ``reused`` of them are copies of an identical file's."""
        if self._error is not None:
            raise self._error
        if not records:
            return
        self._queue.put(records)
        with self._lock:
            failed = [r["error"]["code"] for r in records if r["error"]]
            reused_ok = sum(not r["error"] for r in records[len(records) - reused:])
            self.summary.failed += len(failed)
            self.summary.errors.update(failed)
            self.summary.reused += reused_ok
            self.summary.tagged += len(records) - len(failed) - reused_ok
            self.summary.replaced += sum(self.existing.has_record(r["path"]) for r in records)
        self._report()

    def close(self) -> None:
        """Write what is queued and stop the writer; re-raises its error (a full disk, say)."""
        self._queue.put(None)
        self._writer.join()
        if self._error is not None:
            raise self._error

    def _write_loop(self) -> None:
        while (first := self._queue.get()) is not None:
            batch, done = list(first), False
            while not self._queue.empty():
                more = self._queue.get()
                if more is None:
                    done = True
                    break
                batch += more
            try:
                self.output.append(batch)
            except BaseException as err:  # noqa: BLE001 - surfaced by the next write() or by close()
                self._error = err
                return
            if done:
                return

    def _report(self) -> None:
        if self.progress is not None:
            s = self.summary
            self.progress(s.tagged + s.reused + s.failed + s.skipped, s.failed)


def cpu_s() -> float:
    """CPU seconds of this process and of its children that have ended (the decode workers, once closed)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def _error_of(record: dict) -> tuple[str, str] | None:
    error = record["error"]
    return (error["code"], error["message"]) if error else None
