"""What a training run is asked to do (``TrainOptions``) and what it learns along the way (``Run``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from wanwu.models.registry import Preprocessing
from wanwu.sources import ModelSource
from wanwu.trained.outofset import InSetEvidence
from wanwu.training.data import TrainingSet
from wanwu.training.head import Head, HeadConfig

# ``crop_why`` when the user named ``--crop``: nothing to explain (``auto`` says what it saw instead)
NAMED_CROP = "--crop"


@dataclass(frozen=True)
class TrainOptions:
    data: Path
    name: str
    base: str | None = None  # None or "auto": head mode chooses by cross-validation (``wanwu.training.search``)
    val: Path | None = None
    val_split: float = 0.2
    seed: int = 0
    labels: Path | None = None
    augment: str = "auto"  # auto | none | flip | all
    crop: str = "auto"  # auto | full (the shorter side whole) | center (the base's ImageNet crop) | pad (letterboxed)
    mode: str = "head"
    features: str = "auto"  # head: auto | global | pyramid (what the head reads; ``wanwu.trained.graph``)
    epochs: int | None = None  # head: most L-BFGS iterations; finetune: most epochs (it stops early on validation)
    blocks: int | None = None  # finetune: how many of the base's last blocks train (default: finetune.DEFAULT_BLOCKS)
    l2: float = HeadConfig.l2
    refit: bool = True  # after validating, fit the stored head on training + validation images
    engine: str | None = None
    threads: int | None = None
    command: tuple[str, ...] = ()


@dataclass
class Run:
    """What a run learned along the way, written into the version and the report."""

    options: TrainOptions
    data: TrainingSet
    base: ModelSource
    preprocessing: Preprocessing
    views: tuple[str, ...]
    features: str = "global"  # head mode: the kind the head reads (``--features auto`` resolved)
    timings: dict[str, float] = field(default_factory=dict)
    extraction: dict = field(default_factory=dict)
    head: Head | None = None
    val_logits: np.ndarray | None = None
    metrics: dict | None = None
    unknown: dict | None = None
    refitted: bool = False  # the stored head was fitted on training + validation images
    tail: object | None = None  # finetune: the trained tail (a torch module, ``wanwu.models.split.Tail``)
    finetune: dict | None = None  # finetune: blocks, epochs, early stopping, the optimiser's settings
    feature_maps: list[dict] | None = None  # pyramid: the two maps of the base's graph that are pooled (tensor, shape)
    in_set: InSetEvidence | None = None  # head mode: the out-of-set evidence, written as its own file
    out_of_set: dict | None = None  # its threshold and how it was measured
    head_node: str | None = None  # the head's Gemm in model.onnx (kept in fp32 by `wanwu quantize`)
    choice: dict | None = None  # head mode: which base and features, and why (``wanwu.training.search``)
    companion: ModelSource | None = None  # head mode: a second base beside ``base``, its features joined after
    crop: dict = field(default_factory=dict)  # ``--crop`` resolved ("crop") and why ("why"; ``train.crop_for``)

