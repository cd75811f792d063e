"""Per-configuration statistics: the numbers every table, figure and file of a report shows.

Everything here is pure: trials frame in, DataFrame out. Only COMPLETE trials enter a mean;
pruned, failed, running and waiting trials are counted per configuration and for the study.
Diverged runs are COMPLETE trials (their accuracy is what the broken weights reach) and count.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from hpo.errors import HpoError
from hpo.reporting.chance import (  # noqa: F401  (re-exported: readers of the table)
    REDUCTION,
    at_chance,
    chance_acc,
    chance_config,
    recorded_classes,
)
from hpo.reporting.stats import t_quantile
from hpo.schema import (  # noqa: F401  (re-exported: the report's modules read them here)
    COMMAND_ATTR,
    STAT_METRICS,
    STATE_COLUMNS,
    STATES,
    STEPS_ATTR,
    best_position,
    config_key,
    config_label,
    format_value,
    lower_is_better,
    ranked,
    short_names,
)
from hpo.schema import norm as _norm
from hpo.spec import Study

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import optuna
    import pandas as pd

# Per-run numbers as a pandas Series or a numpy array (at_chance answers in the same kind).
Runs = TypeVar("Runs", "pd.Series", "np.ndarray")
CONFIDENCE = 0.95
ALPHA = 0.05  # a p-value below this marks a difference from the best row as significant


@dataclass
class Summary:
    """A study's trials and its per-configuration table, with what is needed to read them."""

    name: str
    study: Study
    frame: pd.DataFrame  # one row per trial, every state (hpo.records.trials_frame)
    table: pd.DataFrame  # one row per configuration, numeric (see config_table)
    keys: list[str]  # varied keys, in space order
    metric: str  # the ranking metric (default: the study's metric)
    counts: dict[str, int]  # trials per state, over the whole study
    attrs: Mapping[str, Any] = field(default_factory=dict)  # study user attrs (hpo.*)

    @property
    def maximize(self) -> bool:
        return not lower_is_better(self.metric)

    @property
    def min_seeds(self) -> int:
        """Runs a configuration needs before a comparison of it is judged (claims and tables)."""
        return int(self.study.config.get("min_seeds", 3))

    @property
    def best(self) -> pd.Series | None:
        rows = self.table[self.table["best"]]
        return None if rows.empty else rows.iloc[0]

    def records(self) -> list[dict]:
        """``table``'s rows as dicts, built once per table: a report's claims and readings look
        rows up hundreds of times, and converting the table each time was a third of a
        report's render time. Read-only: a caller that needs to change a row copies it."""
        cached = self.__dict__.get("_records")
        if cached is not None and cached[0] is self.table:
            return cached[1]
        rows = self.table.to_dict("records")
        self.__dict__["_records"] = (self.table, rows)
        return rows

    def complete_runs(self) -> dict[str, list[dict]]:
        """Each configuration's complete trials (records of ``frame``), in seed order, by
        ``config_key`` of its values of ``keys``. Built once per frame: a report's claims and
        readings ask for hundreds of sides, and converting the frame each time was most of a
        report's claim time."""
        cached = self.__dict__.get("_complete_runs")
        if cached is not None and cached[0] is self.frame and cached[1] == self.keys:
            return cached[2]
        by_config: dict[str, list[dict]] = {}
        for record in self.frame[self.frame["state"] == "COMPLETE"].to_dict("records"):
            by_config.setdefault(config_key([record[k] for k in self.keys]), []).append(record)
        for records in by_config.values():
            records.sort(key=lambda r: (r.get("seed") is None, r.get("seed") or 0))
        self.__dict__["_complete_runs"] = (self.frame, list(self.keys), by_config)
        return by_config


def mean_std_ci(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, ...]:
    """Mean, sample std (ddof 1) and the t-based confidence interval; NaN where undefined."""
    import numpy as np

    x = np.asarray([v for v in values if v is not None], dtype=float)
    x = x[np.isfinite(x)]
    n = len(x)
    if n == 0:
        return (math.nan,) * 4
    mean = float(x.mean())
    if n == 1:
        return mean, math.nan, math.nan, math.nan
    std = float(x.std(ddof=1))
    half = t_quantile(0.5 + confidence / 2, n - 1) * std / math.sqrt(n)
    return mean, std, mean - half, mean + half


