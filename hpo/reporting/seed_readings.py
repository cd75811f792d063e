"""One closest reading per seed, across all of its studies (issue 24, item 7).

A seed (R3, R4) leaves choices open that several of its studies run as readings (R4's unnamed
optimizer; R3's loss reduction, training-set size, output-layer initialisation, momentum form).
Each study ranks its own readings against its own published table; a reader needs one answer per
seed: which reading explains *all* of the seed's published accuracies best, and where it fails.
A value the seed prints in two tables (one run, shown twice) counts once.

A *seed reading* assigns a value to every reading key any of the studies varies. A study's
reading is *compatible* with it when they agree on the study's own reading keys, so a study that
does not vary a key (the momentum form outside momentum) counts for every value of it, and a
value only one study ran (the whole training set) is judged on that study's rows alone (its row
count says so). Only accuracy tables count (one scale, points); studies run off the seed's
dataset count for nothing.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hpo.reporting import readings as readings_mod
from hpo.reporting.stats import t_quantile
from hpo.reporting.tables import Summary, format_value, in_reading, matches_row

if TYPE_CHECKING:
    from hpo.reporting.readings import Reading


@dataclass
class Comparison:
    study: str
    config: str
    metric: str
    measured: float
    published: float
    inside: bool | None  # inside the 95% prediction interval of one run; None: cannot tell
    # Every accuracy the seed prints in this comparison's row: two tables' rows that agree on
    # all of them are one run printed twice.
    printed: frozenset[tuple[str, float]] = frozenset()

    @property
    def diff(self) -> float:
        return self.measured - self.published


@dataclass
class SeedReading:
    values: tuple[tuple[str, object], ...]
    comparisons: list[Comparison] = field(default_factory=list)

    @property
    def mean_abs(self) -> float:
        diffs = [abs(c.diff) for c in self.comparisons]
        return sum(diffs) / len(diffs) if diffs else math.nan

    @property
    def median_abs(self) -> float:
        """The median absolute difference: a reading wrong by far on a few rows (a collapse the
        seed did not see) ranks by its typical row here, not by those few."""
        import statistics

        diffs = [abs(c.diff) for c in self.comparisons]
        return float(statistics.median(diffs)) if diffs else math.nan

    @property
    def interval(self) -> tuple[float, float]:
        """95% t-interval of the mean absolute difference (NaN with fewer than 2 rows;
        descriptive: the rows share configurations, so they are not independent)."""

        diffs = [abs(c.diff) for c in self.comparisons]
        n = len(diffs)
        if n < 2:
            return math.nan, math.nan
        sd = math.sqrt(sum((d - self.mean_abs) ** 2 for d in diffs) / (n - 1))
        half = t_quantile(0.975, n - 1) * sd / math.sqrt(n)
        return max(self.mean_abs - half, 0.0), self.mean_abs + half

    @property
    def worst(self) -> Comparison | None:
        return max(self.comparisons, key=lambda c: abs(c.diff), default=None)


def _comparisons(summary: Summary, reading: Reading) -> list[Comparison]:
    """Every (published accuracy row, configuration of this reading) pair, both finite."""
    from hpo.reporting.published import prediction_interval, tells

    within = summary.study.config["consistent_within"]
    rows = [r for r in summary.records() if in_reading(reading, r)]
    refs = [ref for ref in readings_mod.references(summary) if ref.metric.endswith("_acc")]
    printed: dict[object, set[tuple[str, float]]] = {}
    for ref in refs:
        for params, value in ref.rows:
            printed.setdefault(params, set()).add((ref.metric, float(value)))
    out = []
    for ref in refs:
        for params, value in ref.rows:
            for row in (r for r in rows if matches_row(params, r)):
                mean = row.get(f"{ref.metric}_mean")
                if mean is None or not (math.isfinite(mean) and math.isfinite(value)):
                    continue
                low, high = prediction_interval(float(mean), float(row.get(
                    f"{ref.metric}_std", math.nan)), int(row.get("n", 0)))
                inside = (low <= value <= high) if math.isfinite(low) and tells(
                    ref.metric, low, high, within) else None
                out.append(Comparison(summary.name, str(row["config"]), ref.metric,
                                      float(mean), float(value), inside,
                                      frozenset(printed[params])))
    return out


def drop_reprinted(earlier: list[Comparison], new: list[Comparison]) -> list[Comparison]:
    """``new`` less the rows an earlier study already compared: a seed that prints one run in
    two tables (R4's dropout rate 0.2 is its dropout-before-pooling run: 92.11% train and
    93.17% test in both) has one set of numbers, so it counts once, in the first study that
    compares it. Rows count as one run only when every accuracy printed in them agrees (R3's
    60.0% train at batch 500, lr 1e-4 and at λ = 0.01 differ in test accuracy: two runs)."""
    seen = {(c.printed, c.metric) for c in earlier}
    return [c for c in new if (c.printed, c.metric) not in seen]


def seed_readings(summaries: Sequence[Summary]) -> list[SeedReading]:
    """Every seed reading over ``summaries`` (one seed's studies), with its comparisons,
    closest first (by mean absolute difference among those with the most comparisons)."""
    usable = [s for s in summaries if readings_mod.readings_of(s)
              and not readings_mod.not_comparable(s)]
    values: dict[str, list[object]] = {}
    for summary in usable:
        for reading in readings_mod.readings_of(summary):
            for key, value in reading:
                if value not in values.setdefault(key, []):
                    values[key].append(value)
    keys = sorted(values)
    out = []
    for combo in itertools.product(*(values[k] for k in keys)):
        seed = SeedReading(tuple(zip(keys, combo)))
        for summary in usable:
            own = set(readings_mod.reading_keys(summary))
            mine = tuple((k, v) for k, v in seed.values if k in own)
            if mine in readings_mod.readings_of(summary):
                seed.comparisons += drop_reprinted(seed.comparisons,
                                                        _comparisons(summary, mine))
        if seed.comparisons:
            out.append(seed)
    most = max((len(s.comparisons) for s in out), default=0)
    return sorted(out, key=lambda s: (len(s.comparisons) < most, s.mean_abs))


def label(seed: SeedReading) -> str:
    return ", ".join(f"{k.split('.')[-1]}={format_value(v)}" for k, v in seed.values)


def markdown(title: str, seeds: Sequence[SeedReading], within: float = 3.0) -> str:
    """The seed's readings table and the sentence that names the best and where it fails."""
    if not seeds:
        return (f"# {title}: one closest reading\n\nNo study of this seed has both readings and "
                "published accuracies on the seed's dataset yet.\n")
    most = len(seeds[0].comparisons)
    studies = sorted({c.study for s in seeds for c in s.comparisons})
    lines = [f"# {title}: one closest reading across its studies", "",
             f"Every reading of what {title} left open, over all of its published accuracies "
             "(a value printed in two tables, one run, counted once) "
             f"in the {len(studies)} of its studies complete so far ({', '.join(studies)}) "
             "together (points; a study that does not vary a key counts "
             "for every value of it). Ranked by the mean absolute difference among the readings "
             f"compared on the most rows ({most}); a reading with fewer rows was run by fewer "
             "studies and is listed after them. 'Inside' counts published values inside the "
             f"95% prediction interval of one run where that interval is at most ±{within:g} "
             "points wide (else it cannot tell).", "",
             "| reading | rows | mean \\|difference\\| (points) [95% CI] | median | "
             "inside / can tell | largest difference |", "|---|---|---|---|---|---|"]
    for s in seeds:
        told = [c for c in s.comparisons if c.inside is not None]
        worst = s.worst
        low, high = s.interval
        ci = f" [{low:.1f}, {high:.1f}]" if math.isfinite(low) else ""
        lines.append(
            f"| {label(s)} | {len(s.comparisons)} | {s.mean_abs:.1f}{ci} | {s.median_abs:.1f} | "
            f"{sum(1 for c in told if c.inside)} / {len(told)} | "
            + (f"{worst.study}: {worst.config}: {worst.metric} {worst.measured:.1f} vs "
               f"{worst.published:g} ({worst.diff:+.1f})" if worst else "–") + " |")
    lines += ["", _verdict(title, seeds, within), ""]
    return "\n".join(lines)


def _verdict(title: str, seeds: Sequence[SeedReading], within: float) -> str:
    """Which reading explains the seed best, by how much, and where it fails."""
    best, worst = seeds[0], seeds[0].worst
    told = [c for c in best.comparisons if c.inside is not None]
    fails = [c for c in told if not c.inside]
    rivals = [s for s in seeds[1:] if len(s.comparisons) == len(best.comparisons)]
    by_median = min((s for s in [best, *rivals]), key=lambda s: s.median_abs)
    if by_median is not best:
        # The mean and the median name different readings: a few rows (collapses, say)
        # decide the mean, so neither is "the" closest.
        text = (f"No single reading is closest to {title}: by the mean difference it is "
                f"**{label(best)}** ({best.mean_abs:.1f} points over {len(best.comparisons)} "
                f"rows), by the median **{label(by_median)}** ({by_median.median_abs:.1f} "
                f"points, against {best.median_abs:.1f}), so a few rows decide the ranking. "
                f"By the mean, {label(best)}")
    else:
        text = (f"Closest to {title}: **{label(best)}**, {best.mean_abs:.1f} points from the "
                f"published accuracies on average over {len(best.comparisons)} rows")
    if rivals:
        text += f" (next: {label(rivals[0])}, {rivals[0].mean_abs:.1f})"
        high = best.interval[1]
        apart = math.isfinite(high) and all(r.interval[0] > high for r in rivals)
        text += ("; its interval lies below every other reading's, so the data single it out"
                 if apart else "; its interval overlaps another reading's, so the data do not "
                 "single it out")
    if worst is not None:
        text += (f"; it fails worst at {worst.study}: {worst.config} ({worst.metric} "
                 f"{worst.measured:.1f}% measured against {worst.published:g}%)")
    if not told:
        text += ("; none of its prediction intervals is narrow enough to tell whether a "
                 "published value lies inside it")
    else:
        text += (f"; {len(fails)} of the {len(told)} published values whose interval can tell "
                 "lie outside it")
    text += "."
    if best.mean_abs > within:
        text += (f" It does not reproduce the seed within noise: its mean difference is more "
                 f"than ±{within:g} points.")
    text += (" Descriptive only: the rows are not independent (a reading's rows share its runs, "
             "and each published value is one run), and the closest reading is the one whose "
             "numbers sit nearest the seed's, not evidence of what the seed ran.")
    return text
