"""Figures of a report. Each is computed as plain data first (``*_data`` -> DataFrame or
dataclass, tested for its numbers) and drawn second (``plot_*`` -> matplotlib Figure)."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

from hpo.reporting.render import fmt_num, pivot_numeric
from hpo.reporting.tables import Summary, config_key, short_names

CURVE_METRICS = ("train_loss", "val_loss", "train_acc", "val_acc")
LABELS = {
    "train_loss": "training loss (cross-entropy)",
    "val_loss": "validation loss (cross-entropy)",
    "train_acc": "training accuracy (%)",
    "val_acc": "validation accuracy (%)",
    "test_acc": "test accuracy (%)",
    "test_loss": "test loss (cross-entropy)",
    "wall_time": "wall time per run (s)",
    "cpu_time": "CPU time per run (s)",
}
MAX_CURVES = 8  # more lines than this are unreadable; the best ones are drawn
MAX_BARS = 30
DPI = 110


def _unit_label(metric: str) -> str:
    return LABELS.get(metric, metric)


def shown_configs(summary: Summary, limit: int) -> tuple[list[str], int]:
    """Configurations (labels) to draw: all if few, else the best ``limit`` by the metric."""
    table = summary.table[summary.table["n"] > 0]
    if len(table) > limit:
        table = table.sort_values(f"{summary.metric}_mean", ascending=not summary.maximize,
                                  kind="stable").head(limit)
        table = table.sort_index()
    return list(table["config"]), int((summary.table["n"] > 0).sum())


def _complete_with_labels(summary: Summary) -> Any:
    keys = summary.keys
    done = summary.frame[summary.frame["state"] == "COMPLETE"]
    key_to_label = {config_key(tuple(r[k] for k in keys)): r["config"]
                    for r in summary.table.to_dict("records")}
    if keys:
        cfg = [key_to_label.get(config_key(v)) for v in done[keys].itertuples(index=False)]
    else:
        cfg = ["base configuration"] * len(done)
    return done.assign(config=cfg)


# ---------------------------------------------------------------------------------------------
# Learning curves


@dataclass
class CurvesData:
    curves: Any  # columns: config, epoch, metric, mean, std, n
    configs: list[str]  # drawn, in table order
    total: int  # configurations with a complete run
    seeds: Any = None  # columns: config, seed, epoch, metric, value (one line per run)


# Line styles: every configuration gets its own dash pattern and marker as well as its colour,
# so two configurations whose curves coincide (ReLU and ELU; momentum and Nesterov) stay
# distinguishable; configurations drawn earlier get wider lines, so one drawn later on top of
# them leaves their edges visible.
DASHES: tuple[Any, ...] = ("-", (0, (6, 2)), (0, (2, 1.5)), (0, (6, 2, 1.5, 2)), (0, (10, 3)),
                           (0, (1, 1)), (0, (4, 1, 1, 1, 1, 1)), (0, (8, 2, 2, 2)))
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")
WIDEST, NARROWEST = 3.4, 1.2


@dataclass(frozen=True)
class LineStyle:
    dash: Any
    marker: str
    width: float
    zorder: int


def line_styles(configs: list[str]) -> dict[str, LineStyle]:
    """A distinct (dash, marker) per configuration; widths shrink in draw order."""
    n = len(configs)
    step = (WIDEST - NARROWEST) / (n - 1) if n > 1 else 0.0
    return {cfg: LineStyle(DASHES[i % len(DASHES)], MARKERS[i % len(MARKERS)],
                           round(WIDEST - step * i, 3), 3 + i)
            for i, cfg in enumerate(configs)}


def curves_data(summary: Summary, limit: int = MAX_CURVES) -> CurvesData:
    """Per configuration, epoch and metric: mean and std over seeds (of the runs that reached
    that epoch; a diverged run's missing losses are left out, its accuracies kept)."""
    import numpy as np
    import pandas as pd

    configs, total = shown_configs(summary, limit)
    done = _complete_with_labels(summary)
    done = done[done["config"].isin(configs)]
    rows = [(cfg, h.get("epoch"), *(h.get(m) for m in CURVE_METRICS))
            for cfg, history in zip(done["config"], done["history"]) for h in history or ()]
    long = pd.DataFrame(rows, columns=["config", "epoch", *CURVE_METRICS])
    long[list(CURVE_METRICS)] = long[list(CURVE_METRICS)].apply(pd.to_numeric, errors="coerce")
    long = long.replace([np.inf, -np.inf], np.nan)
    grouped = long.groupby(["config", "epoch"], sort=False)[list(CURVE_METRICS)]
    stats = grouped.agg(["mean", "std", "count"])
    parts = []
    for m in CURVE_METRICS:
        part = stats[m].rename(columns={"count": "n"}).reset_index()
        part.insert(2, "metric", m)
        parts.append(part)
    curves = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    per_run = [(cfg, seed, h.get("epoch"), m, h.get(m))
               for cfg, seed, history in zip(done["config"], done["seed"], done["history"])
               for h in history or () for m in CURVE_METRICS]
    seeds = pd.DataFrame(per_run, columns=["config", "seed", "epoch", "metric", "value"])
    seeds["value"] = pd.to_numeric(seeds["value"], errors="coerce").replace(
        [np.inf, -np.inf], np.nan)
    if not curves.empty:
        order = {c: i for i, c in enumerate(configs)}
        curves = curves.sort_values(["metric", "config", "epoch"],
                                    key=lambda s: s.map(order) if s.name == "config" else s,
                                    kind="stable").reset_index(drop=True)
    else:
        curves = pd.DataFrame(columns=["config", "epoch", "metric", "mean", "std", "n"])
    return CurvesData(curves=curves, configs=configs, total=total, seeds=seeds)


def _palette(n: int) -> list[Any]:
    import seaborn as sns

    return sns.color_palette("tab10" if n <= 10 else "husl", n)


def plot_curves(data: CurvesData, title: str) -> Any:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5), sharex=True)
    colors = dict(zip(data.configs, _palette(len(data.configs))))
    styles = line_styles(data.configs)
    seeds = data.seeds if data.seeds is not None else None
    for ax, metric in zip(axes.flat, CURVE_METRICS):
        sub = data.curves[data.curves["metric"] == metric]
        for cfg in data.configs:
            line = sub[sub["config"] == cfg]
            if line.empty:
                continue
            style = styles[cfg]
            # Every seed as a thin line under the mean, never a ±std band: a band over seeds
            # that disagree (one collapsed run) covers the panel and hides what happened.
            if seeds is not None and line["n"].max() > 1:
                own = seeds[(seeds["config"] == cfg) & (seeds["metric"] == metric)]
                for _, run in own.groupby("seed", sort=True):
                    ax.plot(run["epoch"].to_numpy(), run["value"].to_numpy(dtype=float),
                            color=colors[cfg], linewidth=0.9, alpha=0.6,
                            linestyle=style.dash, zorder=1,
                            marker=style.marker if len(run) == 1 else None, markersize=3)
            x, mean = line["epoch"].to_numpy(), line["mean"].to_numpy(dtype=float)
            ax.plot(x, mean, marker=style.marker, markersize=4, color=colors[cfg], label=cfg,
                    linestyle=style.dash, linewidth=style.width, zorder=style.zorder,
                    markevery=(data.configs.index(cfg) % 3, 3) if len(x) > 12 else None)
        ax.set_title(_unit_label(metric).split(" (")[0])
        ax.set_ylabel(_unit_label(metric))
        ax.grid(alpha=0.3)
    for ax in axes[1]:
        ax.set_xlabel("epoch")
    for ax in axes.flat:
        ax.xaxis.get_major_locator().set_params(integer=True)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    if not handles:
        handles, labels = axes[1, 0].get_legend_handles_labels()
    labels, legend_title = _strip_key(labels)
    ncol = min(len(labels), 2 if max((len(lb) for lb in labels), default=0) > 40 else 4) or 1
    fig.legend(handles, labels, loc="lower center", ncol=ncol, frameon=False, fontsize=9,
               title=None if legend_title == "configuration" else legend_title)
    shown = "" if len(data.configs) >= data.total else \
        f" (best {len(data.configs)} of {data.total} configurations)"
    fig.suptitle(f"{title}: learning curves, mean over seeds (thick) and every seed (thin)"
                 f"{shown}")
    rows = math.ceil(len(labels) / ncol) if labels else 0
    fig.tight_layout(rect=(0, 0.04 + 0.03 * rows, 1, 1))
    return fig


