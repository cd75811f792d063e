from __future__ import annotations

import math

import pytest
import torch

from hpo.nn.data import Splits
from hpo.nn.models import ModelConfig
from hpo.nn.train import TrainConfig, shuffled_labels, train_model
from hpo.spec import ACTIVATIONS, BATCH_NORMS, DROPOUT_LOCATIONS, OPTIMIZERS, SCHEDULES

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


def test_cpu_time_is_the_process_time_difference_around_training(splits, monkeypatch):
    import time

    clock = iter([100.0, 103.25])
    calls = []

    def fake_process_time() -> float:
        calls.append(1)
        return next(clock)

    monkeypatch.setattr(time, "process_time", fake_process_time)
    summary = run(splits).summary()
    assert len(calls) == 2
    assert summary["cpu_time"] == 3.25
    assert summary["wall_time"] > 0


def test_cpu_time_is_measured(splits):
    result = run(splits)
    assert isinstance(result.summary()["cpu_time"], float) and result.cpu_time > 0


def test_summed_loss_gradient_is_batch_size_times_the_mean(splits):
    from hpo.nn.models import build_model
    from hpo.nn.train import batch_loss

    torch.manual_seed(0)
    model = build_model(SMALL, splits.shape, splits.n_classes)
    xb, yb = splits.train_x[:32], splits.train_y[:32]

    def grads(reduction: str) -> list[torch.Tensor]:
        model.zero_grad()
        batch_loss(model(xb), yb, reduction).backward()
        return [p.grad.clone() for p in model.parameters()]

    for mean, summed in zip(grads("mean"), grads("sum"), strict=True):
        assert torch.allclose(summed, 32 * mean, rtol=1e-5, atol=1e-6)


def test_summed_loss_at_lr_trains_like_mean_at_batch_size_times_lr(splits):
    # Plain SGD, 256 examples in 8 batches of 32: every step is the same step either way.
    def final(**train):
        return train_model(SMALL, TrainConfig(optimizer="sgd", **train), splits, epochs=2,
                           batch_size=32, seed=0, keep_weights=True)

    summed, mean = final(lr=0.001, loss_reduction="sum"), final(lr=0.032)
    for key, value in summed.final_state.items():
        assert torch.allclose(value, mean.final_state[key], rtol=1e-4, atol=1e-5), key
    # The recorded loss is the per-example mean either way.
    assert summed.history[0].train_loss == pytest.approx(mean.history[0].train_loss, rel=1e-4)


def count_steps(monkeypatch) -> list[int]:
    import hpo.nn.train

    steps: list[int] = []
    make = hpo.nn.train.make_optimizer

    def counting(params, cfg):
        optimizer = make(params, cfg)
        step = optimizer.step

        def counted(*args, **kwargs):
            steps.append(1)
            return step(*args, **kwargs)

        optimizer.step = counted
        return optimizer

    monkeypatch.setattr(hpo.nn.train, "make_optimizer", counting)
    return steps


def test_minibatch_loss_threshold_stops_after_the_first_batch_below_it(splits, monkeypatch):
    steps = count_steps(monkeypatch)
    result = run(splits, epochs=5, loss_threshold=10.0, loss_threshold_on="minibatch")
    assert (result.stopped, result.epochs_run, len(steps)) == ("loss_threshold", 1, 1)
    # Accuracy over the 32 examples it saw, not over all 256.
    assert result.history[0].train_acc in {100.0 * k / 32 for k in range(33)}


def test_epoch_loss_threshold_finishes_the_epoch(splits, monkeypatch):
    steps = count_steps(monkeypatch)
    result = run(splits, epochs=5, loss_threshold=10.0)
    assert (result.stopped, result.epochs_run, len(steps)) == ("loss_threshold", 1, 8)


def test_minibatch_threshold_never_reached_runs_every_epoch(splits, monkeypatch):
    steps = count_steps(monkeypatch)
    result = run(splits, epochs=2, loss_threshold=1e-9, loss_threshold_on="minibatch")
    assert (result.stopped, result.epochs_run, len(steps)) == ("completed", 2, 16)


