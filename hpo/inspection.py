"""Stored studies as plain rows: what `hpo list`, `show` and `export` print (work, not printing).

Everything here works on any Optuna study; studies made by hpo get their configuration decoded
from the stored spec and their metrics from the per-trial record.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from hpo.schema import JSON, SHOW_METRICS, SPEC_ATTR, STATES, trial_label  # noqa: F401  (inspection.SHOW_METRICS)

if TYPE_CHECKING:
    import optuna
    import pandas as pd
    from optuna.trial import FrozenTrial


def metric_name(study_obj: optuna.Study) -> str:
    names = study_obj.metric_names
    return names[0] if names and names[0] else "value"


def study_rows(storage: optuna.storages.BaseStorage) -> list[dict[str, Any]]:
    """One dict per study in ``storage``: trials by state, best value, last activity."""
    import optuna

    rows = []
    for frozen in storage.get_all_studies():
        study_obj = optuna.load_study(study_name=frozen.study_name, storage=storage)
        trials = study_obj.get_trials(deepcopy=False)
        states = {s: 0 for s in STATES}
        for t in trials:
            states[t.state.name] = states.get(t.state.name, 0) + 1
        best_value = best_trial = None
        if len(frozen.directions) == 1:
            done = [t for t in trials if t.state.name == "COMPLETE" and _finite(t.value)]
            if done:
                pick = min if frozen.directions[0].name == "MINIMIZE" else max
                best = pick(done, key=lambda t: t.value)
                best_value, best_trial = best.value, best.number
        stamps = [s for t in trials for s in (t.datetime_start, t.datetime_complete) if s]
        rows.append({
            "name": frozen.study_name,
            "direction": "/".join(d.name.lower() for d in frozen.directions),
            "metric": metric_name(study_obj),
            "trials": len(trials),
            "states": states,
            "best_value": best_value,
            "best_trial": best_trial,
            "last_activity": _iso(max(stamps)) if stamps else None,
        })
    return rows


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _decoder(study_obj: optuna.Study) -> Callable[[Mapping[str, object]], dict[str, object]]:
    """params -> {key: value} in the study file's terms (hpo studies), else Optuna's own."""
    if SPEC_ATTR not in study_obj.user_attrs:
        return lambda params: dict(params)
    from hpo import listvalues
    from hpo.records import study_spec

    by_key = {p.key: p for p in study_spec(study_obj).space}
    return lambda params: {
        k: listvalues.decode(by_key[k], v) if k in by_key else v for k, v in params.items()
    }


def trial_params(t: FrozenTrial) -> dict[str, Any]:
    # Queued (WAITING) trials have no params yet, only the fixed ones they were enqueued with.
    return dict(t.params or t.system_attrs.get("fixed_params", {}))


def trial_rows(study_obj: optuna.Study) -> list[dict[str, Any]]:
    """One dict per trial: number, state, configuration, seed, value and the hpo metrics."""
    decode = _decoder(study_obj)
    rows = []
    for t in _unique_trials(study_obj):
        attrs = t.user_attrs
        row: dict[str, Any] = {
            "number": t.number,
            "state": t.state.name,
            "params": decode(trial_params(t)),
            "seed": attrs.get("seed"),
            "value": t.value if t.values and len(t.values) == 1 else t.values,
        }
        for key in ("val_acc", "test_acc", "test_loss", "epochs_run", "diverged", "wall_time"):
            row[key] = attrs.get(key)
        row["datetime_start"] = _iso(t.datetime_start)
        row["datetime_complete"] = _iso(t.datetime_complete)
        rows.append(row)
    return rows


def _unique_trials(study_obj: optuna.Study) -> list[FrozenTrial]:
    """Every trial, each (configuration, seed) finished once (see results.unique_runs)."""
    from hpo.records import unique_runs

    return unique_runs(study_obj.get_trials(deepcopy=False), study_obj.study_name)


def _iso(stamp: dt.datetime | None) -> str | None:
    return stamp.isoformat(sep=" ", timespec="seconds") if stamp else None


configuration_label = trial_label  # the schema's label of one trial


# ---------------------------------------------------------------------------------------------
# Export


def export_json(study_obj: optuna.Study, storage_label: str) -> dict[str, Any]:
    """Everything hpo knows about a study: settings, and every trial with its per-epoch record."""
    decode = _decoder(study_obj)
    trials = []
    for t in _unique_trials(study_obj):
        trials.append({
            "number": t.number,
            "state": t.state.name,
            "value": t.value if t.values and len(t.values) == 1 else t.values,
            "params": decode(trial_params(t)),
            "user_attrs": t.user_attrs,
            "intermediate_values": {str(k): v for k, v in sorted(t.intermediate_values.items())},
            "datetime_start": _iso(t.datetime_start),
            "datetime_complete": _iso(t.datetime_complete),
        })
    return jsonable({
        "study": study_obj.study_name,
        "storage": storage_label,
        "directions": [d.name.lower() for d in study_obj.directions],
        "metric_names": study_obj.metric_names,
        "user_attrs": study_obj.user_attrs,
        "trials": trials,
    })


def export_frame(study_obj: optuna.Study) -> pd.DataFrame:
    """One row per trial for CSV (per-epoch history and flatness curve: the JSON export)."""
    if SPEC_ATTR in study_obj.user_attrs:
        from hpo.records import trials_frame

        frame = trials_frame(study_obj).drop(columns=["history", "flatness"])
        for col in ("seed", "n_params", "epochs_run"):  # queued trials' gaps made them floats
            frame[col] = frame[col].astype("Int64")
    else:
        frame = study_obj.trials_dataframe()
    for col in ("datetime_start", "datetime_complete"):
        if col in frame:
            frame[col] = frame[col].map(lambda s: _iso(s) if isinstance(s, dt.datetime) else s)
    return frame


def jsonable(value: object) -> JSON:
    """Strict JSON: non-finite floats become null (a diverged run records ``diverged: true``)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return [jsonable(v) for v in value]
    if isinstance(value, dt.datetime):
        return _iso(value)
    return value


def dumps(value: object) -> str:
    return json.dumps(jsonable(value), indent=2, allow_nan=False)


# ---------------------------------------------------------------------------------------------
# Plain-text tables


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> str:
    """Columns padded to width; indices in ``right`` are right-aligned (numbers)."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    lines = []
    for row in [headers, *rows]:
        cells = [str(c).rjust(w) if i in right else str(c).ljust(w)
                 for i, (c, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def fmt(value: object, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)