# ---------------------------------------------------------------------------------------------
# Accuracy per configuration


@dataclass
class AccuracyData:
    metric: str
    bars: Any  # config, mean, ci_low, ci_high, n, best (table order)
    seeds: Any  # config, value: one point per run
    reference: Any  # config, value: published numbers, when the study has a reference
    total: int
    ranked_by: str = "val_acc"  # the metric that picked the best row


def accuracy_data(summary: Summary, metric: str = "test_acc",
                  limit: int = MAX_BARS) -> AccuracyData:
    import pandas as pd

    from hpo.reporting.tables import reference_table

    configs, total = shown_configs(summary, limit)
    table = summary.table[summary.table["config"].isin(configs)]
    bars = pd.DataFrame({
        "config": table["config"], "mean": table[f"{metric}_mean"],
        "ci_low": table[f"{metric}_ci_low"], "ci_high": table[f"{metric}_ci_high"],
        "n": table["n"], "best": table["best"],
    }).reset_index(drop=True)
    done = _complete_with_labels(summary)
    done = done[done["config"].isin(configs)]
    seeds = pd.DataFrame({"config": done["config"],
                          "value": pd.to_numeric(done[metric], errors="coerce")})
    seeds = seeds.reset_index(drop=True)
    ref = reference_table(summary)
    if ref is not None and summary.study.reference.metric == metric:
        ref = ref[ref["config"].isin(configs)]
        reference = pd.DataFrame({"config": ref["config"], "value": ref["published"]})
    else:
        reference = pd.DataFrame(columns=["config", "value"])
    return AccuracyData(metric=metric, bars=bars, seeds=seeds,
                        reference=reference.reset_index(drop=True), total=total,
                        ranked_by=summary.metric)


