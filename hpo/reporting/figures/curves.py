"""Learning curves: mean and spread per configuration over the epochs."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

from hpo.reporting.figures.accuracy import strip_key
from hpo.reporting.figures.common import (
    CURVE_METRICS,
    MAX_CURVES,
    complete_with_labels,
    palette,
    shown_configs,
    unit_label,
)
from hpo.reporting.tables import Summary

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

# ---------------------------------------------------------------------------------------------
# Learning curves


@dataclass
class CurvesData:
    curves: pd.DataFrame  # columns: config, epoch, metric, mean, std, n
    configs: list[str]  # drawn, in table order
    total: int  # configurations with a complete run
    # columns: config, seed, epoch, metric, value (one line per run)
    seeds: pd.DataFrame | None = None


# Line styles: every configuration gets its own dash pattern and marker as well as its colour,
# so two configurations whose curves coincide (ReLU and ELU; momentum and Nesterov) stay
# distinguishable; configurations drawn earlier get wider lines, so one drawn later on top of
# them leaves their edges visible.
# A matplotlib line style: a name ("-"), or (offset, on-off lengths in points).
Dash: TypeAlias = "str | tuple[float, tuple[float, ...]]"
DASHES: tuple[Dash, ...] = ("-", (0, (6, 2)), (0, (2, 1.5)), (0, (6, 2, 1.5, 2)), (0, (10, 3)),
                           (0, (1, 1)), (0, (4, 1, 1, 1, 1, 1)), (0, (8, 2, 2, 2)))
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")
WIDEST, NARROWEST = 3.4, 1.2


@dataclass(frozen=True)
class LineStyle:
    dash: Dash
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
    done = complete_with_labels(summary)
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


def plot_curves(data: CurvesData, title: str) -> Figure:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5), sharex=True)
    colors = dict(zip(data.configs, palette(len(data.configs))))
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
        ax.set_title(unit_label(metric).split(" (")[0])
        ax.set_ylabel(unit_label(metric))
        ax.grid(alpha=0.3)
    for ax in axes[1]:
        ax.set_xlabel("epoch")
    for ax in axes.flat:
        ax.xaxis.get_major_locator().set_params(integer=True)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    if not handles:
        handles, labels = axes[1, 0].get_legend_handles_labels()
    labels, legend_title = strip_key(labels)
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
