"""Training one configuration with one seed (plain PyTorch: no Optuna here)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn, optim
from torch.optim import lr_scheduler

from hpo.nn.data import Splits
from hpo.nn.models import ModelConfig, build_model, count_parameters

# 512 keeps activations in cache: 2x the images/s of 2048 for R0's CNN on one CPU thread.
EVAL_BATCH = 512
# Checking for NaN needs a device sync; every N steps keeps the GPU queue full.
DIVERGENCE_CHECK_EVERY = 50
# glibc's mallopt parameters (malloc.h) and the largest mmap threshold it accepts on 64-bit.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_THRESHOLD_MAX = 32 * 1024 * 1024


def keep_freed_memory() -> bool:
    """Make glibc's malloc keep freed activation buffers for reuse; True if it applied.

    By default glibc may serve a block over 128 KiB with a fresh mmap and return it to the
    OS on free, so a training step's activations and gradients are page-faulted in and
    zeroed by the kernel again (PyTorch's CPU tuning guide gives the same reason for
    jemalloc/tcmalloc). Measured on R0's CNN, one CPU thread: 1.9x more steps/s in a loop
    that allocates fresh batches; in hpo's own loop less (epochs 5.2 s -> 4.4-5.0 s together
    with the dropout-layout fix), since glibc's dynamic threshold already reused some blocks.
    Blocks up to 32 MiB (an eval batch of 512 through a 16-channel 28x28 layer is 26 MB) now
    stay in the heap; peak memory is unchanged, the process just keeps it. A no-op where libc
    is not glibc.
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX)) and bool(
        mallopt(_M_TRIM_THRESHOLD, 8 * _MMAP_THRESHOLD_MAX))


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB.

    Linux's /proc/self/status VmHWM belongs to the running program alone. getrusage's
    ru_maxrss survives exec: a spawned worker starts from its parent's resident size at the
    fork, so it would report the parent's memory as its own.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    import resource
    import sys

    # Elsewhere ru_maxrss: bytes on macOS, KiB on other Unixes.
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024)


@dataclass(frozen=True)
class TrainConfig:
    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9
    momentum_form: str = "pytorch"  # pytorch | dampened (v = m v + (1 - m) g)
    l2: float = 0.0
    schedule: str = "none"
    step_size: int = 5
    gamma: float = 0.1
    patience: int = 0
    loss_threshold: float = 0.0
    label_shuffle: float = 0.0
    precision: str = "fp32"
    loss_reduction: str = "mean"  # mean | sum over the minibatch (R3's numbers fit "sum")
    loss_threshold_on: str = "epoch"  # epoch (its mean loss) | minibatch (R1: any one batch)
    restore_best: bool = False  # with patience: end on the best validation epoch's weights
    log_every: int = 0  # minibatches per point of the per-step curve (0: none)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> TrainConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k[6:]: v for k, v in config.items() if k[:6] == "train." and k[6:] in names})


@dataclass
class EpochStats:
    epoch: int
    train_loss: float | None
    train_acc: float
    val_loss: float | None
    val_acc: float
    lr: float
    seconds: float


@dataclass
class Result:
    """What one training run produced. Accuracies are percentages; non-finite losses are None."""

    seed: int
    n_params: int
    n_trainable: int = 0  # parameters the optimizer updates (fewer than n_params when frozen)
    n_classes: int = 0  # the data's classes: an image folder's are known only once it is read
    history: list[EpochStats] = field(default_factory=list)
    # Per-step curve (log_every): the step count at the end of each window of minibatches, and
    # the window's mean training loss and accuracy (%).
    steps: dict[str, list[float]] = field(default_factory=lambda: {"step": [], "loss": [],
                                                                   "acc": []})
    test_loss: float | None = None
    test_acc: float = 0.0
    epochs_run: int = 0
    diverged: bool = False
    stopped: str = "completed"  # completed | diverged | patience | loss_threshold | pruned
    wall_time: float = 0.0
    cpu_time: float = 0.0  # process CPU seconds, all threads (time.process_time)
    restored_epoch: int | None = None  # restore_best: the epoch whose weights were tested
    initial_state: dict | None = None
    final_state: dict | None = None

    def last(self, key: str) -> float | None:
        """``key`` of the epoch whose weights the run ended with (the restored one, if any)."""
        if not self.history:
            return None
        epoch = self.restored_epoch or len(self.history)
        return getattr(self.history[epoch - 1], key)

    def summary(self) -> dict[str, Any]:
        """The per-trial record stored with the trial (JSON-ready)."""
        return {
            "seed": self.seed,
            "n_params": self.n_params,
            "n_trainable": self.n_trainable,
            "n_classes": self.n_classes,
            "train_loss": self.last("train_loss"),
            "train_acc": self.last("train_acc"),
            "val_loss": self.last("val_loss"),
            "val_acc": self.last("val_acc"),
            "test_loss": self.test_loss,
            "test_acc": self.test_acc,
            "epochs_run": self.epochs_run,
            "diverged": self.diverged,
            "stopped": self.stopped,
            "wall_time": self.wall_time,
            "cpu_time": self.cpu_time,
            "restored_epoch": self.restored_epoch,
            "history": [asdict(h) for h in self.history],
            **({"steps": self.steps} if self.steps["step"] else {}),
        }


def finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def make_optimizer(params: Iterable[nn.Parameter], cfg: TrainConfig) -> optim.Optimizer:
    common = {"lr": cfg.lr, "weight_decay": cfg.weight_decay}
    match cfg.optimizer:
        case "sgd":
            return optim.SGD(params, **common)
        case "momentum" | "nesterov" if cfg.momentum_form == "dampened":
            # v = m v + (1 - m) g from a zero start is (1 - m) x PyTorch's v, step for step, so
            # the dampened form is PyTorch's at lr x (1 - m), Nesterov's look-ahead included
            # (torch.optim.SGD refuses nesterov with dampening, so both use this one form).
            common["lr"] = cfg.lr * (1.0 - cfg.momentum)
            return optim.SGD(params, momentum=cfg.momentum,
                             nesterov=cfg.optimizer == "nesterov", **common)
        case "momentum":
            return optim.SGD(params, momentum=cfg.momentum, **common)
        case "nesterov":
            return optim.SGD(params, momentum=cfg.momentum, nesterov=True, **common)
        case "adam":
            return optim.Adam(params, **common)
        case "adamw":
            return optim.AdamW(params, **common)
        case "adamax":
            return optim.Adamax(params, **common)
        case "adadelta":
            return optim.Adadelta(params, **common)
        case "adagrad":
            return optim.Adagrad(params, **common)
        case "rmsprop":
            return optim.RMSprop(params, **common)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}")


def make_scheduler(optimizer: optim.Optimizer, cfg: TrainConfig, epochs: int
                   ) -> lr_scheduler.LRScheduler | lr_scheduler.ReduceLROnPlateau | None:
    match cfg.schedule:
        case "none":
            return None
        case "step":
            return lr_scheduler.StepLR(optimizer, step_size=cfg.step_size, gamma=cfg.gamma)
        case "cosine":
            return lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
        case "plateau":
            return lr_scheduler.ReduceLROnPlateau(optimizer, factor=cfg.gamma, patience=2)
    raise ValueError(f"unknown schedule {cfg.schedule!r}")


def evaluate(model: nn.Module, x: Tensor, y: Tensor,
             precision: str = "fp32") -> tuple[float, float]:
    """Mean cross-entropy and accuracy (%) over a whole split, in large batches."""
    model.eval()
    loss_sum = torch.zeros((), device=x.device)
    correct = torch.zeros((), device=x.device, dtype=torch.int64)
    with torch.inference_mode(), _autocast(x.device, precision):
        for start in range(0, len(y), EVAL_BATCH):
            logits = model(to_layout(x[start:start + EVAL_BATCH], model)).float()
            yb = y[start:start + EVAL_BATCH]
            loss_sum += F.cross_entropy(logits, yb, reduction="sum")
            correct += (logits.argmax(dim=1) == yb).sum()
    n = max(len(y), 1)
    return loss_sum.item() / n, 100.0 * correct.item() / n


def channels_last(model: nn.Module) -> bool:
    """Whether ``model`` was converted to channels_last by train_model (its batches must be)."""
    return getattr(model, "hpo_channels_last", False)


def to_layout(x: Tensor, model: nn.Module) -> Tensor:
    """A 4-d batch in the model's memory format."""
    if x.dim() == 4 and channels_last(model):
        return x.contiguous(memory_format=torch.channels_last)
    return x


def _autocast(device: torch.device, precision: str) -> torch.autocast:
    return torch.autocast(
        device_type=device.type, dtype=torch.bfloat16, enabled=precision == "bf16"
    )


def shuffled_labels(y: Tensor, fraction: float, seed: int) -> Tensor:
    """Permute the labels of a random ``fraction`` of the examples among themselves."""
    if fraction <= 0:
        return y
    generator = torch.Generator().manual_seed(seed + 7919)
    chosen = torch.randperm(len(y), generator=generator)[: round(len(y) * fraction)]
    permuted = chosen[torch.randperm(len(chosen), generator=generator)]
    y = y.clone()
    y[chosen.to(y.device)] = y[permuted.to(y.device)]
    return y