def _strip_key(labels: list[str]) -> tuple[list[str], str]:
    """With one varied key, ``lr=0.001`` reads better as ``0.001`` under an axis named lr."""
    heads = {lb.split("=", 1)[0] for lb in labels if "=" in lb and ", " not in lb}
    if len(heads) == 1 and all(lb.count("=") == 1 and ", " not in lb for lb in labels):
        return [lb.split("=", 1)[1] for lb in labels], heads.pop()
    return labels, "configuration"


def plot_accuracy(data: AccuracyData, title: str, reference_source: str = "") -> Any:
    import matplotlib.pyplot as plt
    import numpy as np

    n = len(data.bars)
    height = 2.2 + 0.42 * max(n, 1)
    fig, ax = plt.subplots(figsize=(9, height))
    y = {cfg: i for i, cfg in enumerate(data.bars["config"])}
    mean = data.bars["mean"].to_numpy(dtype=float)
    lo = data.bars["ci_low"].to_numpy(dtype=float)
    hi = data.bars["ci_high"].to_numpy(dtype=float)
    err = np.vstack([np.nan_to_num(mean - lo), np.nan_to_num(hi - mean)])
    best = data.bars["best"].to_numpy(dtype=bool)
    for mask, color, label in ((~best, "tab:blue", "mean and 95% CI (t-based)"),
                               (best, "tab:orange", f"best by mean {data.ranked_by}, 95% CI")):
        if mask.any():
            ax.errorbar(mean[mask], np.arange(n)[mask], xerr=err[:, mask], fmt="o",
                        color=color, ecolor=color, capsize=5, markersize=7, elinewidth=2,
                        label=label, zorder=2)
    if not data.seeds.empty:
        ys = data.seeds["config"].map(y).to_numpy(dtype=float)
        jitter = np.linspace(-0.12, 0.12, 5)[np.arange(len(ys)) % 5]
        ax.scatter(data.seeds["value"], ys + jitter, s=16, color="tab:gray", alpha=0.8,
                   label="single runs (one per seed)", zorder=3)
    if not data.reference.empty:
        ax.scatter(data.reference["value"], data.reference["config"].map(y), marker="X", s=80,
                   color="tab:red", zorder=4,
                   label=f"published ({reference_source})" if reference_source else "published")
    labels, axis_name = _strip_key(list(data.bars["config"]))
    ax.set_yticks(range(n), labels)
    ax.set_ylim(n - 0.5, -0.5)
    ax.set_ylabel(axis_name)
    ax.set_xlabel(_unit_label(data.metric))
    ax.grid(axis="x", alpha=0.3)
    shown = "" if n >= data.total else f" (best {n} of {data.total})"
    ax.set_title(f"{title}: {_unit_label(data.metric).split(' (')[0]} per configuration"
                 f"{shown}")
    handles, texts = ax.get_legend_handles_labels()
    fig.legend(handles, texts, loc="lower center", ncol=2, frameon=False, fontsize=9)
    rows = math.ceil(len(texts) / 2)
    fig.tight_layout(rect=(0, (0.15 + 0.25 * rows) / height, 1, 1))
    return fig


