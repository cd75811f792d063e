"""Published numbers beside the measurements: each published single run against the 95%
prediction interval of one more run, and whether that interval is narrow enough to tell.

Imported by the report writer, the readings and the accuracy figure; it reads the summary's
table (hpo.reporting.tables) and nothing above it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from hpo.reporting import readings, render
from hpo.reporting.stats import t_quantile
from hpo.reporting.tables import CONFIDENCE, Summary, format_value, matches_row, short_names

if TYPE_CHECKING:
    import pandas as pd

    from hpo.spec import Reference


def prediction_interval(mean: float, std: float, n: int,
                        confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The 95% (``confidence``) interval where one more run would fall (t-based: mean ±
    t·s·√(1 + 1/n)); a published single run is one such run, so this, not the CI of the mean,
    is what it is compared with. NaN with fewer than 2 runs."""
    if n < 2 or not (math.isfinite(mean) and math.isfinite(std)):
        return math.nan, math.nan
    half = t_quantile(0.5 + confidence / 2, n - 1) * std * math.sqrt(1 + 1 / n)
    return mean - half, mean + half


# Other metrics (losses) tell where the interval's half-width is at most this share of its centre.
TELLS_SHARE = 0.1


def tells(metric: str, low: float, high: float, within: float) -> bool:
    """Whether a prediction interval is narrow enough to call a published value inside it
    consistent: accuracies at most ± ``within`` points; other metrics (losses) at most ±10% of
    the interval's centre (a loss of 0.5 ± 0.6 says nothing)."""
    half = (high - low) / 2
    if metric.endswith("_acc"):
        return half <= within
    return half <= TELLS_SHARE * abs((high + low) / 2)


def seeds_to_narrow(std: float, half_width: float) -> int | None:
    """Seeds per configuration whose 95% prediction interval of one run is at most
    ± ``half_width`` at this spread; None when no number up to 100 does (the runs themselves
    spread wider than that: the interval never gets below ±1.96·s)."""
    if not (math.isfinite(std) and std >= 0):
        return None
    for n in range(2, 101):
        if t_quantile(0.5 + CONFIDENCE / 2, n - 1) * std * math.sqrt(1 + 1 / n) \
                <= half_width:
            return n
    return None


def reference_table(summary: Summary, ref: Reference | None = None) -> pd.DataFrame | None:
    """A published table (``ref``, default the study's first) beside the measured means: one
    row per (published row, matching configuration); a published row naming a subset of the
    keys matches every configuration that agrees on those keys. ``difference`` is measured
    minus published."""
    import pandas as pd

    ref = ref if ref is not None else summary.study.reference
    if ref is None:
        return None
    m = ref.metric
    names = short_names(summary.keys)
    rows = []
    for params, value in ref.rows:
        published = ", ".join(f"{names.get(k, k)}={format_value(v)}" for k, v in params)
        matched = [row for row in summary.records() if matches_row(params, row)]
        if not matched:
            rows.append({"published_config": published, "config": None, "published": value})
        for row in matched:
            mean, lo, hi = row[f"{m}_mean"], row[f"{m}_ci_low"], row[f"{m}_ci_high"]
            pi_lo, pi_hi = prediction_interval(mean, row[f"{m}_std"], int(row["n"]))
            narrow = (tells(m, pi_lo, pi_hi, summary.study.config["consistent_within"])
                      if math.isfinite(pi_lo) else None)
            half = (pi_hi - pi_lo) / 2  # what `tells` judged: before clipping
            if math.isfinite(pi_lo):  # clipped as the CIs are: accuracies 0-100, losses >= 0
                pi_lo = max(pi_lo, 0.0)
                pi_hi = min(pi_hi, 100.0) if m.endswith("_acc") else pi_hi
            rows.append({
                "published_config": published, "config": row["config"], "published": value,
                "n": int(row["n"]), "mean": mean, "std": row[f"{m}_std"],
                "ci_low": lo, "ci_high": hi, "difference": mean - value,
                "published_in_ci": bool(lo <= value <= hi) if pd.notna(lo) else None,
                "pi_low": pi_lo, "pi_high": pi_hi, "pi_half": half,
                # Inside an interval too wide to tell says nothing: None, as with no interval.
                "published_in_pi": (None if not math.isfinite(pi_lo) else
                                    False if not pi_lo <= value <= pi_hi else
                                    True if narrow else None),
                "pi_tells": narrow,
                "seeds_to_tell": (None if narrow or narrow is None else seeds_to_narrow(
                    row[f"{m}_std"], summary.study.config["consistent_within"])),
            })
    columns = ["published_config", "config", "published", "n", "mean", "std", "ci_low",
               "ci_high", "difference", "published_in_ci", "pi_low", "pi_high", "pi_half",
               "published_in_pi", "pi_tells", "seeds_to_tell"]
    return pd.DataFrame(rows, columns=columns)


