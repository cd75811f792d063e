"""Trials of a stored study as a pandas DataFrame: the one source of every table and figure."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hpo import listvalues
from hpo.errors import HpoError, StoreError
from hpo.schema import FRAME_METRICS, SPEC_ATTR, config_label, ranked
from hpo.spec import Study, from_dict
from hpo.store.fetch import TrialRow, fetch_trials, unique_runs  # noqa: F401

if TYPE_CHECKING:
    import optuna
    import pandas as pd
    from optuna.trial import FrozenTrial

METRICS = FRAME_METRICS  # the record's columns of a trials frame


def study_spec(study_obj: optuna.Study) -> Study:
    """The study file a stored study was run with (hpo stores it with the study)."""
    data = study_obj.user_attrs.get(SPEC_ATTR)
    if data is None:
        raise StoreError(
            f"study {study_obj.study_name!r} was not created by hpo (no hpo.spec attribute); "
            "hpo can only report studies it ran"
        )
    return from_dict(data, f"study {study_obj.study_name!r}")


def current_spec(study_obj: optuna.Study, stored: Study) -> Study:
    """The study file the trials were run from, as it is now (with the run's overrides): its
    question, claims and references are what the report says. The keys that define the runs
    must still agree with the trials; if they do not, one line says which and how to fix it.

    Trials stored by an hpo that did not record their source, or whose study file is no longer
    where the run found it, are reported with the study file stored with them."""
    import json

    from hpo import spec
    from hpo.schema import SOURCE_ATTR

    source = study_obj.user_attrs.get(SOURCE_ATTR)
    if not source:
        return stored
    try:
        path = spec.find_study_file(source["study"])
    except HpoError:
        return stored
    current = spec.load(str(path), source.get("overrides", []))
    if current.name != stored.name:  # a run under --name keeps that name in its overrides
        return stored
    diffs = spec.identity_diff(json.loads(json.dumps(stored.identity())),
                               json.loads(json.dumps(current.identity())))
    if diffs:
        raise HpoError(
            f"study {study_obj.study_name!r}: its trials were run with other settings than "
            f"{path} now gives ({'; '.join(diffs[:4])}); revert the study file, or run the "
            f"study again under its new settings (`hpo run --study {source['study']} --name "
            "NEW`, or delete its trials and run `hpo campaign`)")
    return current


def trials_frame(study_obj: optuna.Study, study: Study | None = None,
                 trials: list[FrozenTrial] | list[TrialRow] | None = None) -> pd.DataFrame:
    """One row per trial, every state: number, state, the varied keys, seed and the record.

    ``trials`` (FrozenTrials already fetched) saves a second read of a large store.
    """
    import pandas as pd

    study = study or study_spec(study_obj)
    by_key = {p.key: p for p in study.space}
    rows = []
    fetched = trials if trials is not None else study_obj.get_trials(deepcopy=False)
    for t in unique_runs(fetched, study.name):
        params = t.params or t.system_attrs.get("fixed_params", {})
        row: dict[str, Any] = {"number": t.number, "state": t.state.name}
        for key in by_key:
            value = params.get(key)  # a list: its label, hashable, for grouping
            row[key] = (listvalues.label(listvalues.decode(by_key[key], value))
                        if value is not None else None)
        row["seed"] = t.user_attrs.get("seed")
        for metric in METRICS:
            row[metric] = t.user_attrs.get(metric)
        row["history"] = t.user_attrs.get("history", [])
        row["flatness"] = t.user_attrs.get("flatness")
        row["n_classes"] = t.user_attrs.get("n_classes")  # an image folder's, as read
        row["value"] = t.value if t.values else None
        row["datetime_start"] = t.datetime_start
        row["datetime_complete"] = t.datetime_complete
        rows.append(row)
    columns = ["number", "state", *by_key, "seed", *METRICS, "history", "flatness", "n_classes",
               "value",
               "datetime_start", "datetime_complete"]
    return pd.DataFrame(rows, columns=columns)


def varied_keys(study: Study) -> list[str]:
    return [p.key for p in study.space]


def config_summary(frame: pd.DataFrame, keys: list[str], metric: str = "test_acc"
                   ) -> pd.DataFrame:
    """Completed trials grouped by configuration: n, mean and std of ``metric``."""
    done = frame[frame["state"] == "COMPLETE"]
    if not keys:
        done = done.assign(configuration="base")
        keys = ["configuration"]
    grouped = done.groupby(keys, dropna=False, sort=False)[metric]
    return grouped.agg(n="count", mean="mean", std="std").reset_index()


def rank_summary(summary: pd.DataFrame, metric: str) -> pd.DataFrame:
    """``config_summary``'s rows best first by mean ``metric``: the rule `hpo report` ranks
    by (schema.ranked)."""
    return ranked(summary, "mean", metric)


def format_summary(summary: pd.DataFrame, keys: list[str], metric: str = "test_acc") -> str:
    """Plain text, one configuration a line: what `hpo run` prints when it ends."""
    lines = []
    for _, row in summary.iterrows():
        label = config_label(keys, [row[k] for k in keys])
        # One run has no spread: "± 0.00" would claim a measured zero.
        spread = f" ± {row['std']:5.2f}" if row["n"] >= 2 else " " * 8
        lines.append(f"{label:<48} {metric} {row['mean']:6.2f}{spread}  (n={int(row['n'])})")
    return "\n".join(lines)