# ---------------------------------------------------------------------------------------------
# Heat maps of two-parameter grids


@dataclass
class HeatmapData:
    keys: tuple[str, str]
    matrices: dict[str, Any] = field(default_factory=dict)  # metric -> numeric pivot
    # metric -> bool pivot: the best cell and the cells whose Welch p against it is >= ALPHA
    # (accuracy and loss maps only; a cell with n < 2 is not marked: it cannot be tested)
    within_noise: dict[str, Any] = field(default_factory=dict)
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)  # colour scale


# The colour scale of an accuracy map spans at least MIN_SPAN_POINTS points or MIN_SPAN_STDS
# times the largest seed std of a cell, below the best cell: differences within seed noise
# then look like the near-uniform colour they are, not like the full gradient.
MIN_SPAN_POINTS, MIN_SPAN_STDS = 5.0, 4.0


def heatmap_data(summary: Summary, metrics: tuple[str, ...] = ("test_acc", "time")
                 ) -> HeatmapData:
    """Numeric pivots of ``metrics`` ("time": the time the report's tables show, CPU time when
    workers ran side by side, see tables.time_basis), which cells of the accuracy/loss maps are
    within noise of the best, and each map's colour range."""
    import numpy as np

    from hpo.reporting.tables import time_basis

    basis = time_basis(summary).metric
    metrics = tuple(basis if m == "time" else m for m in metrics)
    data = HeatmapData(keys=tuple(summary.keys),
                       matrices={m: pivot_numeric(summary, m) for m in metrics})
    for m in metrics:
        if m.endswith(("_acc", "_loss")):
            data.within_noise[m], span = _within_noise(summary, m)
            data.ranges[m] = _colour_range(data.matrices[m], m, span)
        else:
            values = data.matrices[m].to_numpy(dtype=float)
            data.ranges[m] = (float(np.nanmin(values)), float(np.nanmax(values)))
    return data


def _within_noise(summary: Summary, metric: str) -> tuple[Any, float]:
    """Bool pivot (best cell and cells not significantly different from it, Welch p >= ALPHA)
    and the largest std of a cell."""
    import numpy as np

    from hpo.reporting.tables import ALPHA, pivot, welch_p

    table = summary.table
    mean = table[f"{metric}_mean"].to_numpy(dtype=float)
    std = table[f"{metric}_std"].to_numpy(dtype=float)
    n = table["n"].to_numpy(dtype=float)
    marked = np.zeros(len(table), dtype=bool)
    if np.isfinite(mean).any():
        best = int(np.nanargmin(mean) if metric.endswith("_loss") else np.nanargmax(mean))
        p = welch_p(mean, std, n, mean[best], std[best], n[best])
        marked = np.asarray(p >= ALPHA)
        marked[best] = True
    frame = table.assign(_marked=marked)
    matrix = pivot(frame, summary.keys, "_marked").fillna(False).astype(bool)
    spread = float(np.nanmax(std)) if np.isfinite(std).any() else 0.0
    return matrix, spread


def _colour_range(matrix: Any, metric: str, spread: float) -> tuple[float, float]:
    import numpy as np

    values = matrix.to_numpy(dtype=float)
    if not np.isfinite(values).any():
        return (0.0, 1.0)
    low, high = float(np.nanmin(values)), float(np.nanmax(values))
    span = max(MIN_SPAN_STDS * spread, MIN_SPAN_POINTS if metric.endswith("_acc") else 0.0)
    if metric.endswith("_loss"):
        return low, max(high, low + span)
    return max(min(low, high - span), 0.0), high  # an accuracy is >= 0


