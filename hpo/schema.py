"""The trial record: what hpo stores with a study and each trial, the trial states, the metric
names, how a configuration is labelled and which one ranks first.

Results (``hpo.records``), the report (``hpo.reporting``), ``hpo show``/``list``/``export``
(``hpo.inspection``) and the dashboard code (``hpo.dashboard``) read these names here; the
stored format itself (Optuna user attributes) is unchanged by them. Pure Python: no pandas,
no torch, no Optuna.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, TypeAlias

from hpo.listvalues import label

if TYPE_CHECKING:
    import pandas as pd

# A value as a study file (TOML) or a stored attribute (JSON) spells it: a key's setting, a
# parameter's choice, a user attribute.
JSON: TypeAlias = "None | bool | int | float | str | list[JSON] | dict[str, JSON]"

# ---------------------------------------------------------------------------------------------
# Stored keys

# Study user attributes written when hpo creates (or resumes) a study.
SPEC_ATTR = "hpo.spec"  # the study file, as Study.to_dict (spec.from_dict reads it back)
IDENTITY_ATTR = "hpo.identity"  # what a resume must not change
COMMAND_ATTR = "hpo.command"  # the command that ran it last (the report's "Reproduce")
VERSIONS_ATTR = "hpo.versions"  # {"hpo", "torch", "optuna", "python", ...}: what created it
GIT_COMMIT_ATTR = "hpo.git_commit"  # the checkout's commit then (None outside a checkout)
DATASET_ATTR = "hpo.dataset"  # the dataset it ran on
DEVICE_ATTR = "hpo.device"  # the device it ran on
# The study file the trials were run from, as the command named it (a shipped name or a path),
# and the overrides given (``--set`` and the shortcuts, as ``key=value``): `hpo report` renders
# from that file as it is now, after checking that the keys which define the runs still agree.
SOURCE_ATTR = "hpo.source"
# Per running trial, a system attribute: the time of its worker's last heartbeat (storages
# without Optuna's own heartbeats: the journal file), so a dead worker's trial is told apart.
HEARTBEAT_ATTR = "hpo.heartbeat"
# Per trial: what ran it (hpo version and commit, library versions, device, threads, the
# study file's hash), so a trials file read on another machine says where each run came from.
PROVENANCE_ATTR = "provenance"
# The trials behind a committed report: an Optuna journal file in the report's own folder.
TRIALS_FILE = "trials.journal"
# Seeds until decided (hpo.decide): per-cell seed targets above repeats, one record per look,
# and why the seeds stopped.
TARGETS_ATTR = "hpo.target_repeats"
LOOKS_ATTR = "hpo.looks"
END_ATTR = "hpo.until_decided_end"
# Per-trial user attributes written by every trial (the report reads exactly these), and the
# two that place it in the grid: ``cell`` (the configuration as JSON, space.cell_key) and seed.
RECORD_KEYS = (
    "seed", "n_params", "train_loss", "train_acc", "val_loss", "val_acc", "test_loss",
    "test_acc", "epochs_run", "diverged", "stopped", "wall_time", "history",
    "n_trainable", "peak_rss_mb", "cpu_time", "restored_epoch", "n_classes",
)
CELL_ATTR = "cell"
# train.log_every: {"step": [...], "loss": [...], "acc": [...]}, one point per window.
STEPS_ATTR = "steps"
SEED_ATTR = "seed"
# analysis = "flatness": {"alpha", "val_loss", "val_err", "train_loss", "train_err"} (lists).
FLATNESS_ATTR = "flatness"
# The record's columns in a trials frame (records.trials_frame), in that order.
FRAME_METRICS = (
    "train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc",
    "wall_time", "n_params", "epochs_run", "diverged", "stopped",
)

# ---------------------------------------------------------------------------------------------
# States

STATES = ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")
DONE_STATES = ("COMPLETE", "PRUNED")
PENDING_STATES = ("RUNNING", "WAITING")
# A report's per-configuration count of each state.
STATE_COLUMNS = {"COMPLETE": "n", "PRUNED": "pruned", "FAIL": "failed", "RUNNING": "running",
                 "WAITING": "waiting"}

# ---------------------------------------------------------------------------------------------
# Metrics

# What a study may optimise and rank by (the ``metric`` key).
METRICS = ("val_acc", "val_loss", "test_acc", "test_loss", "train_acc", "train_loss")
# Summarised per configuration (mean, std, 95% CI), in table order. Accuracies are percentages.
STAT_METRICS = ("train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc")
# The columns `hpo show` prints per trial.
SHOW_METRICS = ("val_acc", "test_acc", "test_loss")


# What else a claim may compare where less is better (seconds, epochs, sharpness).
LOWER_IS_BETTER = ("wall_time", "cpu_time", "epoch_seconds", "epochs_run", "epochs_to_target",
                   "sharpness", "relative_sharpness", "late_loss_fall", "val_loss_rise",
                   "val_acc_drop")


# Positive measures that vary by factors between seeds: a `better` claim on them compares the
# ratio of geometric means (a test on the logarithms), not the difference of means.
RATIO_METRICS = ("sharpness", "relative_sharpness")


# What a run costs, whether or not its network trained: a claim on these keeps every reading.
COST_METRICS = ("wall_time", "cpu_time", "epoch_seconds", "cpu_epoch_seconds", "peak_rss_mb",
                "n_params", "n_trainable")


def lower_is_better(metric: str) -> bool:
    """Losses, times, epochs and sharpness are better low; accuracies high."""
    return metric.endswith("_loss") or metric in LOWER_IS_BETTER


# ---------------------------------------------------------------------------------------------
# Ranking: one rule for `hpo run`'s closing summary and `hpo report`


def best_position(means: Sequence[float], metric: str) -> int | None:
    """The row whose mean ``metric`` ranks first (the first such on ties); None if no mean
    is finite. `hpo report` marks it best."""
    finite = [(i, float(m)) for i, m in enumerate(means)
              if m is not None and math.isfinite(float(m))]
    if not finite:
        return None
    pick = min if lower_is_better(metric) else max
    return pick(finite, key=lambda im: im[1])[0]


def ranked(table: pd.DataFrame, column: str, metric: str) -> pd.DataFrame:
    """``table`` (a DataFrame) with rows best first by ``column``, the mean of ``metric``:
    ties keep their order, missing means last."""
    return table.sort_values([column], ascending=lower_is_better(metric), kind="stable",
                             na_position="last")


# ---------------------------------------------------------------------------------------------
# Configuration labels


def short_names(keys: Sequence[str]) -> dict[str, str]:
    """Column names for varied keys: the last dotted part unless two keys share it."""
    last = [k.rsplit(".", 1)[-1] for k in keys]
    return {k: (s if last.count(s) == 1 else k) for k, s in zip(keys, last)}


def norm(value: object) -> object:
    """One spelling per value, so trial columns (NaN, 100.0) and grid cells (None, 100) agree."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool) or isinstance(value, str):
        return value
    if isinstance(value, (int, float)) or hasattr(value, "dtype"):
        try:
            return float(value)
        except (TypeError, ValueError):
            return value
    return label(value)  # a list as trials_frame writes it


def config_key(values: Sequence[object]) -> str:
    return "|".join(repr(norm(v)) for v in values)


def format_value(value: object) -> str:
    value = norm(value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def trial_label(params: Mapping[str, object]) -> str:
    """One trial's configuration as `hpo show` and the dashboard's figure titles write it:
    ``dropout_location=before_pool, lr=0.001`` (values as stored), ``base`` for none."""
    return ", ".join(f"{k.split('.')[-1]}={label(v)}" for k, v in params.items()) or "base"


def config_label(keys: Sequence[str], values: Sequence[object]) -> str:
    """``dropout_location=before_pool, lr=0.001``; inactive (conditional) keys are left out."""
    names = short_names(keys)
    parts = [f"{names[k]}={format_value(v)}" for k, v in zip(keys, values) if norm(v) is not None]
    return ", ".join(parts) or "base configuration"