def welch_p(mean1: npt.ArrayLike, std1: npt.ArrayLike, n1: npt.ArrayLike, mean2: npt.ArrayLike,
            std2: npt.ArrayLike, n2: npt.ArrayLike) -> np.ndarray:
    """Two-sided p-value of Welch's unequal-variance t-test, from summary statistics.

    Vectorised over numpy arrays. Rules for the degenerate cases: fewer than 2 runs on either
    side gives NaN (no variance estimate, no test); zero variance on both sides gives 1.0 for
    equal means and 0.0 otherwise (the limit of the test as the variances shrink).
    """
    import numpy as np
    from scipy import stats

    m1, s1, k1, m2, s2, k2 = (np.asarray(a, dtype=float) for a in
                              (mean1, std1, n1, mean2, std2, n2))
    with np.errstate(divide="ignore", invalid="ignore"):
        v1, v2 = s1 ** 2 / k1, s2 ** 2 / k2
        se2 = v1 + v2
        t = (m1 - m2) / np.sqrt(se2)
        df = se2 ** 2 / (v1 ** 2 / (k1 - 1) + v2 ** 2 / (k2 - 1))
        p = 2 * stats.t.sf(np.abs(t), df)
    p = np.where(se2 == 0, np.where(m1 == m2, 1.0, 0.0), p)
    p = np.where((k1 < 2) | (k2 < 2) | ~np.isfinite(m1) | ~np.isfinite(m2), np.nan, p)
    return p


def state_counts(frame: pd.DataFrame) -> dict[str, int]:
    counts = frame["state"].value_counts()
    return {state: int(counts.get(state, 0)) for state in STATES}


def redone_failures(summary: Summary) -> int:
    """Failed trials whose configuration and seed also completed: runs cut short (an interrupt,
    a lost worker) that the runner ran again."""
    frame = summary.frame
    if "seed" not in frame:
        return 0
    run = [*summary.keys, "seed"]
    done = {tuple(r) for r in frame.loc[frame["state"] == "COMPLETE", run].astype(str).values}
    failed = frame.loc[frame["state"] == "FAIL", run].astype(str).values
    return sum(1 for r in failed if tuple(r) in done)


def config_table(frame: pd.DataFrame, study: Study, metric: str | None = None) -> pd.DataFrame:
    """One row per configuration, in grid order (grids) or best first (tuning studies).

    Columns: ``config`` (label), the varied keys, ``n`` (complete runs), ``n_asked`` (seeds
    the study asks for), ``pruned``/``failed``/``running``/``waiting`` counts, for every metric
    of STAT_METRICS ``<m>_mean``, ``<m>_std``, ``<m>_ci_low``, ``<m>_ci_high`` (t-based 95%
    interval, over the runs where that metric is finite), ``wall_time_mean`` (s),
    ``cpu_time_mean`` (s of process CPU time, all threads; NaN for stores without it),
    ``cpu_epoch_seconds_mean`` (mean over runs of cpu_time / epochs run),
    ``epoch_seconds_mean`` (mean over runs of a run's mean seconds per epoch), ``n_params``,
    ``epochs_run_mean``, ``diverged`` (count), ``collapsed`` (runs that ended at chance,
    by training accuracy or loss, without diverging: at_chance), when the study sets ``target_acc``
    ``epochs_to_target_mean`` (over the runs that reached it) and ``reached_target`` (runs),
    ``p_value`` (Welch's t-test of ``metric`` against the best row) and ``best``.
    """
    import pandas as pd

    metric = metric or study.config["metric"]
    keys = [p.key for p in study.space]
    frame = frame.assign(_key=[config_key(v) for v in frame[keys].itertuples(index=False)]
                         if keys else "")
    target = float(study.config.get("target_acc") or 0)
    values = _run_values(frame[frame["state"] == "COMPLETE"], target)
    done = frame[frame["state"] == "COMPLETE"]
    values["collapsed"] = at_chance(
        values["train_acc"], study.config["dataset"], values["train_loss"],
        done.get(REDUCTION, study.config[REDUCTION]), values["val_acc"],
        recorded_classes(frame)) & ~values["diverged"]
    agg = _aggregate(values, target)

    states = frame.groupby(["_key", "state"], sort=False).size().unstack(fill_value=0)
    order = _row_order(frame, study, keys, agg)
    table = pd.DataFrame(index=pd.Index(order, name="_key"))
    first = frame.drop_duplicates("_key").set_index("_key")
    for i, key in enumerate(keys):
        cell_values = {config_key(v): v[i] for v in _grid_values(study, keys)}
        table[key] = [first[key].get(k) if k in first.index else cell_values.get(k)
                      for k in order]
        table[key] = table[key].astype(object).where(table[key].notna(), None)
    table.insert(0, "config", [config_label(keys, row) for row in
                               table[keys].itertuples(index=False)] if keys else
                 ["base configuration"] * len(table))
    table = table.join(agg, how="left")
    table["n"] = table["n"].fillna(0).astype(int)
    table.insert(len(keys) + 2, "n_asked", int(study.config["repeats"]))
    for state in STATES[1:]:
        column = states[state] if state in states else pd.Series(dtype=int)
        table[STATE_COLUMNS[state]] = column.reindex(table.index).fillna(0).astype(int)
    table["diverged"] = table["diverged"].fillna(0).astype(int)
    table["collapsed"] = table["collapsed"].fillna(0).astype(int)
    if target > 0:
        table["reached_target"] = table["reached_target"].fillna(0).astype(int)
    table = _order_columns(_add_intervals(table), keys)
    table = _mark_best(table, metric)
    if not study.is_grid:
        table = _tuning_order(table, metric)
    return table.reset_index(drop=True)


