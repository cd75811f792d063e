"""The ranking metric per configuration: bars with their seed spread and a reference."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hpo.reporting.figures.common import (
    MAX_BARS,
    complete_with_labels,
    shown_configs,
    unit_label,
)
from hpo.reporting.tables import Summary

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

# ---------------------------------------------------------------------------------------------
# Accuracy per configuration


@dataclass
class AccuracyData:
    metric: str
    bars: pd.DataFrame  # config, mean, ci_low, ci_high, n, best (table order)
    seeds: pd.DataFrame  # config, value: one point per run
    reference: pd.DataFrame  # config, value: published numbers, when the study has a reference
    total: int
    ranked_by: str = "val_acc"  # the metric that picked the best row


def accuracy_data(summary: Summary, metric: str = "test_acc",
                  limit: int = MAX_BARS) -> AccuracyData:
    import pandas as pd

    from hpo.reporting.published import reference_table

    configs, total = shown_configs(summary, limit)
    table = summary.table[summary.table["config"].isin(configs)]
    bars = pd.DataFrame({
        "config": table["config"], "mean": table[f"{metric}_mean"],
        "ci_low": table[f"{metric}_ci_low"], "ci_high": table[f"{metric}_ci_high"],
        "n": table["n"], "best": table["best"],
    }).reset_index(drop=True)
    done = complete_with_labels(summary)
    done = done[done["config"].isin(configs)]
    seeds = pd.DataFrame({"config": done["config"],
                          "value": pd.to_numeric(done[metric], errors="coerce")})
    seeds = seeds.reset_index(drop=True)
    from hpo.reporting.readings import not_comparable

    ref = reference_table(summary)
    if ref is not None and summary.study.reference.metric == metric \
            and not_comparable(summary) is None:
        ref = ref[ref["config"].isin(configs)]
        reference = pd.DataFrame({"config": ref["config"], "value": ref["published"]})
    else:
        reference = pd.DataFrame(columns=["config", "value"])
    return AccuracyData(metric=metric, bars=bars, seeds=seeds,
                        reference=reference.reset_index(drop=True), total=total,
                        ranked_by=summary.metric)


def strip_key(labels: list[str]) -> tuple[list[str], str]:
    """With one varied key, ``lr=0.001`` reads better as ``0.001`` under an axis named lr."""
    heads = {lb.split("=", 1)[0] for lb in labels if "=" in lb and ", " not in lb}
    if len(heads) == 1 and all(lb.count("=") == 1 and ", " not in lb for lb in labels):
        return [lb.split("=", 1)[1] for lb in labels], heads.pop()
    return labels, "configuration"


def plot_accuracy(data: AccuracyData, title: str, reference_source: str = "") -> Figure:
    import matplotlib.pyplot as plt
    import numpy as np

    n = len(data.bars)
    height = 2.2 + 0.42 * max(n, 1)
    labels, axis_name = strip_key(list(data.bars["config"]))
    shown = "" if n >= data.total else f" (best {n} of {data.total})"
    heading = f"{title}: {unit_label(data.metric).split(' (')[0]} per configuration{shown}"
    # Wide enough for the longest tick label beside a readable plot and for the title, so
    # neither is clipped (at 10 pt about 0.085 inch a character).
    longest = max((len(str(label)) for label in labels), default=0)
    width = max(9.0, 5.0 + 0.085 * longest, 1.0 + 0.09 * len(heading))
    fig, ax = plt.subplots(figsize=(width, height))
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
    ax.set_yticks(range(n), labels)
    ax.set_ylim(n - 0.5, -0.5)
    ax.set_ylabel(axis_name)
    ax.set_xlabel(unit_label(data.metric))
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(heading)
    handles, texts = ax.get_legend_handles_labels()
    fig.legend(handles, texts, loc="lower center", ncol=2, frameon=False, fontsize=9)
    rows = math.ceil(len(texts) / 2)
    fig.tight_layout(rect=(0, (0.15 + 0.25 * rows) / height, 1, 1))
    return fig
