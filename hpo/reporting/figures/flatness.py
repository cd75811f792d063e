"""Flatness: the loss along theta(alpha) = (1 - alpha) theta_0 + alpha theta_final."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hpo.reporting.figures.common import complete_with_labels, palette
from hpo.reporting.figures.curves import line_styles
from hpo.reporting.tables import Summary

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

# ---------------------------------------------------------------------------------------------
# Flatness: loss along theta(alpha) = (1 - alpha) theta_0 + alpha theta_final


FLATNESS_METRICS = ("val_loss", "val_err", "train_loss", "train_err")


@dataclass
class FlatnessData:
    curves: pd.DataFrame  # columns: config, alpha, metric, mean, std, n
    configs: list[str]  # in table order
    # columns: config, seed, alpha, metric, value (one line per run)
    seeds: pd.DataFrame | None = None


def flatness_data(summary: Summary) -> FlatnessData:
    """Per configuration, alpha and metric: mean and std over the seeds' flatness curves
    (complete trials with a ``flatness`` attribute; non-finite losses left out)."""
    import numpy as np
    import pandas as pd

    done = complete_with_labels(summary)
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


def plot_flatness(data: FlatnessData, title: str) -> Figure:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.8))
    colors = dict(zip(data.configs, palette(len(data.configs))))
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
