"""Tables as text: Markdown, LaTeX, CSV and the terminal, all from one display frame."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, TypeGuard

from hpo.reporting.tables import ALPHA, STATE_COLUMNS, Summary, pivot, short_names
from hpo.reporting.timing import time_basis

if TYPE_CHECKING:
    import pandas as pd

# The per-configuration columns of the main table: metric and header.
SHOWN_METRICS = {
    "train_loss": "train loss",
    "train_acc": "train acc %",
    "val_acc": "val acc %",
    "test_acc": "test acc %",
}
PIVOT_METRICS = {
    "train_loss": "final training loss",
    "train_acc": "training accuracy (%)",
    "val_acc": "validation accuracy (%)",
    "test_acc": "test accuracy (%)",
    "wall_time": "wall time per run (s)",
    "cpu_time": "CPU time per run (s)",
}
DASH = "–"


def _finite(x: object) -> TypeGuard[float]:
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x)


def fmt_num(x: object, metric: str) -> str:
    if not _finite(x):
        return DASH
    if metric.endswith("_loss"):
        return f"{x:.3f}" if abs(x) >= 0.01 or x == 0 else f"{x:.2e}"
    if metric in ("wall_time", "cpu_time"):
        return f"{x:.2f}" if x < 100 else f"{x:.0f}"
    return f"{x:.2f}"


def fmt_stat(row: Mapping[str, object] | pd.Series, metric: str, ci: bool = True) -> str:
    """``80.87 ± 1.53 [77.06, 84.68]``: mean ± std over seeds, then the 95% interval, all in
    the mean's format (a tiny loss switches all four to scientific notation)."""
    mean = row[f"{metric}_mean"]
    if not _finite(mean):
        return "diverged" if metric.endswith("_loss") and row.get("diverged", 0) else DASH
    std = row[f"{metric}_std"]

    def fmt(x: object) -> str:
        if metric.endswith("_loss") and _finite(x) and 0 < abs(mean) < 0.01:
            return f"{x:.2e}"
        return fmt_num(x, metric) if not metric.endswith("_loss") else (
            f"{x:.3f}" if _finite(x) else DASH)

    text = fmt(mean)
    if _finite(std):
        text += f" ± {fmt(std)}"
        if ci:
            text += f" [{fmt(row[f'{metric}_ci_low'])}, {fmt(row[f'{metric}_ci_high'])}]"
    return text


def fmt_p(row: Mapping[str, object], least: int = 2, best_n: int = 0) -> str:
    """A row's Welch p against the best row, labelled; a comparison with fewer than ``least``
    runs on a side (min_seeds, as for claims), or of a row with runs at chance, is printed but
    not judged either way."""
    if row["best"]:
        return "best"
    p = row["p_value"]
    if not _finite(p):
        return "n/a (n < 2)" if row["n"] >= 1 else DASH
    shown = f"{p:.3f}" if p >= 0.001 else "<0.001"
    if min(int(row["n"]), best_n) < least:
        return f"{shown} (n < {least}: not judged)"
    collapsed = row.get("collapsed", 0)
    if _finite(collapsed) and collapsed > 0:
        # A mean over runs of which some ended at chance is no rival's mean (a bimodal spread).
        return f"{shown} ({int(collapsed)} of {int(row['n'])} at chance: not judged)"
    return f"{shown} ({'significant' if p < ALPHA else 'not significant'})"


