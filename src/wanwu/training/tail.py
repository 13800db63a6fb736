"""Fine-tuning the tail (the last blocks + a new classifier, ``wanwu.models.split``) on cached trunk activations.

AdamW with a cosine learning rate over ``max_epochs``, label smoothing, the base's dropout and
drop-connect. BatchNorm layers keep the base's running statistics (eval mode) while their scale and
shift train: a small batch's statistics would make training and inference disagree, and a frozen
BatchNorm is exactly the same layer at inference. After each epoch the tail is scored on the validation
activations; the best epoch (top-1, then loss) is kept, and training stops when ``patience`` epochs in
a row did not beat it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

MIN_STEPS_PER_EPOCH = 20  # a small set is passed over several times per epoch, so an epoch means something


@dataclass(frozen=True)
class TailConfig:
    max_epochs: int = 12
    patience: int = 3
    lr: float = 1e-3
    weight_decay: float = 0.01
    label_smoothing: float = 0.1
    batch_size: int = 128
    seed: int = 0


@dataclass
class TailFit:
    epochs: int = 0  # epochs run
    best_epoch: int = 0  # 1-based; the stored tail is this epoch's
    stopped_early: bool = False
    batch_size: int = 0  # as used (``batch_size``)
    history: list[dict] = field(default_factory=list)  # per epoch: train loss, val top-1 and loss, seconds


def _train_mode(tail) -> None:  # type: ignore[no-untyped-def]
    import torch

    tail.train()
    for m in tail.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.eval()  # the base's statistics, see the module docstring


def predict(tail, x: np.ndarray, batch_size: int = 256) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Logits of ``x`` (N, C, H, W) activations, any float dtype, in eval mode."""
    import torch

    tail.eval()
    out = []
    with torch.inference_mode():
        for i in range(0, len(x), batch_size):
            out.append(tail(torch.from_numpy(np.ascontiguousarray(x[i : i + batch_size])).float()).numpy())
    return np.concatenate(out) if out else np.zeros((0, tail.fc.out_features), np.float32)


def _better(score: tuple[float, float], best: tuple[float, float] | None) -> bool:
    """(top-1, loss): a higher top-1, or the same top-1 with a lower loss."""
    return best is None or score[0] > best[0] or (score[0] == best[0] and score[1] < best[1])


def _val_score(tail, val: tuple[np.ndarray, np.ndarray]) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    import torch

    logits = predict(tail, val[0])
    loss = float(torch.nn.functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(val[1])))
    return float((logits.argmax(axis=1) == val[1]).mean()), loss


def batch_size(config: TailConfig, n: int) -> int:
    """``config.batch_size``, smaller for a small set (a quarter of it, at least 16): more steps for the same work."""
    return min(config.batch_size, max(16, n // 4))


def _passes(n: int, batch: int) -> int:
    return max(1, math.ceil(MIN_STEPS_PER_EPOCH * batch / max(n, 1)))


def _epoch_order(n: int, batch: int, rng: np.random.Generator) -> np.ndarray:
    return np.concatenate([rng.permutation(n) for _ in range(_passes(n, batch))])


def fit_tail(
    tail, x: np.ndarray, y: np.ndarray, config: TailConfig, val: tuple[np.ndarray, np.ndarray] | None = None,  # type: ignore[no-untyped-def]
    epochs: int | None = None, on_step: Callable[[int], None] | None = None, on_epoch: Callable[[dict], None] | None = None,
) -> TailFit:
    """Train ``tail`` in place on activations ``x`` (N, C, H, W) and labels ``y``; with ``val``, keep the best epoch
    and stop early; without, run ``epochs`` (default ``max_epochs``) on the same schedule (a refit)."""
    import torch

    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    config = dataclasses.replace(config, batch_size=batch_size(config, len(x)))
    steps_per_epoch = math.ceil(_passes(len(x), config.batch_size) * len(x) / config.batch_size)
    optimizer = torch.optim.AdamW(tail.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.lr, total_steps=config.max_epochs * steps_per_epoch, pct_start=0.1, anneal_strategy="cos")
    labels = torch.from_numpy(y.astype(np.int64))
    fit, best, best_state = TailFit(batch_size=config.batch_size), None, None
    for epoch in range(1, (epochs or config.max_epochs) + 1):
        loss = _epoch(tail, x, labels, optimizer, schedule, config, rng, on_step)
        record: dict = {"epoch": epoch, "train_loss": round(loss, 4)}
        fit.epochs = epoch
        if val is not None:
            score = _val_score(tail, val)
            record.update(val_top1=round(score[0], 4), val_loss=round(score[1], 4))
            if _better(score, best):
                best, best_state, fit.best_epoch = score, {k: v.clone() for k, v in tail.state_dict().items()}, epoch
        fit.history.append(record)
        if on_epoch:
            on_epoch(record)
        if val is not None and epoch - fit.best_epoch >= config.patience:
            fit.stopped_early = epoch < config.max_epochs
            break
    if best_state is not None:
        tail.load_state_dict(best_state)
    else:
        fit.best_epoch = fit.epochs
    tail.eval()
    return fit


def _epoch(tail, x: np.ndarray, labels, optimizer, schedule, config: TailConfig,  # type: ignore[no-untyped-def]
           rng: np.random.Generator, on_step: Callable[[int], None] | None) -> float:
    import torch

    _train_mode(tail)
    order, total, seen = _epoch_order(len(x), config.batch_size, rng), 0.0, 0
    for i in range(0, len(order), config.batch_size):
        idx = np.sort(order[i : i + config.batch_size])  # sorted: faster reads from the activation array
        batch = torch.from_numpy(x[idx]).float()
        loss = torch.nn.functional.cross_entropy(tail(batch), labels[idx], label_smoothing=config.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if schedule.last_epoch + 1 < schedule.total_steps:
            schedule.step()
        total, seen = total + float(loss.detach()) * len(idx), seen + len(idx)
        if on_step:
            on_step(1)
    return total / max(seen, 1)
