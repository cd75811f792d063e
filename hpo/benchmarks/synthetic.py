"""Stores filled with made-up trials (no training): for tests and benchmarks of the report.

Trials carry the same user attributes a real trial writes (hpo.objective.RECORD_KEYS), so the
report cannot tell them from real ones.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from hpo import listvalues
from hpo import space as space_mod
from hpo.schema import (
    COMMAND_ATTR,
    DATASET_ATTR,
    DEVICE_ATTR,
    GIT_COMMIT_ATTR,
    IDENTITY_ATTR,
    SPEC_ATTR,
    VERSIONS_ATTR,
)
from hpo.spec import Study

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

STUDY_ATTRS = {
    VERSIONS_ATTR: {"hpo": "0.1.0", "torch": "synthetic", "optuna": "5.0.0",
                     "python": "3.11"},
    GIT_COMMIT_ATTR: None,
    DEVICE_ATTR: "cpu",
}


def create_study(storage: str | optuna.storages.BaseStorage, study: Study,
                 name: str | None = None, command: str = "synthetic") -> optuna.Study:
    """An Optuna study with the attributes `hpo run` gives it (without importing torch)."""
    import optuna

    study_obj = optuna.create_study(study_name=name or study.name, storage=storage,
                                    direction=study.direction)
    attrs = {SPEC_ATTR: study.to_dict(), IDENTITY_ATTR: study.identity(), **STUDY_ATTRS,
             DATASET_ATTR: study.config["dataset"], COMMAND_ATTR: command}
    for key, value in attrs.items():
        study_obj.set_user_attr(key, value)
    return study_obj


def history(epochs: int, final: Mapping[str, float | None], start_acc: float = 10.0,
            seconds: float = 0.5) -> list[dict[str, Any]]:
    """``epochs`` per-epoch dicts climbing linearly to the ``final`` values."""
    out = []
    for epoch in range(1, epochs + 1):
        f = epoch / epochs
        row: dict[str, Any] = {"epoch": epoch, "lr": 1e-3, "seconds": seconds}
        for m in ("train_loss", "val_loss"):
            end = final.get(m)
            row[m] = None if end is None else 2.3 + (end - 2.3) * f
        for m in ("train_acc", "val_acc"):
            row[m] = start_acc + (final[m] - start_acc) * f
        out.append(row)
    return out


def record(seed: int, *, test_acc: float, val_acc: float | None = None,
           train_acc: float | None = None, train_loss: float | None = 0.5,
           val_loss: float | None = 0.6, test_loss: float | None = 0.6, epochs: int = 10,
           epochs_run: int | None = None, wall_time: float = 5.0, n_params: int = 910,
           diverged: bool = False, stopped: str | None = None) -> dict[str, Any]:
    """The user attributes of one finished trial."""
    val_acc = test_acc if val_acc is None else val_acc
    train_acc = test_acc if train_acc is None else train_acc
    run = epochs if epochs_run is None else epochs_run
    final = {"train_loss": train_loss, "val_loss": val_loss, "train_acc": train_acc,
             "val_acc": val_acc}
    return {
        "seed": seed, "n_params": n_params, "train_loss": train_loss, "train_acc": train_acc,
        "val_loss": val_loss, "val_acc": val_acc, "test_loss": test_loss,
        "test_acc": test_acc, "epochs_run": run, "diverged": diverged,
        "stopped": stopped or ("diverged" if diverged else "completed"),
        "wall_time": wall_time, "history": history(run, final), "peak_rss_mb": 800.0,
    }


def trial(study: Study, params: Mapping[str, Any], attrs: Mapping[str, Any],
          state: str = "COMPLETE") -> FrozenTrial:
    """A FrozenTrial of ``study`` with ``params`` (decoded values), ready for add_trials."""
    import optuna
    from optuna.trial import TrialState

    by_key = {p.key: p for p in study.space}
    encoded = listvalues.encoded(params)
    dists = {k: space_mod.distribution(by_key[k]) for k in params}
    attrs = dict(attrs)
    attrs.setdefault("cell", space_mod.cell_key(params))
    metric = study.config["metric"]
    value = attrs.get(metric)
    finished = state in ("COMPLETE",)
    intermediate = {}
    for h in attrs.get("history", []):
        v = h.get("val_acc" if metric.endswith("acc") else "val_loss")
        if v is not None:
            intermediate[h["epoch"]] = v
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return optuna.trial.create_trial(
            state=TrialState[state],
            value=(math.inf if value is None else float(value)) if finished else None,
            params=encoded, distributions=dists, user_attrs=attrs,
            system_attrs={"fixed_params": encoded},
            intermediate_values=intermediate if state in ("COMPLETE", "PRUNED") else None,
        )


def add(study_obj: optuna.Study, trials: Sequence[FrozenTrial]) -> None:
    study_obj.add_trials(list(trials))