def display_table(summary: Summary, limit: int | None = None) -> pd.DataFrame:
    """The main table as strings: one row per configuration, the columns a reader needs.

    State columns (pruned, failed, running, waiting) appear only when the study has such
    trials; ``limit`` keeps the first rows (tuning studies are sorted best first).
    """
    import pandas as pd

    table = summary.table if limit is None else summary.table.head(limit)
    names = short_names(summary.keys)
    metrics = dict(SHOWN_METRICS)
    if summary.metric not in metrics:
        metrics[summary.metric] = summary.metric.replace("_", " ")
    out = pd.DataFrame(index=table.index)
    records = table.to_dict("records")
    if summary.keys:
        for key in summary.keys:
            out[names[key]] = [fmt_key(v) for v in table[key]]
    else:
        out["configuration"] = table["config"]
    out["n"] = [_fmt_n(r) for r in records]
    for metric, header in metrics.items():
        out[header] = [fmt_stat(r, metric) for r in records]
    basis = time_basis(summary)
    per_epoch = ("cpu_epoch_seconds_mean" if basis.metric == "cpu_time"
                 else "epoch_seconds_mean")
    # Both per-run times where CPU time was recorded: wall time is what a user waits, CPU time
    # what the trial cost (the one that stays comparable when workers share cores).
    out["wall time/run (s)"] = [fmt_num(x, "wall_time") for x in table["wall_time_mean"]]
    if "cpu_time_mean" in table and table["cpu_time_mean"].notna().any():
        out["CPU time/run (s)"] = [fmt_num(x, "wall_time") for x in table["cpu_time_mean"]]
    out[f"{basis.label}/epoch (s)"] = [f"{x:.3g}" if _finite(x) else DASH
                                       for x in table[per_epoch]]
    target = float(summary.study.config.get("target_acc") or 0)
    if target > 0 and "epochs_to_target_mean" in table:
        out[f"epochs to {target:g}% val"] = [
            (f"{r['epochs_to_target_mean']:.3g}" if _finite(r["epochs_to_target_mean"])
             else DASH) + f" ({int(r['reached_target'])} of {int(r['n'])})"
            for r in records]
    out["params"] = [_params_cell(total, trained) for total, trained in zip(
        table["n_params"], table.get("n_trainable", [math.nan] * len(table)))]
    out["epochs"] = [f"{x:.3g}" if _finite(x) else DASH for x in table["epochs_run_mean"]]
    # A run that diverged (non-finite loss), or one that ended with its training accuracy at
    # chance without diverging (it never learned, or collapsed): the count of each.
    collapsed = table["collapsed"] if "collapsed" in table else [0] * len(table)
    out["diverged / at chance"] = [f"{int(d)} / {int(c)}"
                                   for d, c in zip(table["diverged"], collapsed)]
    for column in STATE_COLUMNS.values():
        if column != "n" and summary.table[column].sum() > 0:
            out[column] = table[column].astype(int).astype(str)
    least = summary.min_seeds
    best_n = int(summary.best["n"]) if summary.best is not None else 0
    out[f"vs best (Welch p, {summary.metric})"] = [fmt_p(r, least, best_n) for r in records]
    return out.reset_index(drop=True)


