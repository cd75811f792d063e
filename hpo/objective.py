"""The glue between an Optuna trial and a plain-PyTorch training run."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from hpo import space as space_mod
from hpo.nn.data import Splits
from hpo.nn.models import ModelConfig
from hpo.nn.train import EpochStats, Result, TrainConfig, peak_rss_mb, train_model
from hpo.schema import FLATNESS_ATTR, RECORD_KEYS  # noqa: F401
from hpo.spec import Study, check_config

# Which per-epoch number is reported to Optuna (pruning, live curves) for each study metric.
EPOCH_METRIC = {
    "val_acc": "val_acc", "test_acc": "val_acc", "train_acc": "train_acc",
    "val_loss": "val_loss", "test_loss": "val_loss", "train_loss": "train_loss",
}


def objective_value(study: Study, summary: Mapping[str, Any]) -> float:
    """The trial's value; a diverged run's missing loss counts as the worst possible loss."""
    value = summary[study.config["metric"]]
    return float("inf") if value is None else float(value)


def epoch_value(study: Study, stats: EpochStats) -> float:
    value = getattr(stats, EPOCH_METRIC[study.config["metric"]])
    return float("inf") if value is None else float(value)


def run_trial(trial: Any, study: Study, data: Splits) -> Result:
    """Train the trial's configuration with its seed, report per epoch, record the result.

    Returns the result; the caller tells Optuna the final state (complete or pruned).
    """
    params = space_mod.suggest(trial, study.space, study.config)
    config = study.resolve(params)
    check_config(config, study.source)
    seed = int(trial.user_attrs.get("seed", study.config["seed"]))
    trial.set_user_attr("seed", seed)
    trial.set_user_attr("cell", space_mod.cell_key(params))

    def on_epoch(stats: EpochStats) -> bool:
        trial.report(epoch_value(study, stats), stats.epoch)
        return study.config["pruner"] != "none" and trial.should_prune()

    flatness = config["analysis"] == "flatness"
    model_cfg, train_cfg = ModelConfig.from_config(config), TrainConfig.from_config(config)
    if config["train_subset"] != study.config["train_subset"]:
        data = subset(data, config["train_subset"])
    result = train_model(
        model_cfg,
        train_cfg,
        data,
        epochs=config["epochs"],
        batch_size=config["batch_size"],
        seed=seed,
        on_epoch=on_epoch,
        keep_weights=flatness,
    )
    for key, value in result.summary().items():
        trial.set_user_attr(key, value)
    # What one worker needed so far (the dataset, the model, torch itself): `hpo bench` reports
    # its maximum, and a user sizing --jobs can read it per trial.
    trial.set_user_attr("peak_rss_mb", round(peak_rss_mb(), 1))
    if flatness and result.stopped != "pruned":
        trial.set_user_attr(FLATNESS_ATTR, flatness_record(model_cfg, train_cfg, data, result))
    return result


def subset(data: Splits, n: int) -> Splits:
    """The first ``n`` training images of ``data`` (all for 0 or more than there are).

    For ``train_subset`` as a [space] dimension (R3's training-set size is a reading): the
    worker loaded the study's training split once, and the first n of it are the images
    ``hpo.nn.data.load(train_subset=n)`` picks; only the normalisation differs (the loaded
    split's statistics). Keep the study's own ``train_subset`` at 0 so every size is there.
    """
    if not n or n >= len(data.train_y):
        return data
    return dataclasses.replace(data, train_x=data.train_x[:n], train_y=data.train_y[:n])


def flatness_record(model_cfg: ModelConfig, train_cfg: TrainConfig, data: Splits,
                    result: Result) -> dict[str, Any]:
    """The loss along theta_0 -> theta_final, evaluated in the worker (data already loaded)."""
    from hpo.nn.flatness import flatness_curve
    from hpo.nn.train import shuffled_labels

    train_y = shuffled_labels(data.train_y, train_cfg.label_shuffle, result.seed)
    return flatness_curve(model_cfg, data, result.initial_state, result.final_state,
                          train_y=train_y, precision=train_cfg.precision)
