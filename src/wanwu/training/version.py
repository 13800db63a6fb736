"""A run written as a version: head, base + head ONNX graph, training-image manifest, report, ``version.json``."""

from __future__ import annotations

import dataclasses
import datetime
import shutil
from pathlib import Path

import numpy as np

from wanwu.sources import ONNX_FILE, export_onnx
from wanwu.trained import finetuned, graph
from wanwu.trained.companion import Companion
from wanwu.trained.outofset import EVIDENCE_FILE
from wanwu.trained.source import HEAD_FILE, feature_source, pyramid_maps
from wanwu.trained.store import Version, commit, new_partial
from wanwu.training.embed import FEATURE_DEFINITIONS
from wanwu.training.head import TRANSFORM
from wanwu.training.report import render_report
from wanwu.training.run import Run
from wanwu.version import __version__
from wanwu.weights import sha256_file

IMAGES_FILE = "images.tsv"
REPORT_FILE = "report.html"
FORMAT = 1


def _write_head(folder: Path, run: Run) -> str:
    """Head mode: the head's weight and bias; finetune: every tensor of the trained tail, by its state-dict name."""
    if run.tail is not None:
        finetuned.save_tensors(finetuned.tail_tensors(run.tail), folder / HEAD_FILE)
    else:
        assert run.head is not None
        with open(folder / HEAD_FILE, "wb") as f:
            np.savez(f, weight=run.head.weight, bias=run.head.bias)
    return sha256_file(folder / HEAD_FILE)


def _write_model(folder: Path, run: Run) -> str:
    """Head mode: ONNX surgery on the base's export; finetune: the rebuilt model (base + the stored tail) exported whole."""
    if run.tail is not None:
        assert run.finetune is not None
        tensors = finetuned.load_tensors(folder / HEAD_FILE)  # what is stored is what is exported
        model = finetuned.rebuild(run.base, run.finetune["blocks"], len(run.data.folder.classes), tensors)
        export_onnx(model, folder / ONNX_FILE, run.preprocessing.crop_size)
        onnx_model = graph.flatten_head_input(graph.load_model(folder / ONNX_FILE))
        run.head_node = graph.head_node(onnx_model)
        graph.save_model(onnx_model, folder / ONNX_FILE)
        return sha256_file(folder / ONNX_FILE)
    assert run.head is not None
    maps = pyramid_maps(run.base) if run.features == "pyramid" else None
    in_set = run.in_set if run.out_of_set else None  # the evidence column only where there is a threshold to read it
    companion = None
    if run.companion is not None:
        second = feature_source(run.companion, run.features, run.preprocessing.crop_size)
        companion = graph.load_model(second.onnx_path())
    onnx_model = graph.with_head(graph.load_model(run.base.onnx_path()), run.head.weight, run.head.bias, TRANSFORM, maps,
                                 in_set, companion)
    run.feature_maps = maps
    run.head_node = graph.head_node(onnx_model)
    graph.save_model(onnx_model, folder / ONNX_FILE)
    return sha256_file(folder / ONNX_FILE)