def fmt_key(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return DASH
    return f"{value:g}" if isinstance(value, float) else str(value)


def _fmt_n(row: Mapping[str, object]) -> str:
    n, asked = int(row["n"]), int(row["n_asked"])
    return f"{n}" if n >= asked else f"{n} of {asked}"


def markdown_table(frame: pd.DataFrame, bold_rows: tuple[int, ...] = ()) -> str:
    frame = frame.copy()
    for i in bold_rows:
        frame.iloc[i, 0] = f"**{frame.iloc[i, 0]}**"
    return frame.to_markdown(index=False, disable_numparse=True)


def best_rows(summary: Summary, limit: int | None = None) -> tuple[int, ...]:
    best = summary.table.index[summary.table["best"]].tolist()
    return tuple(i for i in best if limit is None or i < limit)


def terminal_table(summary: Summary, limit: int | None = None) -> str:
    from tabulate import tabulate

    frame = display_table(summary, limit)
    frame = frame.drop(columns=[c for c in ("params",) if c in frame])
    return tabulate(frame, headers="keys", tablefmt="simple", showindex=False,
                    disable_numparse=True)


def pivot_display(summary: Summary, metric: str) -> pd.DataFrame:
    """A two-way grid's ``metric`` as mean ± std strings, rows the first key."""
    table = summary.table.copy()
    if metric in ("wall_time", "cpu_time"):
        table["cell"] = [fmt_num(x, metric) for x in table[f"{metric}_mean"]]
    else:
        table["cell"] = [fmt_stat(r, metric, ci=False) for r in table.to_dict("records")]
    names = short_names(summary.keys)
    matrix = pivot(table, summary.keys, "cell")
    matrix.index = [fmt_key(v) for v in matrix.index]
    matrix.columns = [f"{names[summary.keys[1]]}={fmt_key(v)}" for v in matrix.columns]
    matrix.index.name = f"{names[summary.keys[0]]}"
    return matrix.fillna(DASH)


def pivot_numeric(summary: Summary, metric: str) -> pd.DataFrame:
    column = f"{metric}_mean"
    return pivot(summary.table, summary.keys, column).astype(float)


def reference_display(ref: pd.DataFrame, metric: str) -> pd.DataFrame:
    import pandas as pd

    out = pd.DataFrame({
        "published configuration": ref["published_config"],
        "measured configuration": ref["config"].fillna("(not in this study)"),
        f"published {metric}": [fmt_num(x, metric) for x in ref["published"]],
        "n": [str(int(x)) if _finite(x) else DASH for x in ref["n"]],
        f"measured {metric} mean ± std [95% CI]": [
            fmt_stat({f"{metric}_{k}": r[k] for k in ("mean", "std", "ci_low", "ci_high")},
                     metric) for r in ref.to_dict("records")],
        "difference (measured − published)": [
            f"{x:+.2f}" if _finite(x) else DASH for x in ref["difference"]],
        "95% prediction interval of one run": [
            f"[{fmt_num(lo, metric)}, {fmt_num(hi, metric)}]" if _finite(lo) else DASH
            for lo, hi in zip(ref["pi_low"], ref["pi_high"])],
        "published inside it": [_inside_cell(r) for r in ref.to_dict("records")],
    })
    return out


def _inside_cell(row: dict) -> str:
    """yes / no / cannot tell (an interval too wide for a 'yes' to mean anything)."""
    inside = row["published_in_pi"]
    if inside is True or inside is False:
        return "yes" if inside else "no"
    lo, hi = row["pi_low"], row["pi_high"]
    if not (_finite(lo) and lo <= row["published"] <= hi):
        return DASH
    # The half-width the rule judged (before clipping to 0-100%), not the clipped one shown.
    half = row.get("pi_half", (hi - lo) / 2)
    # One decimal, but never rounded onto a round limit it exceeds (±3.03 shows ±3.03).
    shown = f"{half:.1f}"
    if float(shown).is_integer() and not float(half).is_integer():
        shown = f"{half:.2f}"
    return f"cannot tell (±{shown})"


# ---------------------------------------------------------------------------------------------
# LaTeX

LATEX_SPECIALS = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
}
LATEX_SYMBOLS = {"±": r"$\pm$", "–": "--", "−": "$-$", "<": r"$<$"}


LATEX_PAGE_ROWS = 40


def latex_escape(text: str) -> str:
    out = "".join(LATEX_SPECIALS.get(c, c) for c in str(text))
    for symbol, latex in LATEX_SYMBOLS.items():
        out = out.replace(symbol, latex)
    return out


def latex_table(summary: Summary) -> str:
    """The main table as a booktabs ``table`` (``\\usepackage{booktabs}``), or a ``longtable``
    past LATEX_PAGE_ROWS rows."""
    frame = display_table(summary)
    frame = frame.map(latex_escape)
    frame.columns = [latex_escape(c) for c in frame.columns]
    caption = latex_escape(
        f"{summary.name}: mean ± std over seeds [95% t-interval]; last column: two-sided "
        f"Welch's t-test of {summary.metric} against the best row."
    )
    # Tables longer than a page need longtable (\usepackage{longtable}).
    return frame.to_latex(index=False, escape=False, caption=caption,
                          label=f"tab:{summary.name}", column_format="l" * frame.shape[1],
                          longtable=len(frame) > LATEX_PAGE_ROWS)


def csv_table(summary: Summary) -> str:
    return summary.table.to_csv(index=False)


def _params_cell(total: object, trained: object) -> str:
    """Parameter count, with the trained ones where fewer are (a frozen network's head)."""
    if not _finite(total):
        return DASH
    if _finite(trained) and int(trained) < int(total):
        return f"{int(total):,} ({int(trained):,} trained)"
    return f"{int(total):,}"
