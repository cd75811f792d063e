"""Tuning studies: parameter importance (fANOVA, PED-ANOVA, bootstrapped) and the
optimisation history."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hpo.reporting.figures.common import unit_label
from hpo.reporting.tables import Summary

if TYPE_CHECKING:
    import optuna
    import pandas as pd
    from matplotlib.figure import Figure
    from optuna.importance import BaseImportanceEvaluator
    from optuna.trial import FrozenTrial

# ---------------------------------------------------------------------------------------------
# Parameter importance (tuning studies)


@dataclass
class ImportanceData:
    importances: pd.DataFrame  # columns: evaluator, param, importance, ci_low, ci_high
    errors: dict[str, str] = field(default_factory=dict)  # evaluator -> why it has no result
    n_configs: int = 0  # configurations (points) the importances were computed from
    resamples: dict[str, int] = field(default_factory=dict)  # evaluator -> bootstrap resamples
    # that gave a result (of ``asked``)
    asked: int = 0  # bootstrap resamples drawn (BOOTSTRAP in reports)


FANOVA_TREES, FANOVA_DEPTH = 32, 8
# Bootstrap over configurations: resample the per-configuration points with replacement,
# recompute both importances, take the 2.5% and 97.5% percentiles. Seeded (BOOTSTRAP_SEED) so
# a report is reproducible; 50 resamples keep a 40-configuration report within seconds.
BOOTSTRAP, BOOTSTRAP_SEED = 50, 0
# fANOVA's refit grows with the configurations (pure-Python marginalisation over the trees'
# leaves): ~0.3 s at 40 configurations, seconds at 667 on 2 cores, so 50 refits would break the
# report's 10 s budget on large tuning studies. Above this many configurations fANOVA gets no
# interval (said in the text); PED-ANOVA (~50x cheaper) is always bootstrapped.
FANOVA_BOOTSTRAP_MAX = 200
# The two estimators disagree about which knobs matter when their top knobs differ or the
# Spearman rank correlation of their importances is below this.
AGREEMENT_RHO = 0.5
EVALUATORS = ("fANOVA", "PED-ANOVA")


def importance_trials(summary: Summary) -> list[FrozenTrial]:
    """One Optuna trial per configuration, valued at the mean of the study's objective over
    its seeds: seed noise averaged out, and 3x fewer points for fANOVA, whose pure-Python
    marginalisation grows with the number of tree leaves."""
    import optuna

    from hpo import listvalues
    from hpo import space as space_mod

    objective = summary.study.config["metric"]
    by_key = {p.key: p for p in summary.study.space}
    trials = []
    for row in summary.table.to_dict("records"):
        value = row[f"{objective}_mean"]
        if row["n"] == 0 or not math.isfinite(value):
            continue
        params = {k: row[k] for k in summary.keys if row[k] is not None}
        if any(isinstance(v, float) and math.isnan(v) for v in params.values()):
            continue
        params = {k: listvalues.from_label(by_key[k], v) for k, v in params.items()}
        trials.append(optuna.trial.create_trial(
            value=float(value), params=listvalues.encoded(params),
            distributions={k: space_mod.distribution(by_key[k]) for k in params},
        ))
    return trials


def importance_study(summary: Summary, trials: list[FrozenTrial] | None = None) -> optuna.Study:
    """An in-memory Optuna study of ``trials`` (default: importance_trials(summary))."""
    import optuna

    study = optuna.create_study(direction=summary.study.direction)
    study.add_trials(importance_trials(summary) if trials is None else trials)
    return study


def _evaluators() -> dict[str, BaseImportanceEvaluator]:
    import optuna

    return {
        "fANOVA": optuna.importance.FanovaImportanceEvaluator(
            n_trees=FANOVA_TREES, max_depth=FANOVA_DEPTH, seed=0),
        "PED-ANOVA": optuna.importance.PedAnovaImportanceEvaluator(),
    }


def _importances(study: optuna.Study, evaluator: BaseImportanceEvaluator) -> dict[str, float]:
    import optuna

    return {k: float(v) for k, v in
            optuna.importance.get_param_importances(study, evaluator=evaluator).items()}


def importance_data(summary: Summary, resamples: int = BOOTSTRAP) -> ImportanceData:
    """fANOVA and PED-ANOVA (Optuna 5's default) importances of the study's objective, over
    per-configuration means, each with a bootstrap 95% interval over configurations
    (``resamples`` resamples, seeded). fANOVA uses FANOVA_TREES trees of depth <= FANOVA_DEPTH
    (Optuna's default, 64 trees of depth 64, took 20 s for 667 configurations and gave
    importances within 0.01 of these)."""
    import numpy as np
    import pandas as pd

    rows, errors, counts = [], {}, {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trials = importance_trials(summary)
        study = importance_study(summary, trials)
        rng = np.random.default_rng(BOOTSTRAP_SEED)
        draws = [rng.integers(0, len(trials), len(trials)) for _ in range(resamples)] \
            if trials else []
        for name, evaluator in _evaluators().items():
            try:
                point = _importances(study, evaluator)
            except (ValueError, RuntimeError) as exc:
                errors[name] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                continue
            boot: dict[str, list[float]] = {p: [] for p in point}
            counts[name] = 0
            skip = name == "fANOVA" and len(trials) > FANOVA_BOOTSTRAP_MAX
            for draw in [] if skip else draws:
                try:
                    again = _importances(importance_study(summary, [trials[i] for i in draw]),
                                         evaluator)
                except (ValueError, RuntimeError):
                    continue  # e.g. a resample where every configuration has the same value
                counts[name] += 1
                for p in boot:
                    boot[p].append(again.get(p, 0.0))
            for param, value in point.items():
                low, high = (np.percentile(boot[param], [2.5, 97.5]) if boot[param]
                             else (math.nan, math.nan))
                rows.append((name, param, value, float(low), float(high)))
    frame = pd.DataFrame(rows, columns=["evaluator", "param", "importance", "ci_low",
                                        "ci_high"])
    return ImportanceData(importances=frame, errors=errors, n_configs=len(trials),
                          resamples=counts, asked=resamples)


def importance_agreement(data: ImportanceData) -> tuple[bool, str, str, float] | None:
    """(agree, fANOVA's top knob, PED-ANOVA's top knob, Spearman rho over the knobs); None
    when either estimator has no result. They agree when the top knobs are the same and
    rho >= AGREEMENT_RHO (rho is NaN, and not held against them, with fewer than 3 knobs)."""
    from scipy import stats

    frame = data.importances
    if any(name in data.errors or frame[frame["evaluator"] == name].empty
           for name in EVALUATORS):
        return None
    a, b = (frame[frame["evaluator"] == name].set_index("param")["importance"]
            for name in EVALUATORS)
    params = sorted(set(a.index) | set(b.index))
    x = [float(a.get(p, 0.0)) for p in params]
    y = [float(b.get(p, 0.0)) for p in params]
    rho = float(stats.spearmanr(x, y).statistic) if len(params) >= 3 else math.nan
    top_a, top_b = str(a.idxmax()), str(b.idxmax())
    agree = top_a == top_b and not (math.isfinite(rho) and rho < AGREEMENT_RHO)
    return agree, top_a, top_b, rho


def importance_text(data: ImportanceData) -> str:
    """What the report says about the two estimators: agreement, plainly, and the intervals."""
    def stat(name: str, param: str) -> str:
        frame = data.importances
        row = frame[(frame["evaluator"] == name) & (frame["param"] == param)].iloc[0]
        ci = (f" [{row['ci_low']:.2f}, {row['ci_high']:.2f}]"
              if math.isfinite(row["ci_low"]) else "")
        return f"{param} {row['importance']:.2f}{ci}"

    boot = ", ".join(f"{name} {data.resamples.get(name, 0)}" for name in EVALUATORS
                     if name not in data.errors)
    if data.n_configs > FANOVA_BOOTSTRAP_MAX and "fANOVA" not in data.errors:
        boot += (f"; fANOVA is not resampled above {FANOVA_BOOTSTRAP_MAX} configurations, "
                 "where each refit takes seconds, so its bars have no whiskers")
    text = (f"Bars are the importances over all {data.n_configs} configurations; whiskers their "
            f"95% bootstrap interval over configurations ({data.asked} seeded resamples; "
            f"with a result: {boot or 'none'}).")
    verdict = importance_agreement(data)
    if verdict is None:
        failed = "; ".join(f"{k}: {v}" for k, v in data.errors.items())
        return text + (f" Only one estimator gave a result ({failed}), so agreement cannot "
                       "be judged." if failed else "")
    agree, top_a, top_b, rho = verdict
    rho_text = f"Spearman ρ = {rho:.2f} over the knobs" if math.isfinite(rho) else \
        "too few knobs for a rank correlation"
    if agree:
        return text + (f" fANOVA and PED-ANOVA agree on the top knob ({stat('fANOVA', top_a)}; "
                       f"{stat('PED-ANOVA', top_b)}; {rho_text}).")
    return text + (" **fANOVA and PED-ANOVA disagree about which knobs matter**: fANOVA ranks "
                   f"{stat('fANOVA', top_a)} first, PED-ANOVA {stat('PED-ANOVA', top_b)} "
                   f"({rho_text}; they count as agreeing when the top knob is the same and ρ ≥ "
                   f"{AGREEMENT_RHO:g}). Neither ranking should be read as settled.")


def plot_importance(data: ImportanceData, title: str, metric: str) -> Figure:
    import matplotlib.pyplot as plt
    import numpy as np

    params = list(dict.fromkeys(data.importances["param"]))
    fig, axes = plt.subplots(1, 2, figsize=(11, 1.8 + 0.5 * max(len(params), 2)), sharey=True)
    for ax, name in zip(axes, EVALUATORS):
        sub = data.importances[data.importances["evaluator"] == name].set_index("param")
        values = np.array([float(sub["importance"].get(p, 0.0)) for p in params])
        low = np.array([float(sub["ci_low"].get(p, math.nan)) for p in params])
        high = np.array([float(sub["ci_high"].get(p, math.nan)) for p in params])
        err = np.vstack([np.nan_to_num(np.clip(values - low, 0, None)),
                         np.nan_to_num(np.clip(high - values, 0, None))])
        ax.barh(range(len(params)), values, xerr=err, capsize=3,
                color="tab:blue" if name == "fANOVA" else "tab:green")
        for i, v in enumerate(values):
            ax.text(v, i, f" {v:.2f}", va="bottom", fontsize=9)
        ax.set_yticks(range(len(params)), params)
        top = max(list(values) + list(np.nan_to_num(high)) + [0.0])
        ax.set_xlim(0, min(top * 1.15, 1.05) or 1)
        ax.set_xlabel("importance (normalised, sums to 1), 95% bootstrap interval")
        ax.set_title(name if name not in data.errors else f"{name}: {data.errors[name][:60]}")
        ax.grid(axis="x", alpha=0.3)
    axes[0].invert_yaxis()
    fig.suptitle(f"{title}: hyperparameter importance for mean {metric} "
                 f"({data.n_configs} configurations, {data.asked} bootstrap resamples)")
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------
# Optimisation history (tuning studies)


def history_data(summary: Summary) -> pd.DataFrame:
    """Complete trials in order: trial number, objective value and the best value so far."""
    import numpy as np
    import pandas as pd

    done = summary.frame[summary.frame["state"] == "COMPLETE"].sort_values("number")
    value = pd.to_numeric(done["value"], errors="coerce").to_numpy(dtype=float)
    finite = np.where(np.isfinite(value), value, np.nan)
    best = (pd.Series(finite).cummax() if summary.study.direction == "maximize"
            else pd.Series(finite).cummin())
    return pd.DataFrame({"number": done["number"].to_numpy(), "value": finite,
                         "best_so_far": best.to_numpy()})


def plot_history(data: pd.DataFrame, title: str, metric: str) -> Figure:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5))
    ax.scatter(data["number"], data["value"], s=10, alpha=0.6, color="tab:blue",
               label="trial (one configuration, one seed)")
    ax.step(data["number"], data["best_so_far"], where="post", color="tab:red",
            label="best so far")
    ax.set_xlabel("trial number")
    ax.set_ylabel(unit_label(metric))
    ax.set_title(f"{title}: optimisation history")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, frameon=False)
    fig.tight_layout()
    return fig
