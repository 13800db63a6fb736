"""The driver of a Ray run: plans on this machine, lets Ray Data decode and infer, appends what comes back.

Files whose size matches another file's are hashed here first (they are few), so identical content
goes to the cluster once, as on the local path; every other file is hashed where it is decoded.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import time
from collections import Counter

import numpy as np

from wanwu.errors import WanwuError
from wanwu.tagging.batch import record_for
from wanwu.tagging.decode import DecodeSettings, Loaded, Task, load_file
from wanwu.tagging.discover import Found
from wanwu.tagging.ledger import Ledger, TagSummary, cpu_s
from wanwu.tagging.on_ray import Tagger, connect, decode_batch
from wanwu.tagging.vectors import VectorFile


class ClusterMismatchError(WanwuError):
    code = "cluster_mismatch"


class RayRun:
    def __init__(self, ledger: Ledger, settings: DecodeSettings, tagger: dict, batch_size: int, address: str = "auto",
                 actors: int | None = None, actor_cpus: int = 1) -> None:
        self.ledger, self.settings, self.tagger, self.batch_size = ledger, settings, tagger, batch_size
        self.address, self.actors, self.actor_cpus = address, actors, actor_cpus
        self.cluster: dict = {}  # what it ran on, for the summary's settings
        self.vectors: VectorFile | None = None  # the embeddings' sidecar (api.tag sets it)
        self.taken: set[str] = set()  # paths whose record came back: a batch retried after a lost worker may come twice

    def run(self, files: list[Found]) -> TagSummary:
        import ray

        owned = not ray.is_initialized()  # a session this run opens, it closes: a caller's own session stays up
        # Ray prints the cluster's error events (a lost worker, a retried task) to stdout, where --json's summary
        # goes, from a thread that lags the job: they go to stderr, and closing the session stops that thread
        with contextlib.redirect_stdout(sys.stderr):
            try:
                return self._run(files)
            finally:
                if owned:
                    ray.shutdown()

    def _run(self, files: list[Found]) -> TagSummary:
        import ray
        import ray.data

        started, cpu = time.perf_counter(), cpu_s()
        self.ledger.summary.images = len(files)
        resources = connect(self.address)
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        ray.data.DataContext.get_current().enable_progress_bars = False
        tasks, actors = self._plan(files), 0
        if tasks:
            actors = self.actors or max(1, int(resources.get("CPU", 2) // (2 * self.actor_cpus)))
            batch = max(16, self.batch_size)  # a Ray Data call costs ~ms: small batches are the local path's
            ds = ray.data.read_binary_files(list(tasks), include_paths=True)
            ds = ds.map_batches(decode_batch, fn_kwargs={"tasks": ray.put(tasks), "settings": self.settings},
                                batch_size=batch, num_cpus=1)
            ds = ds.map_batches(Tagger, fn_constructor_kwargs={**self.tagger, "threads": self.actor_cpus},
                                compute=ray.data.ActorPoolStrategy(size=actors), num_cpus=self.actor_cpus,
                                batch_size=batch)
            for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
                self._take(batch)
        self.ledger.orphans()
        summary = self.ledger.summary
        summary.elapsed_s, summary.cpu_s = time.perf_counter() - started, cpu_s() - cpu
        self.cluster = {"address": self.address, "cluster_cpus": resources.get("CPU"), "actors": actors if tasks else 0,
                        "actor_cpus": self.actor_cpus}
        return summary

    def _plan(self, files: list[Found]) -> dict[str, Task]:
        """Errors found before reading are written here; twins are hashed here; the rest go to the cluster."""
        ledger, existing = self.ledger, self.ledger.existing
        sizes = Counter(f.size for f in files if f.error is None)
        tasks: dict[str, Task] = {}
        for found in files:
            error = found.error or _unreadable(found)
            if error:
                ledger.write([record_for(ledger.info, Loaded(found.rel, size=found.size, error=error))])
                continue
            task = Task(found.path, found.rel, found.size, existing.known(found.size))
            if sizes[found.size] > 1:
                item = load_file(Task(found.path, found.rel, found.size, task.known, hash_only=True), self.settings)
                if item.error:
                    ledger.settle([(item, record_for(ledger.info, item))])
                elif item.known:
                    ledger.known(item)
                if item.error or item.known or not ledger.claim(item):
                    continue
                task = Task(found.path, found.rel, found.size)
            tasks[found.path] = task
        return tasks

    def _take(self, batch: dict) -> None:
        if self.vectors is not None and "has_vector" in batch and batch["has_vector"].any():
            rows = np.flatnonzero(batch["has_vector"])
            shas = [json.loads(batch["record"][r])["sha256"] for r in rows]
            self.vectors.add(shas, [int(batch["phash"][r]) for r in rows], batch["vector"][rows])
        done = []
        for text, known in zip(batch["record"], batch["known"], strict=True):
            record = json.loads(text)  # the actor's: it names its model, weights, precision and category table
            if record["path"] in self.taken:
                continue
            self.taken.add(record["path"])
            if not self.ledger.info.matches(record):
                raise ClusterMismatchError(
                    f"the cluster tags with {record['model']} weights {record['weights_sha256'][:12]} {record['precision']} "
                    f"(category table {record.get('categories_version')}), this machine with "
                    f"{'/'.join(str(part) for part in self.ledger.info.key)}: give every node the same weights (or "
                    "--weights) and the same wanwu")
            error = (record["error"]["code"], record["error"]["message"]) if record["error"] else None
            item = Loaded(record["path"], record["sha256"], record["bytes"], record["width"], record["height"],
                          error=error, known=bool(known))
            if item.known:
                self.ledger.known(item)
            else:
                done.append((item, record))
        self.ledger.settle(done, decoded=sum(1 for _, r in done if r["error"] is None))


def _unreadable(found: Found) -> tuple[str, str] | None:
    # Ray Data's reader fails the whole job on a file it cannot open: such files are recorded here instead.
    if not os.access(found.path, os.R_OK):
        return ("permission_denied", f"cannot read {found.rel}: permission denied")
    return None