def plot_heatmaps(data: HeatmapData, title: str) -> Any:
    import matplotlib.pyplot as plt
    import seaborn as sns
    from matplotlib.patches import Rectangle

    names = short_names(data.keys)
    k = len(data.matrices)
    first = next(iter(data.matrices.values()))
    width = max(5.0, 0.9 * first.shape[1] + 2.5)
    fig, axes = plt.subplots(1, k, figsize=(width * k, max(3.5, 0.55 * first.shape[0] + 2)))
    axes = [axes] if k == 1 else list(axes)
    for ax, (metric, matrix) in zip(axes, data.matrices.items()):
        labels = matrix.map(lambda x: fmt_num(x, metric))
        cmap = "magma_r" if metric in ("wall_time", "cpu_time") else "viridis"
        low, high = data.ranges.get(metric, (None, None))
        sns.heatmap(matrix.astype(float), annot=labels, fmt="", cmap=cmap, ax=ax,
                    vmin=low, vmax=high, cbar_kws={"label": _unit_label(metric)},
                    linewidths=0.5)
        marks = data.within_noise.get(metric)
        if marks is not None:
            for i in range(marks.shape[0]):
                for j in range(marks.shape[1]):
                    if marks.iat[i, j]:
                        ax.add_patch(Rectangle((j + 0.05, i + 0.05), 0.9, 0.9, fill=False,
                                               edgecolor="black", linewidth=2.5))
        outlined = "\noutlined: best and not significantly different"
        ax.set_title(f"mean {_unit_label(metric)}" + (outlined if marks is not None else ""))
        ax.set_ylabel(names[data.keys[0]])
        ax.set_xlabel(names[data.keys[1]])
        ax.set_yticklabels([_tick(v) for v in matrix.index], rotation=0)
        ax.set_xticklabels([_tick(v) for v in matrix.columns], rotation=0)
    fig.suptitle(f"{title}: {names[data.keys[0]]} × {names[data.keys[1]]} (mean over seeds)")
    fig.tight_layout()
    return fig


def _tick(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


# ---------------------------------------------------------------------------------------------
# Parameter importance (tuning studies)


@dataclass
class ImportanceData:
    importances: Any  # columns: evaluator, param, importance, ci_low, ci_high
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


def importance_trials(summary: Summary) -> list[Any]:
    """One Optuna trial per configuration, valued at the mean of the study's objective over
    its seeds: seed noise averaged out, and 3x fewer points for fANOVA, whose pure-Python
    marginalisation grows with the number of tree leaves."""
    import optuna

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
        params = {k: (by_key[k].choices[[str(c) for c in by_key[k].choices].index(v)]
                      if isinstance(v, str) and by_key[k].type == "categorical"
                      and v not in by_key[k].choices else v) for k, v in params.items()}
        trials.append(optuna.trial.create_trial(
            value=float(value), params=space_mod.encoded(params),
            distributions={k: space_mod.distribution(by_key[k]) for k in params},
        ))
    return trials


def importance_study(summary: Summary, trials: list[Any] | None = None) -> Any:
    """An in-memory Optuna study of ``trials`` (default: importance_trials(summary))."""
    import optuna

    study = optuna.create_study(direction=summary.study.direction)
    study.add_trials(importance_trials(summary) if trials is None else trials)
    return study


def _evaluators() -> dict[str, Any]:
    import optuna

    return {
        "fANOVA": optuna.importance.FanovaImportanceEvaluator(
            n_trees=FANOVA_TREES, max_depth=FANOVA_DEPTH, seed=0),
        "PED-ANOVA": optuna.importance.PedAnovaImportanceEvaluator(),
    }


def _importances(study: Any, evaluator: Any) -> dict[str, float]:
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


def plot_importance(data: ImportanceData, title: str, metric: str) -> Any:
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


def history_data(summary: Summary) -> Any:
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


def plot_history(data: Any, title: str, metric: str) -> Any:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5))
    ax.scatter(data["number"], data["value"], s=10, alpha=0.6, color="tab:blue",
               label="trial (one configuration, one seed)")
    ax.step(data["number"], data["best_so_far"], where="post", color="tab:red",
            label="best so far")
    ax.set_xlabel("trial number")
    ax.set_ylabel(_unit_label(metric))
    ax.set_title(f"{title}: optimisation history")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, frameon=False)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------
# Flatness: loss along theta(alpha) = (1 - alpha) theta_0 + alpha theta_final


FLATNESS_METRICS = ("val_loss", "val_err", "train_loss", "train_err")


@dataclass
class FlatnessData:
    curves: Any  # columns: config, alpha, metric, mean, std, n
    configs: list[str]  # in table order
    seeds: Any = None  # columns: config, seed, alpha, metric, value (one line per run)


