"""Fine-tuning's parts on tiny synthesized data (no checkpoint, no images): the cut, the training loop, early
stopping, and the in-memory activation store."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wanwu.models.efficientnet import efficientnet_lite0
from wanwu.models.resnet import resnet18
from wanwu.models.split import Tail, Trunk, block_count, merged
from wanwu.training.data import Sample
from wanwu.training.finetune import Activations
from wanwu.training.tail import TailConfig, fit_tail, predict


@pytest.mark.parametrize(("build", "blocks"), [(efficientnet_lite0, 1), (efficientnet_lite0, 3), (resnet18, 1)])
def test_trunk_then_tail_is_the_model(build, blocks: int) -> None:  # type: ignore[no-untyped-def]
    """With the base's own classifier copied into the new Linear, the two halves compute the model's logits."""
    torch.manual_seed(0)
    model = build(num_classes=1000).eval()
    for m in model.modules():  # non-trivial BatchNorm statistics, so eval-mode BN is what is compared
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        expected = model(x)
        trunk, tail = Trunk(model, blocks).eval(), Tail(model, blocks, 1000).eval()
        fc = model._fc if hasattr(model, "_fc") else model.fc
        tail.fc.load_state_dict(fc.state_dict())
        got = tail(trunk(x))
    assert len(trunk.blocks) + len(tail.blocks) == block_count(model)
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("build", [efficientnet_lite0, resnet18])
def test_the_merged_model_is_trunk_then_tail_with_the_bases_module_names(build) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    model = build(num_classes=1000).eval()
    names = {n for n, _ in model.named_modules()}
    trunk, tail = Trunk(model, 2).eval(), Tail(model, 2, 5).eval()
    with torch.no_grad():
        for p in tail.parameters():  # as if trained: the tail's blocks are the model's own modules
            p.add_(0.01 * torch.randn_like(p))
        x = torch.randn(2, 3, 224, 224)
        expected = tail(trunk(x))
        fine = merged(model, tail)
        got = fine(x)
    assert got.shape == (2, 5) and {n for n, _ in fine.named_modules()} == names
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_too_many_blocks_is_a_clear_error() -> None:
    with pytest.raises(Exception, match="--blocks must be between 0 and 16"):
        Tail(efficientnet_lite0(), 17, 3)


class _Tiny(torch.nn.Module):
    """A tail-shaped model (``fc`` last) over (N, 4, 2, 2) activations, with a BatchNorm that must stay frozen."""

    def __init__(self, classes: int) -> None:
        super().__init__()
        self.bn = torch.nn.BatchNorm2d(4)
        self.fc = torch.nn.Linear(16, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.bn(x), 1))


def _data(n: int, classes: int, seed: int, learnable: bool = True) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    centers = np.random.default_rng(99).normal(0, 1, (classes, 4, 2, 2))
    x = rng.normal(0, 1, (n, 4, 2, 2)) + (3 * centers[y] if learnable else 0)
    return x.astype(np.float16), y.astype(np.int64)


def test_it_learns_keeps_the_best_epoch_and_leaves_batchnorm_statistics_alone() -> None:
    x, y = _data(400, 3, 0)
    val = _data(100, 3, 1)
    tail = _Tiny(3)
    fit = fit_tail(tail, x, y, TailConfig(max_epochs=6, batch_size=32), val)
    assert fit.epochs == len(fit.history) and 1 <= fit.best_epoch <= fit.epochs
    best = max(fit.history, key=lambda r: (r["val_top1"], -r["val_loss"]))
    assert best["epoch"] == fit.best_epoch
    logits = predict(tail, val[0])
    assert (logits.argmax(1) == val[1]).mean() == pytest.approx(best["val_top1"], abs=1e-4)  # the best epoch's tail is kept
    assert best["val_top1"] > 0.85  # separable classes (chance: 0.33)
    assert torch.equal(tail.bn.running_mean, torch.zeros(4)) and torch.equal(tail.bn.running_var, torch.ones(4))
    assert not tail.training


def test_it_stops_early_when_validation_does_not_improve() -> None:
    x, y = _data(200, 4, 0, learnable=False)  # noise: validation cannot keep improving
    val = _data(200, 4, 1, learnable=False)
    fit = fit_tail(_Tiny(4), x, y, TailConfig(max_epochs=40, patience=2, batch_size=32), val)
    assert fit.stopped_early and fit.epochs == fit.best_epoch + 2 < 40


def test_a_refit_runs_the_epochs_it_is_told_and_is_seeded() -> None:
    x, y = _data(100, 3, 0)
    a, b = _Tiny(3), _Tiny(3)
    b.load_state_dict(a.state_dict())
    fits = [fit_tail(m, x, y, TailConfig(max_epochs=10, patience=1, batch_size=16), None, epochs=3) for m in (a, b)]
    assert [f.epochs for f in fits] == [3, 3] and not fits[0].stopped_early
    assert fits[0].history == fits[1].history
    torch.testing.assert_close(a.fc.weight, b.fc.weight)


def test_a_small_set_gets_enough_steps_per_epoch() -> None:
    steps: list[int] = []
    x, y = _data(10, 2, 0)
    fit_tail(_Tiny(2), x, y, TailConfig(max_epochs=1, batch_size=8), None, on_step=steps.append)
    assert len(steps) >= 20  # 10 images in batches of 8 would be 2 steps


def test_activations_are_kept_by_image_and_view_in_float16() -> None:
    samples = [Sample(None, f"{i:064x}", i % 2) for i in range(3)]  # type: ignore[arg-type]
    keys = [f"{s.sha256}:{v}" for s in samples for v in ("center", "flip")]
    store = Activations(keys)
    assert store.get(samples[0].sha256, "center") is None
    for i, s in enumerate(samples):
        for j, v in enumerate(("center", "flip")):
            store.put(s.sha256, v, np.full((2, 3), i * 10 + j, np.float32))
    assert store.array is not None and store.array.dtype == np.float16 and store.array.shape == (6, 2, 3)
    x, y = store.rows(samples[1:], ("flip",))
    assert x[:, 0, 0].tolist() == [11, 21] and y.tolist() == [1, 0]
