from __future__ import annotations

import math

import pytest
import torch

from hpo.data import Splits
from hpo.models import ModelConfig
from hpo.spec import ACTIVATIONS, BATCH_NORMS, DROPOUT_LOCATIONS, OPTIMIZERS, SCHEDULES
from hpo.train import TrainConfig, shuffled_labels, train_model

SMALL = ModelConfig(channels=(4, 4), fc_layers=1, fc_width=8)


@pytest.fixture(scope="module")
def splits() -> Splits:
    """Separable synthetic 8x8 images: class k has a bright pixel block at row k."""
    gen = torch.Generator().manual_seed(0)

    def make(n: int):
        y = torch.randint(0, 4, (n,), generator=gen)
        x = torch.randn(n, 1, 8, 8, generator=gen) * 0.3
        x[torch.arange(n), 0, y * 2, :] += 2.0
        return x, y

    (tx, ty), (vx, vy), (sx, sy) = make(256), make(64), make(64)
    return Splits("synthetic", tx, ty, vx, vy, sx, sy, n_classes=4)


def run(splits, model=SMALL, epochs=1, batch_size=32, seed=0, **train):
    return train_model(model, TrainConfig(**train), splits, epochs=epochs,
                       batch_size=batch_size, seed=seed)


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_every_optimizer_trains(splits, optimizer):
    lr = 1.0 if optimizer == "adadelta" else 0.05 if optimizer in ("sgd", "momentum",
                                                                  "nesterov") else 0.01
    result = run(splits, epochs=3, optimizer=optimizer, lr=lr, weight_decay=1e-4)
    first, last = result.history[0], result.history[-1]
    assert math.isfinite(last.train_loss)
    assert last.train_loss < first.train_loss or last.val_acc > 50


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_every_activation_trains(splits, activation):
    result = run(splits, model=ModelConfig(channels=(4, 4), activation=activation))
    assert result.epochs_run == 1 and math.isfinite(result.history[0].train_loss)


@pytest.mark.parametrize("location", DROPOUT_LOCATIONS)
def test_every_dropout_location_trains(splits, location):
    cfg = ModelConfig(channels=(4, 4), fc_layers=1, fc_width=8, dropout=0.3,
                      dropout_location=location)
    assert run(splits, model=cfg).epochs_run == 1


@pytest.mark.parametrize("placement", BATCH_NORMS)
def test_every_batch_norm_placement_trains(splits, placement):
    cfg = ModelConfig(channels=(4, 4), fc_layers=1, fc_width=8, batch_norm=placement)
    assert run(splits, model=cfg).epochs_run == 1


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_every_schedule(splits, schedule):
    result = run(splits, epochs=3, schedule=schedule, step_size=1, gamma=0.5, lr=0.01)
    lrs = [h.lr for h in result.history]
    if schedule == "step":
        assert lrs == pytest.approx([0.01, 0.005, 0.0025])
    elif schedule == "none":
        assert lrs == [0.01, 0.01, 0.01]
    elif schedule == "cosine":
        assert lrs[0] == 0.01 and lrs[1] < 0.01


def test_same_seed_same_run_different_seed_different_run(splits):
    a, b, c = run(splits, seed=3), run(splits, seed=3), run(splits, seed=4)
    assert a.history[0].train_loss == b.history[0].train_loss
    assert a.test_acc == b.test_acc
    assert a.history[0].train_loss != c.history[0].train_loss


def test_divergence_is_a_result_not_a_failure(splits):
    result = run(splits, epochs=5, optimizer="sgd", lr=1e6)
    assert result.diverged is True
    assert result.stopped == "diverged"
    assert result.epochs_run < 5
    assert result.history[-1].train_loss is None
    assert 0.0 <= result.test_acc <= 100.0
    summary = result.summary()
    assert summary["diverged"] is True and summary["test_loss"] is None


def test_patience_stops_early(splits):
    result = run(splits, epochs=20, optimizer="sgd", lr=1e-30, patience=2)
    assert result.stopped == "patience"
    assert result.epochs_run == 3


def test_loss_threshold_stops_early(splits):
    result = run(splits, epochs=20, lr=0.01, loss_threshold=10.0)
    assert result.stopped == "loss_threshold"
    assert result.epochs_run == 1


def test_on_epoch_can_prune(splits):
    result = train_model(SMALL, TrainConfig(), splits, epochs=5, batch_size=32, seed=0,
                         on_epoch=lambda stats: stats.epoch == 2)
    assert result.stopped == "pruned" and result.epochs_run == 2


def test_full_batch_is_one_step_per_epoch(splits):
    result = run(splits, epochs=2, batch_size="full", optimizer="sgd", lr=0.1)
    assert result.epochs_run == 2


def test_l2_penalty_changes_training(splits):
    plain, penalised = run(splits, epochs=2), run(splits, epochs=2, l2=0.1)
    assert plain.history[-1].val_loss != penalised.history[-1].val_loss


def test_label_shuffle_permutes_the_given_fraction():
    y = torch.arange(1000) % 10
    shuffled = shuffled_labels(y, 0.5, seed=0)
    changed = (shuffled != y).float().mean().item()
    assert 0.40 < changed <= 0.5
    assert torch.equal(torch.bincount(shuffled), torch.bincount(y))  # a permutation
    assert shuffled_labels(y, 0.0, seed=0) is y


def test_bf16_autocast_trains(splits):
    assert math.isfinite(run(splits, precision="bf16").history[0].train_loss)


def test_keep_weights_returns_initial_and_final(splits):
    result = train_model(SMALL, TrainConfig(), splits, epochs=1, batch_size=32, seed=0,
                         keep_weights=True)
    key = "0.weight"
    assert not torch.equal(result.initial_state[key], result.final_state[key])
