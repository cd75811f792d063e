"""Per-step training curves (``train.log_every``): R0 logged its loss every 10 iterations and
read "starts best, falls behind" and "the initial loss fluctuates" off that curve, which one
point per epoch cannot show."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hpo.reporting.figures.common import (
    MAX_CURVES,
    complete_with_labels,
    palette,
    shown_configs,
)
from hpo.reporting.tables import Summary

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure


def has_steps(summary: Summary) -> bool:
    return "steps" in summary.frame and summary.frame["steps"].map(
        lambda s: isinstance(s, dict) and bool(s.get("step"))).any()


def steps_data(summary: Summary, limit: int = MAX_CURVES) -> pd.DataFrame:
    """One row per (configuration, seed, logged step): config, seed, step, loss, acc."""
    import pandas as pd

    configs, _ = shown_configs(summary, limit)
    done = complete_with_labels(summary)
    rows = []
    for record in done.to_dict("records"):
        steps = record.get("steps")
        if record["config"] not in configs or not isinstance(steps, dict):
            continue
        for step, loss, acc in zip(steps["step"], steps["loss"], steps["acc"]):
            rows.append({"config": record["config"], "seed": record["seed"], "step": step,
                         "loss": loss, "acc": acc})
    frame = pd.DataFrame(rows, columns=["config", "seed", "step", "loss", "acc"])
    order = {c: i for i, c in enumerate(configs)}
    return frame.sort_values(["config", "seed", "step"], key=lambda col: col.map(order)
                             if col.name == "config" else col, kind="stable")


def plot_steps(data: pd.DataFrame, title: str, every: int) -> Figure:
    """Training loss and accuracy per logged window: mean over seeds thick, seeds thin."""
    import matplotlib.pyplot as plt

    configs = list(dict.fromkeys(data["config"]))
    colours = dict(zip(configs, palette(max(len(configs), 1))))
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, metric, label in ((axes[0], "loss", "training loss (window mean)"),
                              (axes[1], "acc", "training accuracy % (window mean)")):
        for config in configs:
            own = data[data["config"] == config]
            for _, seed in own.groupby("seed", sort=False):
                ax.plot(seed["step"], seed[metric], color=colours[config], lw=0.6, alpha=0.45)
            mean = own.groupby("step", sort=True)[metric].mean()
            ax.plot(mean.index, mean.to_numpy(), color=colours[config], lw=2.2, label=config)
        ax.set_xlabel(f"minibatch step (a point every {every})")
        ax.set_ylabel(label)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{title}: training curves every {every} minibatches")
    fig.tight_layout()
    return fig