def _write_images(folder: Path, run: Run) -> str:
    """Every training and validation image: split, class folder, SHA-256, absolute path (tab-separated)."""
    classes = run.data.folder.classes
    lines = ["split\tclass\tsha256\tpath"]
    for split, samples in (("train", run.data.train), ("val", run.data.val)):
        lines += [f"{split}\t{classes[s.label].folder}\t{s.sha256}\t{s.path.resolve()}" for s in samples]
    (folder / IMAGES_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return sha256_file(folder / IMAGES_FILE)


def _data_summary(run: Run) -> dict:
    d, o = run.data, run.options
    return {
        "root": str(d.folder.root.resolve()),
        "train_images": len(d.train),
        "val_images": len(d.val),
        "validation": f"folder {o.val.resolve()}" if o.val else f"stratified split {o.val_split:g}, seed {o.seed}",
        "views": list(run.views),
        "skipped": [{"path": str(p), "why": why} for p, why in d.skipped],
        "duplicates": [{"path": str(p), "same_as": str(kept)} for p, kept in d.duplicates],
        "conflicts": d.conflicts,
        "val_overlap": [str(p) for p in d.val_overlap],
    }


def _head(run: Run, files: dict[str, str]) -> dict:
    o = run.options
    common = {"file": HEAD_FILE, "sha256": files[HEAD_FILE], "seed": o.seed, "balanced_classes": run.tail is None,
              "fitted_on": "train+val" if run.refitted else "train", "node": run.head_node}
    if run.tail is not None:
        assert run.finetune is not None
        return {**common, "kind": f"fine-tuned: the base's last {run.finetune['blocks']} block(s) + a new Linear (AdamW)",
                "transform": None, **run.finetune}
    head = run.head
    assert head is not None
    features = {"kind": run.features, "definition": FEATURE_DEFINITIONS[run.features] or "the base's embedding (global average)"}
    if run.features == "pyramid":
        features.update(maps=run.feature_maps, grid=graph.PYRAMID_GRID)
    if run.companion is not None:
        features["companion"] = Companion(run.companion.spec.name, run.companion.weights_sha256,
                                          run.preprocessing.crop_size, run.features).as_dict()
    return {**common, "kind": "multinomial logistic regression (L-BFGS)", "transform": TRANSFORM, "l2": o.l2,
            "iterations": head.iterations, "final_loss": head.final_loss, "embedding_size": int(head.weight.shape[1]),
            "features": features}


def manifest(run: Run, files: dict[str, str]) -> dict:
    o = run.options
    classes = run.data.folder.classes
    counts = {split: np.bincount([s.label for s in samples], minlength=len(classes)) for split, samples in
              (("train", run.data.train), ("val", run.data.val))}
    return {
        "format": FORMAT,
        "kind": o.mode,
        "created_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": list(o.command),
        "wanwu": __version__,
        "base": {"model": run.base.spec.name, "weights_sha256": run.base.weights_sha256},
        "base_choice": run.choice,
        "preprocessing": {**dataclasses.asdict(run.preprocessing), "crop": run.crop["crop"], "crop_why": run.crop["why"]},
        "head": _head(run, files),
        "classes": [
            {"index": i, "folder": c.folder, "label": c.english, "label_zh": c.chinese,
             "train": int(counts["train"][i]), "val": int(counts["val"][i])}
            for i, c in enumerate(classes)
        ],
        "data": _data_summary(run),
        "extraction": run.extraction,
        "metrics": run.metrics,
        "unknown": run.unknown,
        "out_of_set": run.out_of_set,
        "timings_s": {k: round(v, 3) for k, v in run.timings.items()},
        "files": files,
    }


def write_version(run: Run, home: Path) -> Version:
    """Everything goes into a hidden partial folder first; one rename makes it ``NAME@V`` (see ``trained.store``)."""
    partial = new_partial(home)
    try:
        files = {HEAD_FILE: _write_head(partial, run), ONNX_FILE: _write_model(partial, run),
                 IMAGES_FILE: _write_images(partial, run)}
        if run.in_set is not None:  # head mode: the out-of-set evidence (``trained.outofset``)
            run.in_set.save(partial / EVIDENCE_FILE)
            files[EVIDENCE_FILE] = sha256_file(partial / EVIDENCE_FILE)
        data = manifest(run, files)

        def finish(folder: Path, number: int) -> dict[str, str]:
            html = render_report({**data, "name": run.options.name, "version": number}, run)
            (folder / REPORT_FILE).write_text(html, encoding="utf-8")
            return {REPORT_FILE: sha256_file(folder / REPORT_FILE)}

        return commit(home, partial, run.options.name, data, finish=finish)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)  # Ctrl-C included: no half-written version is left
        raise