def flatness_data(summary: Summary) -> FlatnessData:
    """Per configuration, alpha and metric: mean and std over the seeds' flatness curves
    (complete trials with a ``flatness`` attribute; non-finite losses left out)."""
    import numpy as np
    import pandas as pd

    done = _complete_with_labels(summary)
    rows = []
    for cfg, seed, curve in zip(done["config"], done["seed"], done["flatness"]):
        if not isinstance(curve, dict):
            continue
        for i, alpha in enumerate(curve.get("alpha", [])):
            rows.append((cfg, seed, float(alpha),
                         *(curve[m][i] if m in curve else None for m in FLATNESS_METRICS)))
    long = pd.DataFrame(rows, columns=["config", "seed", "alpha", *FLATNESS_METRICS])
    metrics = list(FLATNESS_METRICS)
    long[metrics] = long[metrics].apply(pd.to_numeric, errors="coerce")
    long = long.replace([np.inf, -np.inf], np.nan)
    order = [c for c in summary.table["config"] if c in set(long["config"])]
    parts = []
    for m in FLATNESS_METRICS:
        stats = long.groupby(["config", "alpha"], sort=False)[m].agg(["mean", "std", "count"])
        part = stats.rename(columns={"count": "n"}).reset_index()
        part.insert(2, "metric", m)
        parts.append(part)
    columns = ["config", "alpha", "metric", "mean", "std", "n"]
    curves = pd.concat(parts, ignore_index=True) if rows else pd.DataFrame(columns=columns)
    if not curves.empty:
        rank = {c: i for i, c in enumerate(order)}
        curves = curves.sort_values(
            ["metric", "config", "alpha"], kind="stable",
            key=lambda s: s.map(rank) if s.name == "config" else s).reset_index(drop=True)
    seeds = long.melt(id_vars=["config", "seed", "alpha"], value_vars=metrics,
                      var_name="metric", value_name="value")
    return FlatnessData(curves=curves[columns], configs=order, seeds=seeds)


def plot_flatness(data: FlatnessData, title: str) -> Any:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.8))
    colors = dict(zip(data.configs, _palette(len(data.configs))))
    markers = line_styles(data.configs)
    for ax, kind in zip(axes, ("loss", "err")):
        for cfg in data.configs:
            for split, style in (("val", "-"), ("train", "--")):
                metric = f"{split}_{kind}"
                line = data.curves[(data.curves["config"] == cfg)
                                   & (data.curves["metric"] == metric)]
                if line.empty:
                    continue
                x, mean = line["alpha"].to_numpy(), line["mean"].to_numpy(dtype=float)
                if split == "val" and data.seeds is not None and line["n"].max() > 1:
                    # Every seed as a thin line, not a ±std band (see plot_curves).
                    own = data.seeds[(data.seeds["config"] == cfg)
                                     & (data.seeds["metric"] == metric)]
                    for _, run in own.groupby("seed", sort=True):
                        ax.plot(run["alpha"].to_numpy(), run["value"].to_numpy(dtype=float),
                                color=colors[cfg], linewidth=0.9, alpha=0.6, zorder=1)
                ax.plot(x, mean, style, marker=markers[cfg].marker if split == "val" else None,
                        markersize=4, color=colors[cfg], label=f"{cfg} ({split})",
                        linewidth=markers[cfg].width if split == "val" else 1.4,
                        zorder=markers[cfg].zorder)
        for a in (0.0, 1.0):
            ax.axvline(a, color="gray", linewidth=0.8, linestyle=":")
        ax.set_xlabel("α  (0: initial weights θ₀, 1: final weights θ_final)")
        ax.set_ylabel("loss (cross-entropy)" if kind == "loss" else "error (%)")
        ax.set_title("loss" if kind == "loss" else "error")
        ax.grid(alpha=0.3)
        if kind == "loss":
            ax.set_yscale("log")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=2, frameon=False, fontsize=9)
    fig.suptitle(f"{title}: loss along θ(α) = (1−α)·θ₀ + α·θ_final, mean over seeds (thick), "
                 "every seed (thin)")
    rows = math.ceil(len(labels) / 2) if labels else 0
    fig.tight_layout(rect=(0, 0.03 + 0.045 * rows, 1, 1))
    return fig


def save(fig: Any, path: Any) -> None:
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=DPI)
    plt.close(fig)