def memorising(splits: Splits) -> Splits:
    """32 training images with every label shuffled: validation loss rises while it memorises."""
    return Splits("synthetic", splits.train_x[:32], splits.train_y[:32], splits.val_x,
                  splits.val_y, splits.test_x, splits.test_y, n_classes=4)


def test_restore_best_ends_on_the_best_validation_epoch(splits):
    data = memorising(splits)

    def train(epochs: int, **train):
        return train_model(SMALL, TrainConfig(lr=0.05, label_shuffle=1.0, **train), data,
                           epochs=epochs, batch_size=8, seed=0, keep_weights=True)

    result = train(30, patience=2, restore_best=True)
    val = [h.val_loss for h in result.history]
    best = val.index(min(val)) + 1
    assert result.stopped == "patience" and result.epochs_run == best + 2 < 30
    assert result.restored_epoch == best
    summary = result.summary()
    assert summary["val_loss"] == min(val) and summary["restored_epoch"] == best
    # The restored weights are exactly those of a run stopped after the best epoch.
    stopped_there = train(best)
    for key, value in stopped_there.final_state.items():
        assert torch.equal(result.final_state[key], value), key
    assert result.test_acc == stopped_there.test_acc


def test_patience_without_restore_ends_on_the_last_weights(splits):
    result = train_model(SMALL, TrainConfig(lr=0.05, label_shuffle=1.0, patience=2),
                         memorising(splits), epochs=30, batch_size=8, seed=0)
    assert result.stopped == "patience" and result.restored_epoch is None
    assert result.summary()["val_loss"] == result.history[-1].val_loss


def test_subset_takes_the_first_training_images(splits):
    from hpo.objective import subset

    small = subset(splits, 100)
    assert torch.equal(small.train_x, splits.train_x[:100]) and len(small.train_y) == 100
    assert small.val_x is splits.val_x and small.test_y is splits.test_y
    assert subset(splits, 0) is splits and subset(splits, 10_000) is splits


def test_log_every_records_a_point_per_window_across_epochs_and_changes_nothing():
    from hpo.nn import data, train
    from hpo.nn.models import ModelConfig

    splits = data.load("digits", train_subset=300)
    n_train = len(splits.train_y)
    logged = train.train_model(ModelConfig(family="mlp"), train.TrainConfig(log_every=3),
                               splits, epochs=2, batch_size=32, seed=0)
    plain = train.train_model(ModelConfig(family="mlp"), train.TrainConfig(), splits,
                              epochs=2, batch_size=32, seed=0)
    steps_per_epoch = -(-n_train // 32)
    total = 2 * steps_per_epoch
    assert logged.steps["step"] == list(range(3, total + 1, 3))  # windows span the epochs
    assert len(logged.steps["loss"]) == len(logged.steps["acc"]) == total // 3
    assert all(0 <= a <= 100 for a in logged.steps["acc"])
    assert logged.summary()["steps"] == logged.steps
    assert "steps" not in plain.summary()
    assert [h.train_loss for h in logged.history] == [h.train_loss for h in plain.history]


@pytest.mark.parametrize("optimizer", ["momentum", "nesterov"])
def test_dampened_momentum_is_the_ema_velocity(optimizer):
    """momentum_form = dampened steps by v = m v + (1 - m) g from v = 0 (Nesterov: g + m v),
    written out by hand here for three steps of a quadratic."""
    from hpo.nn.train import make_optimizer

    m, lr = 0.9, 0.1
    weight = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = make_optimizer([weight], TrainConfig(optimizer=optimizer, lr=lr, momentum=m,
                                               momentum_form="dampened"))
    by_hand, velocity = torch.tensor([1.0, -2.0]), torch.zeros(2)
    for _ in range(3):
        opt.zero_grad()
        (weight ** 2).sum().backward()
        opt.step()
        grad = 2 * by_hand
        velocity = m * velocity + (1 - m) * grad
        by_hand = by_hand - lr * ((1 - m) * grad + m * velocity if optimizer == "nesterov"
                                  else velocity)
        assert torch.allclose(weight.detach(), by_hand, atol=1e-6)
    assert by_hand.tolist() != [1.0, -2.0]