def _run_values(done: pd.DataFrame, target: float) -> pd.DataFrame:
    """One row per complete run (indexed as ``done``): its numbers, non-finite ones NaN."""
    import numpy as np
    import pandas as pd

    if "cpu_time" not in done:  # a frame from hpo.records.trials_frame alone
        done = done.assign(cpu_time=math.nan)
    numeric = {m: pd.to_numeric(done[m], errors="coerce") for m in
               (*STAT_METRICS, "wall_time", "cpu_time", "n_params", "epochs_run")}
    # Trainable parameters where recorded (a frozen pretrained network trains only its head).
    trainable = done["n_trainable"] if "n_trainable" in done else pd.Series(math.nan, done.index)
    numeric["n_trainable"] = pd.to_numeric(trainable, errors="coerce")
    values = pd.DataFrame(numeric, index=done.index)
    values = values.where(np.isfinite(values))
    values["diverged"] = done["diverged"].fillna(False).astype(bool)
    values["epoch_seconds"] = [epoch_seconds(h) for h in done["history"]]
    values["cpu_epoch_seconds"] = values["cpu_time"] / values["epochs_run"]
    if target > 0:
        values["epochs_to_target"] = [epochs_to_target(h, target) for h in done["history"]]
    values["_key"] = done["_key"]
    return values


def _aggregate(values: pd.DataFrame, target: float) -> pd.DataFrame:
    """One row per configuration (``_key``): counts, means and stds of the runs' numbers."""
    import pandas as pd

    grouped = values.groupby("_key", sort=False)
    agg = pd.DataFrame({"n": grouped.size()})
    for m in STAT_METRICS:
        col = grouped[m]
        agg[f"{m}_mean"], agg[f"{m}_std"], agg[f"_{m}_count"] = col.mean(), col.std(), col.count()
    agg["wall_time_mean"] = grouped["wall_time"].mean()
    agg["cpu_time_mean"] = grouped["cpu_time"].mean()
    agg["cpu_epoch_seconds_mean"] = grouped["cpu_epoch_seconds"].mean()
    agg["n_params"] = grouped["n_params"].max()
    agg["n_trainable"] = grouped["n_trainable"].max()
    agg["epochs_run_mean"] = grouped["epochs_run"].mean()
    agg["diverged"] = grouped["diverged"].sum().astype(int)
    agg["collapsed"] = grouped["collapsed"].sum().astype(int)
    agg["epoch_seconds_mean"] = grouped["epoch_seconds"].mean()
    if target > 0:
        agg["epochs_to_target_mean"] = grouped["epochs_to_target"].mean()
        agg["reached_target"] = grouped["epochs_to_target"].count()
    return agg


