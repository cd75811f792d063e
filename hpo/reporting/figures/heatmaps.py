"""Heat maps of two-parameter grids, coloured within seed noise of the best cell."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hpo.reporting.figures.common import tick, unit_label
from hpo.reporting.render import fmt_num, pivot_numeric
from hpo.reporting.tables import Summary, short_names

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

# ---------------------------------------------------------------------------------------------
# Heat maps of two-parameter grids


@dataclass
class HeatmapData:
    keys: tuple[str, str]
    matrices: dict[str, pd.DataFrame] = field(default_factory=dict)  # metric -> numeric pivot
    # metric -> bool pivot: the best cell and the cells whose Welch p against it is >= ALPHA
    # (accuracy and loss maps only; a cell with n < 2 is not marked: it cannot be tested)
    within_noise: dict[str, pd.DataFrame] = field(default_factory=dict)
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)  # colour scale


# The colour scale of an accuracy map spans at least MIN_SPAN_POINTS points or MIN_SPAN_STDS
# times the largest seed std of a cell, below the best cell: differences within seed noise
# then look like the near-uniform colour they are, not like the full gradient.
MIN_SPAN_POINTS, MIN_SPAN_STDS = 5.0, 4.0


def heatmap_data(summary: Summary, metrics: tuple[str, ...] = ("test_acc", "time")
                 ) -> HeatmapData:
    """Numeric pivots of ``metrics`` ("time": the time the report's tables show, CPU time when
    workers ran side by side, see timing.time_basis), which cells of the accuracy/loss maps are
    within noise of the best, and each map's colour range."""
    import numpy as np

    from hpo.reporting.timing import time_basis

    basis = time_basis(summary).metric
    metrics = tuple(basis if m == "time" else m for m in metrics)
    data = HeatmapData(keys=tuple(summary.keys),
                       matrices={m: pivot_numeric(summary, m) for m in metrics})
    for m in metrics:
        if m.endswith(("_acc", "_loss")):
            data.within_noise[m], span = _within_noise(summary, m)
            data.ranges[m] = colour_range(data.matrices[m], m, span)
        else:
            values = data.matrices[m].to_numpy(dtype=float)
            data.ranges[m] = (float(np.nanmin(values)), float(np.nanmax(values)))
    return data


def _within_noise(summary: Summary, metric: str) -> tuple[pd.DataFrame, float]:
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
        # Judged as the tables judge: fewer than min_seeds runs on a side is no ground.
        marked = np.asarray(p >= ALPHA) & (n >= summary.min_seeds) & (n[best] >= summary.min_seeds)
        marked[best] = True
    if "collapsed" in table:  # a cell with runs at chance is no rival, however wide its spread
        marked &= table["collapsed"].fillna(0).to_numpy() == 0
    frame = table.assign(_marked=marked)
    matrix = pivot(frame, summary.keys, "_marked").fillna(False).astype(bool)
    spread = float(np.nanmax(std)) if np.isfinite(std).any() else 0.0
    return matrix, spread


def colour_range(matrix: pd.DataFrame, metric: str, spread: float) -> tuple[float, float]:
    import numpy as np

    values = matrix.to_numpy(dtype=float)
    if not np.isfinite(values).any():
        return (0.0, 1.0)
    low, high = float(np.nanmin(values)), float(np.nanmax(values))
    span = max(MIN_SPAN_STDS * spread, MIN_SPAN_POINTS if metric.endswith("_acc") else 0.0)
    if metric.endswith("_loss"):
        return low, max(high, low + span)
    return max(min(low, high - span), 0.0), high  # an accuracy is >= 0


def plot_heatmaps(data: HeatmapData, title: str) -> Figure:
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
                    vmin=low, vmax=high, cbar_kws={"label": unit_label(metric)},
                    linewidths=0.5)
        marks = data.within_noise.get(metric)
        if marks is not None:
            for i in range(marks.shape[0]):
                for j in range(marks.shape[1]):
                    if marks.iat[i, j]:
                        ax.add_patch(Rectangle((j + 0.05, i + 0.05), 0.9, 0.9, fill=False,
                                               edgecolor="black", linewidth=2.5))
        outlined = "\noutlined: best and not significantly different\n(no run at chance)"
        ax.set_title(f"mean {unit_label(metric)}" + (outlined if marks is not None else ""))
        ax.set_ylabel(names[data.keys[0]])
        ax.set_xlabel(names[data.keys[1]])
        ax.set_yticklabels([tick(v) for v in matrix.index], rotation=0)
        ax.set_xticklabels([tick(v) for v in matrix.columns], rotation=0)
    fig.suptitle(f"{title}: {names[data.keys[0]]} × {names[data.keys[1]]} (mean over seeds)")
    fig.tight_layout()
    return fig
