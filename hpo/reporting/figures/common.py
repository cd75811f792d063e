"""What every figure shares: metric labels, which configurations are drawn, colours, saving."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hpo.reporting.tables import Summary, config_key
from hpo.schema import ranked

if TYPE_CHECKING:
    import os

    import pandas as pd
    from matplotlib.figure import Figure

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


def unit_label(metric: str) -> str:
    return LABELS.get(metric, metric)


def shown_configs(summary: Summary, limit: int) -> tuple[list[str], int]:
    """Configurations (labels) to draw: all if few, else the best ``limit`` by the metric."""
    table = summary.table[summary.table["n"] > 0]
    if len(table) > limit:
        table = ranked(table, f"{summary.metric}_mean", summary.metric).head(limit)
        table = table.sort_index()
    return list(table["config"]), int((summary.table["n"] > 0).sum())


def complete_with_labels(summary: Summary) -> pd.DataFrame:
    keys = summary.keys
    done = summary.frame[summary.frame["state"] == "COMPLETE"]
    key_to_label = {config_key(tuple(r[k] for k in keys)): r["config"]
                    for r in summary.table.to_dict("records")}
    if keys:
        cfg = [key_to_label.get(config_key(v)) for v in done[keys].itertuples(index=False)]
    else:
        cfg = ["base configuration"] * len(done)
    return done.assign(config=cfg)


def palette(n: int) -> list[tuple[float, float, float]]:
    import seaborn as sns

    return sns.color_palette("tab10" if n <= 10 else "husl", n)


def tick(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def save(fig: Figure, path: str | os.PathLike[str]) -> None:
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=DPI)
    plt.close(fig)