def train_model(
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    data: Splits,
    *,
    epochs: int,
    batch_size: int | str,
    seed: int,
    on_epoch: Callable[[EpochStats], bool] | None = None,
    keep_weights: bool = False,
) -> Result:
    """Train from ``seed`` and evaluate; ``on_epoch`` returning True stops training (pruning).

    A non-finite training loss ends training early and is recorded as ``diverged``: the run
    still counts, with whatever accuracy the broken weights reach (often chance level). With
    ``restore_best`` and patience the run ends on its best validation epoch's weights
    (``restored_epoch``); its summary's train/val numbers are that epoch's.
    """
    started, cpu_started = time.perf_counter(), time.process_time()
    torch.manual_seed(seed)
    model = _placed_model(model_cfg, data)
    result = Result(seed=seed, n_params=count_parameters(model),
                    n_trainable=count_parameters(model, trainable_only=True),
                    n_classes=data.n_classes)
    if keep_weights:
        result.initial_state = _state_copy(model)
    best = _train_epochs(model, train_cfg, data, result, epochs=epochs, batch_size=batch_size,
                         seed=seed, on_epoch=on_epoch)
    if best.state is not None and result.stopped != "pruned":
        # R3's early stopping returns the parameters of the best validation epoch.
        model.load_state_dict(best.state)
        result.restored_epoch = best.epoch
    test_loss, result.test_acc = evaluate(model, data.test_x, data.test_y, train_cfg.precision)
    result.test_loss = finite_or_none(test_loss)
    if keep_weights:
        result.final_state = _state_copy(model)
    result.wall_time = time.perf_counter() - started
    result.cpu_time = time.process_time() - cpu_started
    return result


def _train_epochs(model: nn.Module, train_cfg: TrainConfig, data: Splits, result: Result, *,
                  epochs: int, batch_size: int | str, seed: int,
                  on_epoch: Callable[[EpochStats], bool] | None) -> _Best:
    """train_model's epochs: each one's stats into ``result.history`` (with ``epochs_run``,
    and ``stopped``/``diverged`` when one ends training); the best validation epoch seen."""
    device = data.train_x.device
    optimizer = make_optimizer([p for p in model.parameters() if p.requires_grad], train_cfg)
    scheduler = make_scheduler(optimizer, train_cfg, epochs)
    generator = torch.Generator(device=device).manual_seed(seed)
    x, y = data.train_x, shuffled_labels(data.train_y, train_cfg.label_shuffle, seed)
    n = len(y)
    bs = n if batch_size == "full" else min(int(batch_size), n)
    best = _Best(keep=train_cfg.restore_best and train_cfg.patience > 0)
    # R1's rule: stop the moment one minibatch's loss is below the threshold. Reading the loss
    # syncs with the device at every step, so only this option pays for it.
    batch_threshold = train_cfg.loss_threshold if train_cfg.loss_threshold_on == "minibatch" \
        else 0.0
    window = _Window(train_cfg.log_every, result.steps)  # spans epochs: steps count from 1

    for epoch in range(1, epochs + 1):
        epoch_start = time.perf_counter()
        order = torch.randperm(n, device=device, generator=generator)
        train_loss, train_acc, below_threshold = _train_epoch(
            model, optimizer, x, y, order, bs, train_cfg, batch_threshold, window)
        val_loss, val_acc = evaluate(model, data.val_x, data.val_y, train_cfg.precision)
        stats = EpochStats(
            epoch=epoch,
            train_loss=finite_or_none(train_loss),
            train_acc=train_acc,
            val_loss=finite_or_none(val_loss),
            val_acc=val_acc,
            lr=optimizer.param_groups[0]["lr"],
            seconds=time.perf_counter() - epoch_start,
        )
        result.history.append(stats)
        result.epochs_run = epoch
        improved = train_cfg.patience > 0 and best.update(epoch, val_loss, model)
        stop = _stop_reason(stats, train_loss, train_cfg, on_epoch,
                            below_threshold=below_threshold, batch_threshold=batch_threshold,
                            waited=0 if improved else epoch - best.epoch)
        if stop is not None:
            result.stopped = stop
            result.diverged = stop == "diverged"
            break
        if scheduler is not None:
            if train_cfg.schedule == "plateau":
                scheduler.step(val_loss)
            else:
                scheduler.step()
    return best


def _placed_model(model_cfg: ModelConfig, data: Splits) -> nn.Module:
    """The network for ``data``, on its device (channels-last convolutions on the CPU)."""
    device = data.train_x.device
    model = build_model(model_cfg, data.shape, data.n_classes).to(device)
    if device.type == "cpu" and model_cfg.family != "mlp":
        # oneDNN's NHWC convolutions: 1.2-1.5x more images/s for R0's CNN on one CPU thread
        # (reports/bench); the batch is converted to match in to_layout.
        model = model.to(memory_format=torch.channels_last)
        model.hpo_channels_last = True
    return model


