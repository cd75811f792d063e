"""Readings: how far each plausible reading of a seed lands from the seed's published numbers.

A study's ``readings`` key names [space] dimensions whose values are plausible readings of what
the seed left open (e.g. ``["train.optimizer"]``); one *reading* is one combination of their
values. Per reading, every published row of every reference table (``study.references``, the
single ``[reference]`` first) is matched to the configurations of that reading that agree on the
keys the row names, and the measured mean of the table's metric is compared with the published
value. The distance of a reading is the mean absolute difference over those comparisons, with a
95% t-interval over the comparisons' absolute differences (n − 1 degrees of freedom; none with
fewer than 2 comparisons). Differences are pooled as the tables print them: an accuracy point
weighs as much as one unit of loss, so accuracy tables dominate a pooled distance; the
per-metric distances are kept beside it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from hpo.reporting.stats import t_quantile
from hpo.reporting.tables import (
    CONFIDENCE,
    Summary,
    format_value,
    in_reading,
    matches_row,
    short_names,
)
from hpo.schema import norm

if TYPE_CHECKING:
    import pandas as pd

Reading = tuple[tuple[str, Any], ...]
COLUMNS = ["reading", "pairs", "rows", "mean_abs_diff", "ci_low", "ci_high", "closest",
           "inside", "with_interval", "outside", "judged"]


def reading_keys(summary: Summary) -> list[str]:
    """The study's ``readings`` that are varied in this study (stores made before the key
    existed have none)."""
    keys = summary.study.config.get("readings", None) or []
    return [k for k in keys if k in summary.keys]


def references(summary: Summary) -> tuple[Any, ...]:
    """Every reference table of the study: ``study.references`` when the spec has it, else the
    single ``study.reference``."""
    refs = getattr(summary.study, "references", None)
    if refs is not None:
        return tuple(refs)
    ref = summary.study.reference
    return () if ref is None else (ref,)


def not_comparable(summary: Summary) -> str | None:
    """Why the published numbers must not be compared with these measurements (None: they
    may): the study ran on another dataset than the seed's, or its file says the seed's
    setting differs (``compare_reference = false``)."""
    seed = off_seed_dataset(summary)
    if seed:
        return (f"the published numbers are for {seed}; this study ran on "
                f"{summary.study.config['dataset']}")
    if not summary.study.config.get("compare_reference", True):
        return ("the published numbers come from another setting than this study's (its "
                "description says how), so they are listed for context only")
    return None


def off_seed_dataset(summary: Summary) -> str | None:
    """The seed's dataset when this study ran on another one (its published numbers then rank
    no reading: a digits run says nothing about which reading reproduces an MNIST table)."""
    seed = summary.study.config.get("seed_dataset")
    return seed if seed and seed != summary.study.config["dataset"] else None


def readings_of(summary: Summary) -> list[Reading]:
    """Each reading as sorted (key, value) pairs, in table order; [] without readings."""
    keys = reading_keys(summary)
    if not keys:
        return []
    out: list[Reading] = []
    for row in summary.records():
        if any(norm(row[k]) is None for k in keys):
            continue  # a configuration without a reading key belongs to every reading
        reading = tuple(sorted((k, row[k]) for k in keys))
        if reading not in out:
            out.append(reading)
    return out


def reading_label(summary: Summary, reading: Reading) -> str:
    names = short_names(summary.keys)
    return ", ".join(f"{names.get(k, k)}={format_value(v)}" for k, v in reading)


def _differences(summary: Summary, reading: Reading) -> list[tuple[str, float, bool | None]]:
    """(metric, measured mean − published, whether the published value lies inside the 95%
    prediction interval of one run: None without one, or inside one too wide to tell) for every
    (reference row, configuration of this reading) pair where both are finite."""
    from hpo.reporting.published import prediction_interval, tells

    within = summary.study.config["consistent_within"]
    rows = [r for r in summary.records() if in_reading(reading, r)]
    out = []
    for ref in references(summary):
        for params, value in ref.rows:
            for row in rows:
                if not matches_row(params, row):
                    continue
                mean = row.get(f"{ref.metric}_mean")
                if mean is not None and math.isfinite(mean) and math.isfinite(value):
                    low, high = prediction_interval(float(mean), float(row.get(
                        f"{ref.metric}_std", math.nan)), int(row.get("n", 0)))
                    inside = low <= value <= high if math.isfinite(low) else None
                    if inside and not tells(ref.metric, low, high, within):
                        inside = None  # a 'yes' from an interval this wide means nothing
                    out.append((ref.metric, float(mean) - float(value), inside))
    return out


def contradictions(summary: Summary, reading: Reading) -> tuple[int, int]:
    """(how many published values lie outside the reading's one-run prediction interval at 95%
    jointly over the reading's k comparisons (each at 1 − 0.05/k, Bonferroni), k): with nine
    rows, a reading that is the seed's setting would have one outside its per-row 95% interval
    by chance in a third of studies. Outside tells at any width. k counts the rows with at
    least two runs (an interval needs a spread)."""
    from hpo.reporting.published import prediction_interval

    rows = [r for r in summary.records() if in_reading(reading, r)]
    pairs = [(value, row, ref.metric) for ref in references(summary)
             for params, value in ref.rows for row in rows if matches_row(params, row)]
    spreads = [(value, float(row.get(f"{m}_mean", math.nan)),
                float(row.get(f"{m}_std", math.nan)), int(row.get("n", 0)))
               for value, row, m in pairs]
    usable = [x for x in spreads if x[3] >= 2 and all(map(math.isfinite, x[:3]))]
    level = 1 - (1 - CONFIDENCE) / max(len(usable), 1)
    outside = 0
    for value, mean, std, n in usable:
        low, high = prediction_interval(mean, std, n, level)
        outside += not low <= value <= high
    return outside, len(usable)


def _t_interval(values: list[float]) -> tuple[float, float, float]:

    n = len(values)
    if n == 0:
        return math.nan, math.nan, math.nan
    mean = sum(values) / n
    if n < 2:
        return mean, math.nan, math.nan
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_quantile(0.5 + CONFIDENCE / 2, n - 1) * std / math.sqrt(n)
    return mean, max(mean - half, 0.0), mean + half


def reading_distances(summary: Summary) -> pd.DataFrame:
    """One row per reading: ``reading`` (label), ``pairs`` (the Reading), ``rows`` (comparisons),
    ``mean_abs_diff`` with ``ci_low``/``ci_high`` (95% t-interval), ``closest`` (bool), and per
    reference metric ``rows_<metric>`` and ``mean_abs_diff_<metric>``. Empty without readings or
    reference."""
    import pandas as pd

    readings = readings_of(summary)
    refs = references(summary)
    metrics = list(dict.fromkeys(ref.metric for ref in refs))
    columns = COLUMNS + [c for m in metrics for c in (f"rows_{m}", f"mean_abs_diff_{m}")]
    if not readings or not refs or not_comparable(summary):
        return pd.DataFrame(columns=columns)
    records = []
    for reading in readings:
        diffs = _differences(summary, reading)
        mean, low, high = _t_interval([abs(d) for _, d, _ in diffs])
        outside, judged = contradictions(summary, reading)
        rec: dict[str, Any] = {"reading": reading_label(summary, reading), "pairs": reading,
                               "rows": len(diffs), "mean_abs_diff": mean, "ci_low": low,
                               "ci_high": high, "closest": False,
                               "inside": sum(1 for *_, i in diffs if i),
                               "with_interval": sum(1 for *_, i in diffs if i is not None),
                               "outside": outside, "judged": judged}
        for m in metrics:
            own = [abs(d) for metric, d, _ in diffs if metric == m]
            rec[f"rows_{m}"] = len(own)
            rec[f"mean_abs_diff_{m}"] = sum(own) / len(own) if own else math.nan
        records.append(rec)
    frame = pd.DataFrame(records, columns=columns)
    finite = frame["mean_abs_diff"].notna()
    if finite.any():
        frame.loc[frame.loc[finite, "mean_abs_diff"].idxmin(), "closest"] = True
    return frame


def closest_reading(summary: Summary) -> Reading | None:
    """The reading the published numbers single out: the one with the smallest mean absolute
    difference to the reference rows when its interval lies below every other reading's, else
    the only one that no published value contradicts (every other reading has one outside its
    95% prediction interval of one run: outside tells at any width). None otherwise (no
    readings, no reference, no comparable row, or none singled out)."""
    frame = reading_distances(summary)
    hit = frame[frame["closest"]]
    # Claims are judged in this reading: one that the data do not single out must not decide
    # which setting a verdict speaks for.
    if not hit.empty and (len(frame) == 1 or clearly_closest(frame)):
        return hit.iloc[0]["pairs"]
    only = only_uncontradicted(frame)
    return None if only is None else only["pairs"]


def only_uncontradicted(frame: pd.DataFrame) -> dict | None:
    """The one reading, of two or more, that no published value contradicts while every other
    reading has one outside its one-run prediction interval (jointly over its rows:
    contradictions); None if not exactly one."""
    compared = frame[frame["rows"] > 0]
    clean = compared[compared["outside"] == 0]
    if len(compared) < 2 or len(clean) != 1:
        return None
    return clean.iloc[0].to_dict()


def clearly_closest(frame: pd.DataFrame) -> bool:
    """Whether the closest reading's interval lies below every other reading's interval (else
    the data do not single it out)."""
    best = frame[frame["closest"]]
    if best.empty:
        return False
    high = best.iloc[0]["ci_high"]
    others = frame[~frame["closest"] & frame["mean_abs_diff"].notna()]
    if not math.isfinite(high) or others["ci_low"].isna().any():
        return False
    return bool((others["ci_low"] > high).all())


def _readings_table(frame: pd.DataFrame, metrics: list[str]) -> list[str]:
    """The Readings table's lines: one row per reading."""
    from hpo.reporting.render import fmt_num

    apart = metrics if len(metrics) > 1 else []  # per-metric columns only when pooled
    lines = ["| reading | rows compared | mean \\|difference\\| [95% CI] | "
             + "".join(f"mean \\|difference\\| {m} (rows) | " for m in apart)
             + "published inside the 95% prediction interval of one run (where narrow enough "
             "to tell) | published outside it at 95% jointly over the rows (contradicts) | "
             "closest |",
             "|---|---|---|" + "---|" * len(apart) + "---|---|---|"]
    for r in frame.to_dict("records"):
        dist = fmt_num(r["mean_abs_diff"], "acc")
        if math.isfinite(r["ci_low"]):
            dist += f" [{fmt_num(r['ci_low'], 'acc')}, {fmt_num(r['ci_high'], 'acc')}]"
        per = "".join(f"{fmt_num(r[f'mean_abs_diff_{m}'], m)} ({r[f'rows_{m}']}) | "
                      for m in apart)
        inside = (f"{r['inside']} of {r['with_interval']}" if r["with_interval"] else "–")
        if r["rows"] > r["with_interval"]:
            inside += f"; {r['rows'] - r['with_interval']} cannot tell"
        outside = f"{r['outside']} of {r['judged']}" if r["judged"] else "–"
        lines.append(f"| {r['reading']} | {r['rows']} | {dist} | {per}{inside} | {outside} | "
                     f"{'**closest**' if r['closest'] else ''} |")
    return lines


def readings_markdown(summary: Summary) -> str:
    """The report's Readings section body ("" when the study has no readings or reference)."""

    frame = reading_distances(summary)
    seed = off_seed_dataset(summary)
    if seed and readings_of(summary) and references(summary):
        return (f"The published numbers are for {seed}; this study ran on "
                f"{summary.study.config['dataset']}, so they rank none of the readings ("
                + ", ".join(f"`{k}`" for k in reading_keys(summary))
                + f"). Run it with `--dataset {seed}` for that comparison.")
    if frame.empty:
        return ""
    metrics = [c[len("rows_"):] for c in frame.columns if c.startswith("rows_")]
    lines = _readings_table(frame, metrics)
    text = ("Per reading (a combination of the values the seed left open: "
            + ", ".join(f"`{k}`" for k in reading_keys(summary))
            + "), the mean absolute difference between the measured means and the published "
            "values over the reference rows ("
            + ", ".join(f"{m}" for m in metrics)
            + "), with a 95% t-interval over the rows' absolute differences (none with fewer "
            "than 2 rows; descriptive only: the rows share configurations and metrics, so they "
            "are not independent samples).")
    if len(metrics) > 1:
        text += (" Rows of all tables are pooled as printed (an accuracy point weighs as much "
                 "as a unit of loss); the further columns give each metric alone.")
    best = frame[frame["closest"]]
    only = only_uncontradicted(frame)
    if not best.empty and len(frame) > 1:
        text += f" Closest: **{best.iloc[0]['reading']}**"
        if clearly_closest(frame):
            text += "; its interval lies below every other reading's."
        elif only is not None:
            text += (f"; its interval overlaps another reading's, but **{only['reading']}** is "
                     "the only reading that no published value contradicts (every other has "
                     "one outside its prediction interval of one run, at 95% jointly over its "
                     "rows, Bonferroni; outside tells however wide the interval), so the data "
                     "single it out: claims are judged in it (Claims).")
        else:
            text += ("; its interval overlaps another reading's, and no reading is the only "
                     "one that no published value contradicts (outside its prediction interval "
                     "of one run, at 95% jointly over its rows, Bonferroni: the table's "
                     "contradicts column), so the data do not single one out: a claim's "
                     "verdict then stands only where every reading gives it (Claims).")
    text += " " + _reproduces(frame, summary.study.config["consistent_within"])
    return text + "\n\n" + "\n".join(lines)


def _reproduces(frame: pd.DataFrame, within: float) -> str:
    """Whether any reading is consistent with the published table: every published value inside
    the reading's 95% prediction interval of one run (the table's single runs are such runs),
    counting only intervals narrow enough to tell (± ``within`` points for accuracies)."""
    usable = frame[frame["with_interval"] > 0]
    if usable.empty:
        return ("Whether a reading is consistent with the table cannot be said: no "
                "configuration has the 2 runs a prediction interval needs, or every interval "
                f"is wider than ±{within:g} points (see Published result for how many seeds "
                "would narrow it).")
    full = usable[(usable["inside"] == usable["with_interval"])
                  & (usable["with_interval"] == usable["rows"])]
    unrefuted = usable[usable["inside"] == usable["with_interval"]]  # no value outside
    if full.empty and not unrefuted.empty:
        top = unrefuted.loc[unrefuted["inside"].idxmax()]
        return (f"Consistent only where the interval can tell: in {top['reading']}, "
                f"{top['inside']} of {top['rows']} published values lie inside an interval "
                f"narrow enough to tell (accuracies: at most ±{within:g} points, losses ±10%) "
                "and none outside; the other intervals are wider, so the table as a whole is "
                "neither matched nor contradicted.")
    if not full.empty:
        return ("Consistent with the published table (every published value inside its 95% "
                f"prediction interval of one run, each at most ±{within:g} points wide): "
                + ", ".join(
                    f"**{r}**" for r in full["reading"]) + ".")
    if not usable["inside"].any():
        return ("**No reading is consistent with the published table**: of its values whose "
                f"interval can tell (at most ±{within:g} points wide), none lies inside any "
                "reading's 95% prediction interval of one run.")
    top = usable.loc[(usable["inside"] / usable["with_interval"]).idxmax()]
    return (f"**No reading is consistent with the published table**: at best {top['inside']} "
            f"of {top['with_interval']} published values whose interval can tell lie inside a "
            f"reading's 95% prediction interval of one run ({top['reading']}).")