def _add_intervals(table: pd.DataFrame) -> pd.DataFrame:
    """``<m>_ci_low``/``<m>_ci_high`` for every STAT_METRICS ``m`` (t-based, CONFIDENCE),
    from the ``_<m>_count`` columns, which it removes."""
    import numpy as np
    from scipy import stats

    for m in STAT_METRICS:
        count = table.pop(f"_{m}_count").fillna(0).to_numpy()
        std = table[f"{m}_std"].to_numpy(dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            half = stats.t.ppf(0.5 + CONFIDENCE / 2, count - 1) * std / np.sqrt(count)
        half = np.where(count >= 2, half, np.nan)
        mean = table[f"{m}_mean"].to_numpy(dtype=float)
        # A symmetric t-interval can leave the metric's range (accuracy above 100%, a
        # negative loss); it is clipped to the range, where the true mean must lie.
        low, high = (0.0, 100.0) if m.endswith("_acc") else (0.0, np.inf)
        table[f"{m}_ci_low"] = np.clip(mean - half, low, high)
        table[f"{m}_ci_high"] = np.clip(mean + half, low, high)
    return table


def epoch_seconds(history: Iterable[Mapping[str, object]] | None) -> float:
    """Mean seconds per epoch of one run's history (NaN without any timed epoch)."""
    seconds = [h.get("seconds") for h in history or ()]
    seconds = [float(x) for x in seconds if isinstance(x, (int, float)) and math.isfinite(x)]
    return sum(seconds) / len(seconds) if seconds else math.nan


def epochs_to_target(history: Iterable[Mapping[str, object]] | None, target: float) -> float:
    """The first epoch whose validation accuracy is >= ``target`` (%); NaN if none is."""
    for h in history or ():
        acc = h.get("val_acc")
        if isinstance(acc, (int, float)) and acc >= target:
            return float(h["epoch"])
    return math.nan


def _grid_values(study: Study, keys: list[str]) -> list[tuple[object, ...]]:
    if not study.is_grid:
        return []
    return [tuple(cell.get(k) for k in keys) for cell in study.cells()]


def _row_order(frame: pd.DataFrame, study: Study, keys: list[str],
               agg: pd.DataFrame) -> list[str]:
    """Grid: every cell in grid order (cells not run yet included), then any stray config.
    Tuning: configurations with at least one complete run (the others are only counted)."""
    if not study.is_grid:
        return list(agg.index)
    order = [config_key(v) for v in _grid_values(study, keys)] if keys else [""]
    seen = set(order)
    for key in frame["_key"].unique():
        if key not in seen and key in agg.index:
            order.append(key)
            seen.add(key)
    return order


def _order_columns(table: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    head = ["config", *keys, "n", "n_asked"]
    stats_cols = [f"{m}_{s}" for m in STAT_METRICS for s in ("mean", "std", "ci_low", "ci_high")]
    tail = ["wall_time_mean", "epoch_seconds_mean", "cpu_time_mean", "cpu_epoch_seconds_mean",
            "n_params", "epochs_run_mean", "diverged", "collapsed",
            *(STATE_COLUMNS[s] for s in STATES[1:])]
    if "n_trainable" in table and (table["n_trainable"] < table["n_params"]).any():
        tail.insert(tail.index("n_params") + 1, "n_trainable")  # a frozen network's head
    if "epochs_to_target_mean" in table:
        tail += ["epochs_to_target_mean", "reached_target"]
    return table[head + stats_cols + tail]


def _mark_best(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    import numpy as np

    mean = table[f"{metric}_mean"].to_numpy(dtype=float)
    table["p_value"] = np.nan
    table["best"] = False
    best = best_position(mean, metric)
    if best is None:
        return table
    std = table[f"{metric}_std"].to_numpy(dtype=float)
    n = table["n"].to_numpy(dtype=float)
    table["p_value"] = welch_p(mean, std, n, mean[best], std[best], n[best])
    table.iloc[best, table.columns.get_loc("p_value")] = np.nan
    table.iloc[best, table.columns.get_loc("best")] = True
    return table


def _tuning_order(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    return ranked(table, f"{metric}_mean", metric)


def summarize(study_obj: optuna.Study, metric: str | None = None) -> Summary:
    """Load a stored study's trials and build its per-configuration table."""
    from hpo import records

    study = records.current_spec(study_obj, records.study_spec(study_obj))
    metric = metric or study.config["metric"]
    trials = records.fetch_trials(study_obj)
    frame = records.trials_frame(study_obj, study, trials)
    if frame.empty:
        rename = "" if study.name == study_obj.study_name else f" --name {study_obj.study_name}"
        raise HpoError(
            f"study {study_obj.study_name!r} has no trials yet; run "
            f"`hpo run --study {study.name}{rename}` first"
        )
    # CPU time and trainable parameters are read here, not in trials_frame, so the export's
    # columns stay as they were.
    cpu = {t.number: t.user_attrs.get("cpu_time") for t in trials}
    steps = {t.number: t.user_attrs.get(STEPS_ATTR) for t in trials}
    trainable = {t.number: t.user_attrs.get("n_trainable") for t in trials}
    frame = frame.assign(cpu_time=frame["number"].map(cpu),
                         n_trainable=frame["number"].map(trainable),
                         steps=frame["number"].map(steps))
    table = config_table(frame, study, metric)
    return Summary(
        name=study_obj.study_name, study=study, frame=frame, table=table,
        keys=[p.key for p in study.space], metric=metric, counts=state_counts(frame),
        attrs=dict(study_obj.user_attrs),
    )


def pivot(table: pd.DataFrame, keys: Sequence[str], column: str) -> pd.DataFrame:
    """A two-parameter grid as a matrix: rows the first key, columns the second, grid order."""
    import pandas as pd

    rows_key, cols_key = keys
    row_vals = list(dict.fromkeys(table[rows_key]))
    col_vals = list(dict.fromkeys(table[cols_key]))
    out = pd.DataFrame(index=pd.Index(row_vals, name=rows_key, dtype=object),
                       columns=pd.Index(col_vals, name=cols_key, dtype=object), dtype=object)
    for row in table.to_dict("records"):
        out.loc[row[rows_key], row[cols_key]] = row[column]
    return out


def is_two_way_grid(summary: Summary) -> bool:
    """A full two-parameter grid without conditional parameters (pivot tables, heat maps)."""
    study = summary.study
    return (study.is_grid and len(summary.keys) == 2
            and not any(p.when for p in study.space)
            and summary.table[summary.keys].notna().all().all())


def in_reading(reading: Sequence[tuple[str, object]], row: Mapping[str, object]) -> bool:
    """Whether a configuration belongs to a reading: it has the reading's values, or it lacks
    a reading key (a conditional parameter it does not take: Adadelta, at its own lr, is in
    every reading of SGD's lr)."""
    return matches_row([(k, v) for k, v in reading if _norm(row[k]) is not None], row)


def matches_row(params: Sequence[tuple[str, object]], row: Mapping[str, object]) -> bool:
    for key, value in params:
        have, want = _norm(row[key]), _norm(value)
        if isinstance(have, float) and isinstance(want, float):
            if not math.isclose(have, want, rel_tol=1e-9, abs_tol=1e-15):
                return False
        elif have != want:
            return False
    return True


def identical_groups(summary: Summary) -> list[list[str]]:
    """Configurations whose complete runs gave the same numbers seed for seed (test, validation
    and training accuracy and loss): one run under several names, e.g. a batch larger than the
    training set, or a summed loss at lr/B equal to the mean at lr. Groups of two or more, in
    table order."""
    keys = summary.keys
    done = summary.frame[summary.frame["state"] == "COMPLETE"]
    label = {config_key(tuple(r[k] for k in keys)): r["config"]
             for r in summary.records()}
    done = done.assign(config=[label.get(config_key(v)) for v in done[keys].itertuples(
        index=False)] if keys else "base configuration")
    metrics = ["test_acc", "val_acc", "train_acc", "test_loss", "train_loss"]
    signature: dict[str, tuple] = {}
    for config, runs in done.groupby("config", sort=False):
        rows = runs.sort_values("seed")[["seed", *metrics]].itertuples(index=False)
        signature[config] = tuple(tuple(round(float(v), 9) if v == v and v is not None else None
                                        for v in row) for row in rows)
    groups: dict[tuple, list[str]] = {}
    for config in summary.table["config"]:
        if config in signature and signature[config]:
            groups.setdefault(signature[config], []).append(config)
    return [g for g in groups.values() if len(g) > 1]