def _train_epoch(model: nn.Module, optimizer: optim.Optimizer, x: Tensor, y: Tensor,
                 order: Tensor, bs: int, train_cfg: TrainConfig, batch_threshold: float,
                 window: _Window | None = None) -> tuple[float, float, bool]:
    """One pass over the minibatches of ``order``: (train loss, train accuracy, whether a
    minibatch fell below ``batch_threshold``), over the examples it saw: all of them unless it
    stopped mid-epoch (that threshold, or a non-finite loss). With ``train_cfg.log_every``,
    each window of that many minibatches appends its mean loss and accuracy to the run's steps."""
    window = window or _Window(0, None)
    device = x.device
    model.train()
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.int64)
    seen, below_threshold = 0, False
    for step, start in enumerate(range(0, len(order), bs)):
        idx = order[start:start + bs]
        xb, yb = to_layout(x[idx], model), y[idx]
        with _autocast(device, train_cfg.precision):
            logits = model(xb)
            loss = batch_loss(logits.float(), yb, train_cfg.loss_reduction)
        objective = loss
        if train_cfg.l2 > 0:
            objective = loss + train_cfg.l2 * sum((p * p).sum() for p in model.parameters())
        optimizer.zero_grad(set_to_none=True)
        objective.backward()
        optimizer.step()
        # Accumulate on the device: no host sync per step. Recorded losses are per-example
        # means whatever the reduction, so runs with either reduction compare.
        summed = loss.detach() * (1 if train_cfg.loss_reduction == "sum" else len(idx))
        loss_sum += summed
        hits = (logits.detach().argmax(dim=1) == yb).sum()
        correct += hits
        seen += len(idx)
        window.add(summed, hits, len(idx))
        if batch_threshold and summed.item() / len(idx) < batch_threshold:
            below_threshold = True
            break
        if step % DIVERGENCE_CHECK_EVERY == DIVERGENCE_CHECK_EVERY - 1:
            if not torch.isfinite(loss_sum):
                break
    train_loss = loss_sum.item() / max(seen, 1)
    train_acc = 100.0 * correct.item() / max(seen, 1)
    return train_loss, train_acc, below_threshold


def _stop_reason(stats: EpochStats, train_loss: float, train_cfg: TrainConfig,
                 on_epoch: Callable[[EpochStats], bool] | None, *, below_threshold: bool,
                 batch_threshold: float, waited: int) -> str | None:
    """Why training ends after this epoch (a STOP_REASONS value), or None to go on.

    ``waited``: epochs since the best validation loss (0 when this epoch improved it)."""
    if stats.train_loss is None:
        return "diverged"
    if on_epoch is not None and on_epoch(stats):
        return "pruned"
    if below_threshold or (train_cfg.loss_threshold and batch_threshold == 0.0
                           and train_loss < train_cfg.loss_threshold):
        return "loss_threshold"
    if train_cfg.patience and waited >= train_cfg.patience:
        return "patience"
    return None


def batch_loss(logits: Tensor, y: Tensor, reduction: str = "mean") -> Tensor:
    """Cross-entropy of one minibatch, averaged (``mean``) or summed (``sum``) over it.

    Summed, the gradient is batch size x the mean's: at a fixed lr a bigger batch takes a
    proportionally bigger step, which is what R3's batch-size-invariant tables fit.
    """
    return F.cross_entropy(logits, y, reduction=reduction)


class _Window:
    """The per-step curve's current window: sums on the device, read (one host sync) only when
    ``every`` minibatches are in; steps count from the run's start, across epochs."""

    def __init__(self, every: int, steps: dict[str, list[float]] | None) -> None:
        self.every, self.steps = every if steps is not None else 0, steps
        self.step = 0
        self.loss, self.hits, self.seen, self.count = 0.0, 0, 0, 0

    def add(self, summed: Tensor, hits: Tensor, n: int) -> None:
        if not self.every:
            return
        self.step += 1
        self.loss, self.hits = self.loss + summed, self.hits + hits
        self.seen, self.count = self.seen + n, self.count + 1
        if self.count == self.every:
            self.steps["step"].append(self.step)
            self.steps["loss"].append(round(float(self.loss) / self.seen, 6))
            self.steps["acc"].append(round(100.0 * float(self.hits) / self.seen, 4))
            self.loss, self.hits, self.seen, self.count = 0.0, 0, 0, 0


class _Best:
    """The lowest validation loss so far, its epoch and (``keep``) a copy of its weights."""

    def __init__(self, keep: bool) -> None:
        self.keep, self.loss, self.epoch, self.state = keep, math.inf, 0, None

    def update(self, epoch: int, val_loss: float, model: nn.Module) -> bool:
        if not val_loss < self.loss:  # NaN never improves
            return False
        self.loss, self.epoch = val_loss, epoch
        if self.keep:
            self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        return True


def _state_copy(model: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