def published_lines(summary: Summary) -> list[str]:
    """The Published result and Readings sections ([] without published numbers); numbers
    from another setting are listed, never compared."""
    import pandas as pd

    published = readings.references(summary)
    if not published:
        return []
    lines: list[str] = []
    reason = readings.not_comparable(summary)
    if reason is not None:
        lines += ["## Published result", "", f"Not compared: {reason}.", ""]
        for source in published:
            rows = [{"published configuration": ", ".join(f"{k}={v}" for k, v in params),
                     f"published {source.metric}": f"{value:g}"}
                    for params, value in source.rows]
            lines += [f"Source: {source.source}." + (f" {source.note}" if source.note else ""),
                      "", pd.DataFrame(rows).to_markdown(index=False, disable_numparse=True),
                      ""]
        distances = readings.readings_markdown(summary)
        return lines + (["## Readings", "", distances, ""] if distances else [])
    lines += ["## Published result", ""]
    for source in published:  # every reference table, the single [reference] first
        ref = reference_table(summary, source)
        lines += [f"Source: {source.source}." + (f" {source.note}" if source.note else ""),
                  "", render.reference_display(ref, source.metric).to_markdown(
                      index=False, disable_numparse=True), ""]
    within = summary.study.config["consistent_within"]
    lines += ["The published numbers are single runs, so each is compared with the 95% "
              "prediction interval of one more run (mean ± t·s·√(1 + 1/n)), not with the "
              f"interval of the mean. A 'yes' needs an interval at most ±{within:g} points "
              "wide (`consistent_within`); inside a wider one the table says \"cannot "
              "tell\". A published run outside it is not by itself a contradiction: "
              "what differs from the seed's setting (the description at the top, Setup) "
              "may account for it.", ""]
    lines += [narrowing_line(summary, published, within), ""]
    distances = readings.readings_markdown(summary)
    if distances:
        lines += ["## Readings", "", distances, ""]
    return lines


def narrowing_line(summary: Summary, published: Sequence[Reference], within: float) -> str:
    """How many comparisons can tell, and what seeds the others need (or why none helps)."""
    refs = [reference_table(summary, source) for source in published]
    rows = [r for ref in refs for r in ref.to_dict("records") if r.get("config") is not None
            and r.get("pi_tells") is not None]
    # A published value outside the interval tells "no" however wide the interval is.
    outside = sum(1 for r in rows if not r["pi_tells"] and r["published_in_pi"] is False)
    wide = [r for r in rows if not r["pi_tells"] and r["published_in_pi"] is not False]
    return narrowing_text(len(rows), [(r["pi_high"] - r["pi_low"]) / 2 for r in wide],
                          [seeds_count(r["seeds_to_tell"]) for r in wide], within, outside)


def seeds_count(value: object) -> int | None:
    """A seeds count read back from a table: pandas stores a column of counts and Nones as
    floats and NaN."""
    return None if value is None or value != value else int(value)  # NaN != NaN


def narrowing_text(compared: int, wide_half_widths: Sequence[float],
                   needs: Sequence[int | None], within: float, outside: int = 0) -> str:
    """The line under the comparisons: ``compared`` rows with an interval, the half-widths of
    the wide ones that hold their published value and the seeds each needs (None: no number of
    seeds narrows it); ``outside``: wide ones whose published value lies outside, which tell
    as they are."""
    if not compared:
        return "No comparison has the 2 runs per configuration a prediction interval needs."
    also = (f"; {outside} more, wider, tell as they are: the published value lies outside"
            if outside else "")
    if not wide_half_widths:
        if not outside:
            return (f"All {compared} comparisons have an interval narrow enough to tell "
                    f"(±{within:g} points or less).")
        return (f"{compared - outside} of {compared} comparisons have an interval narrow "
                f"enough to tell (±{within:g} points or less){also}.")
    wide = len(wide_half_widths)
    text = (f"{compared - wide - outside} of {compared} comparisons have an interval narrow "
            f"enough to tell (±{within:g} points or less){also}; the widest of the rest is "
            f"±{max(wide_half_widths):.1f}." if outside else
            f"{compared - wide} of {compared} comparisons have an interval narrow enough "
            f"to tell (±{within:g} points or less); the widest is ±{max(wide_half_widths):.1f}.")
    decidable = [n for n in needs if n is not None]
    never = (f"the runs themselves spread more than ±{within:g} points (the interval never "
             "falls below ±1.96 standard deviations).")
    if not decidable:
        return text + f" No number of seeds would narrow them enough: {never}"
    text += (f" At the spread measured, {max(decidable)} seeds per configuration would "
             f"narrow {len(decidable)} of the {wide} wide ones enough")
    return text + ("." if len(decidable) == wide else f"; for the rest no number would: {never}")
