"""Machine-checked verdicts on a study's ``[[claims]]``: does the measurement support the seed?

A verdict is SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE, NOT_EXERCISED or NOT_APPLICABLE, with the
numbers behind it. Tests use the per-seed values of the complete runs (hpo.reporting.stats):

- ``better``: supported iff Welch's two-sided test finds ``config`` significantly better than
  ``than`` and (accuracies, or a claim with ``margin``) TOST does not show the difference
  inside ± the smallest difference that matters; not supported iff significantly worse, or
  iff TOST shows it inside that margin, significant or not (no meaningful difference); else
  inconclusive.
- ``best``: Welch's test of ``config`` against every other configuration, Holm-corrected over
  those k - 1 comparisons. Supported iff it is best by mean and significantly better than every
  other; not supported iff another configuration is significantly better or (accuracies) TOST,
  Holm over the tied ones, shows one within SIMILAR_MARGIN of it (a tie is no best); else
  inconclusive, naming those not significantly different from it.
- ``similar`` (TOST equivalence within the claim's ``margin``), ``at_chance`` (the same TOST on
  one sample, against chance), ``above`` and ``below`` (one-sample t-tests) and ``spread``
  (a bootstrap of two metrics' spreads): their rules are in hpo.reporting.claim_kinds.
- ``not applicable``: the study did not run in the setting the claim needs (``applies_if``);
  ``not exercised``: the mechanism never acted (``requires_stop``: no run of the claim's
  configurations stopped for that reason), or both sides are the same runs (identical per-seed
  values).

Several claims in one report: Holm's correction over the claims' decisive p-values; a claim
significant alone but not after the correction is inconclusive. Every inconclusive verdict says
how many seeds per configuration would decide it at the observed difference (80% power, the
two-sample t-test with the pooled std; for equivalence, TOST's power). A study run with
``until_decided`` looked at its data several times: each look tests at the exact
group-sequential level of an alpha-spending function (hpo.spec.look_alpha; the chances of a
first rejection at each look add up to alpha), so adding seeds until a test passes cannot
inflate the error rate. With ``readings``, a claim that leaves a
reading key open is judged within the reading the published numbers single out, and names the
readings whose verdict differs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from hpo.reporting import stats
from hpo.reporting.claim_sides import (  # noqa: F401  (claims.sharpness, claims.lower_is_better)
    LOWER_IS_BETTER,
    SHARPNESS_STEP,
    Side,
    amount_text,
    claim_metric,
    is_missing,
    lower_is_better,
    p_text,
    report_alpha,
    seeds_text,
    sharpness,
    side_label,
    side_of,
    side_runs,
    stat_text,
    trial_value,
    units_text,
)
from hpo.reporting.tables import (
    STAT_METRICS,
    Summary,
    format_value,
    in_reading,
    matches_row,
)
from hpo.schema import RATIO_METRICS
from hpo.spec import SIMILAR_MARGIN, THRESHOLD_KINDS, Claim

SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE = "supported", "not supported", "inconclusive"
NOT_EXERCISED, NOT_APPLICABLE = "not exercised", "not applicable"
TESTED = (SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE)


@dataclass
class Verdict:
    claim: Claim
    metric: str
    verdict: str
    evidence: str  # the numbers behind the verdict, one sentence
    p_value: float = math.nan  # the claim's decisive p-value (before the report's Holm)
    p_adjusted: float = math.nan  # after Holm over the report's claims
    configs: tuple[Any, ...] = ()  # table rows (dicts) the verdict rests on
    # Seeds per configuration that would decide it at a given alpha (None: no number would).
    seeds_needed: Callable[[float], int | None] | None = field(default=None, repr=False)
    # (reading label, its own verdict) when readings that disagree made this one inconclusive.
    by_reading: tuple[tuple[str, str], ...] = ()
    # Readings left out of the verdict because the configuration it favours did not train there.
    untrained: tuple[str, ...] = ()
    # The configurations behind ``untrained``, each once: "label (training loss 2.3, ...)".
    untrained_rows: tuple[str, ...] = ()
    # What it would be with min_seeds runs a side, where it is inconclusive only for fewer.
    would_be: str | None = None

    @property
    def decided(self) -> bool:
        return self.verdict != INCONCLUSIVE



# ---------------------------------------------------------------------------------------------
# The rules


def _row(summary: Summary, params: tuple[tuple[str, object], ...],
         reading: tuple[tuple[str, object], ...] = ()) -> tuple[dict | None, str]:
    rows = [r for r in summary.records() if matches_row(params, r) and in_reading(reading, r)]
    if len(rows) != 1:
        return None, (f"{side_label(summary, params + reading)} matches {len(rows)} "
                      "configurations, not one")
    row = rows[0]
    if row["n"] == 0:
        return None, f"{row['config']} has no complete run"
    return row, ""


def _sides_and_rows(claim: Claim, summary: Summary, reading: tuple[tuple[str, object], ...]
                    ) -> tuple[list[dict], str]:
    rows = []
    for side, params in enumerate((claim.config, claim.than)):
        if not params and (side == 1 or summary.study.space):
            continue  # no than; an empty config names the one configuration of an empty space
        row, why = _row(summary, tuple(params), tuple(reading))
        if row is None:
            return [], why
        rows.append(row)
    return rows, ""


def compared_labels(claim: Claim, summary: Summary,
                    readings: Sequence[tuple[tuple[str, object], ...]]) -> set[str]:
    """The configurations (their labels) a claim's verdict can rest on, over ``readings``
    (none: one reading): its two sides, or every row of a reading for a ``best`` claim."""
    labels: set[str] = set()
    for reading in readings or [()]:
        if claim.kind == "best":
            labels |= {r["config"] for r in summary.records() if in_reading(reading, r)}
        else:
            labels |= {r["config"] for r in _sides_and_rows(claim, summary, reading)[0]}
    return labels


def evaluate(claim: Claim, summary: Summary, alpha: float | None = None,
             reading: Sequence[tuple[str, Any]] = ()) -> Verdict:
    """One claim's verdict on its own (no correction for the report's other claims)."""
    verdict = _too_few_seeds(_evaluate(claim, summary, alpha, reading),
                             summary.min_seeds)
    if verdict.metric == "cpu_time":
        runs = [r for row in verdict.configs for r in side_runs(summary, row)]
        missing = sum(1 for r in runs if is_missing(r.get("cpu_time")))
        if missing:
            verdict = replace(verdict, evidence=f"{verdict.evidence} (wall time stands in for "
                              f"CPU time on {missing} of {len(runs)} runs stored without it)")
    return verdict


def _too_few_seeds(verdict: Verdict, least: int) -> Verdict:
    """A supported / not supported verdict on fewer than ``least`` (the study's min_seeds)
    seeds a side is inconclusive, saying what it would have been."""
    fewest = min((int(row.get("n") or 0) for row in verdict.configs), default=0)
    if verdict.verdict not in (SUPPORTED, NOT_SUPPORTED) or fewest >= least:
        return verdict
    return replace(verdict, verdict=INCONCLUSIVE, evidence=(
        f"{verdict.evidence}; inconclusive: it would be {verdict.verdict} on {fewest} seeds, "
        f"but a decision needs at least {least} per configuration (min_seeds: two runs' "
        "spread is too unreliable to decide on)"), seeds_needed=lambda _alpha: least,
        would_be=verdict.verdict)


def _evaluate(claim: Claim, summary: Summary, alpha: float | None,
              reading: Sequence[tuple[str, Any]]) -> Verdict:
    from hpo.reporting import claim_kinds  # imported here: it builds on this module's Verdict

    alpha = report_alpha(summary) if alpha is None else alpha
    m = claim_metric(claim, summary)
    rows, why = _sides_and_rows(claim, summary, reading)
    if not rows:
        return Verdict(claim, m, INCONCLUSIVE, why)
    outside = _not_applicable(claim, summary, rows)
    if outside:
        return Verdict(claim, m, NOT_APPLICABLE, outside, configs=tuple(rows))
    idle = _not_exercised(claim, summary, rows, m)
    if idle:
        return Verdict(claim, m, NOT_EXERCISED, idle, configs=tuple(rows))
    side = side_of(summary, rows[0], m)
    if len(side.values) == 0:
        return Verdict(claim, m, INCONCLUSIVE, stat_text(side, m), configs=tuple(rows))
    if claim.kind == "at_chance":
        return claim_kinds.judge_at_chance(claim, summary, side, m, alpha)
    if claim.kind in THRESHOLD_KINDS:
        return claim_kinds.judge_threshold(claim, side, m, alpha)
    if claim.kind == "spread":
        than = side_of(summary, rows[0], str(claim.than_metric))
        return claim_kinds.judge_spread(claim, side, than, m, alpha)
    if claim.kind == "best":
        return _best(claim, summary, side, m, alpha, reading)
    other = side_of(summary, rows[1], m)
    if len(other.values) == 0:
        return Verdict(claim, m, INCONCLUSIVE, stat_text(other, m), configs=tuple(rows))
    if claim.kind == "similar":
        return claim_kinds.judge_similar(claim, side, other, m, alpha)
    return _better(claim, side, other, m, alpha)


def _not_applicable(claim: Claim, summary: Summary, rows: list[dict]) -> str:
    study = summary.study
    for row in rows:
        resolved = study.resolve({k: row[k] for k in summary.keys if row[k] is not None})
        for key, want in claim.applies_if:
            have = resolved.get(key)
            if have != want:
                return (f"the claim needs {key} = {format_value(want)}; this study ran "
                        f"{row['config']} with {key} = {format_value(have)}")
    return ""


def _not_exercised(claim: Claim, summary: Summary, rows: list[dict], m: str) -> str:
    if claim.requires_stop is not None:
        runs = [r for row in rows for r in side_runs(summary, row)]
        reasons = [r.get("stopped") for r in runs]
        if runs and claim.requires_stop not in reasons:
            counts = {s: reasons.count(s) for s in dict.fromkeys(reasons)}
            seen = ", ".join(f"{s} ×{n}" for s, n in counts.items())
            return (f"no run of {' or '.join(r['config'] for r in rows)} stopped for "
                    f"{claim.requires_stop} ({len(runs)} runs stopped: {seen})")
    if len(rows) == 2 and _same_runs(summary, rows, m):
        seeds = len(side_of(summary, rows[0], m).values)
        return (f"both sides are the same runs: {rows[0]['config']} and {rows[1]['config']} "
                f"have identical {m} and losses and accuracies on every seed ({seeds} seeds)")
    return ""


def _same_runs(summary: Summary, rows: list[dict], m: str) -> bool:
    """Both sides recorded the same values on every seed: the claim's metric and every
    summary metric (a knob that changed nothing, e.g. a stop rule that never fired)."""
    sides = [[side_of(summary, row, metric) for row in rows] for metric in (m, *STAT_METRICS)]
    a, b = sides[0]
    if not len(a.values) or a.seeds != b.seeds:
        return False
    return all(x.seeds == y.seeds and list(x.values) == list(y.values) for x, y in sides)


def _gain(diff: float, m: str) -> float:
    """A difference a - b, signed so that > 0 means a is better."""
    return -diff if lower_is_better(m) else diff


def _better(claim: Claim, a: Side, b: Side, m: str, alpha: float) -> Verdict:
    if m in RATIO_METRICS and claim.margin is None:
        ratio = _better_as_ratio(claim, a, b, m, alpha)
        if ratio is not None:
            return ratio
    d = stats.welch_diff(a.values, b.values)
    p = stats.p_two_sided(d) if d is not None else math.nan
    evidence = f"{stat_text(a, m)} vs {stat_text(b, m)}; {p_text(p)}"
    rows = (a.row, b.row)
    if d is None:
        return Verdict(claim, m, INCONCLUSIVE, f"{evidence}; inconclusive: at least 2 seeds per "
                       "configuration are needed for a test", p, configs=rows,
                       seeds_needed=lambda _alpha: 2)
    sd = stats.pooled_std(a.values, b.values)
    margin = meaningful_difference(claim, m)
    # Where the observed difference is below the smallest one that matters, the decision it
    # points to is "no meaningful difference" (TOST); otherwise a difference.
    small = margin is not None and abs(d.diff) < margin

    def needed(level: float) -> int | None:
        if small:
            return more_than(stats.seeds_for_equivalence(d.diff, sd, margin, level), a, b)
        return more_than(stats.seeds_to_detect(d.diff, sd, level), a, b)

    if p < alpha:
        return _significant(claim, d, m, alpha, margin if small else None,
                            Verdict(claim, m, INCONCLUSIVE, evidence, p, configs=rows,
                                    seeds_needed=needed))
    if margin is not None:
        p_eq = stats.p_equivalent(d, margin)
        low, high = stats.ci(d, 1 - 2 * alpha)
        evidence += (f" (not significant); difference {d.diff:+.3g} [{100 * (1 - 2 * alpha):.3g}% "
                     f"CI {low:+.3g}, {high:+.3g}], smallest that matters ±{margin:g}"
                     f"{units_text(m, margin)}; {p_text(p_eq, 'TOST p')}")
        if p_eq < alpha:
            return Verdict(claim, m, NOT_SUPPORTED, f"{evidence} (no meaningful difference: "
                           "the interval lies inside the margin)", p_eq, configs=rows,
                           seeds_needed=needed)
        what = (f"show the observed {amount_text(d.diff, m)} is below the margin" if small
                else f"detect the observed {amount_text(d.diff, m)}")
        return Verdict(claim, m, INCONCLUSIVE, f"{evidence}; inconclusive: "
                       + seeds_text(needed(alpha), what, alpha), p, configs=rows,
                       seeds_needed=needed)
    return Verdict(claim, m, INCONCLUSIVE, f"{evidence} (not significant); inconclusive: "
                   + seeds_text(needed(alpha), f"detect the observed {amount_text(d.diff, m)}",
                                alpha), p, configs=rows, seeds_needed=needed)


def _better_as_ratio(claim: Claim, a: Side, b: Side, m: str, alpha: float) -> Verdict | None:
    """A positive measure that varies by factors (sharpness: one seed's valley 100× another's)
    compared as a ratio: Welch's test on its logarithms, the ratio of geometric means with its
    CI. On the raw values one wild seed's spread hides a difference every seed shows. None
    where a value is not positive or a side has fewer than 2 (the raw test then decides)."""
    import numpy as np

    if min(len(a.values), len(b.values)) < 2 or (a.values <= 0).any() or (b.values <= 0).any():
        return None
    la, lb = np.log(a.values), np.log(b.values)
    d = stats.welch_diff(la, lb)
    if d is None:
        return None
    p = stats.p_two_sided(d)
    low, high = stats.ci(d, 1 - alpha)
    evidence = (f"{stat_text(a, m)} vs {stat_text(b, m)}; compared as a ratio (on the log scale): "
                f"geometric means {math.exp(la.mean()):.4g} vs {math.exp(lb.mean()):.4g}, "
                f"{a.row['config']} / {b.row['config']} = {math.exp(d.diff):.3g}× "
                f"[{100 * (1 - alpha):.3g}% CI "
                f"{math.exp(low):.3g}×, {math.exp(high):.3g}×]; {p_text(p, 'Welch p on logs')}")
    sd = stats.pooled_std(la, lb)

    def needed(level: float) -> int | None:
        return more_than(stats.seeds_to_detect(d.diff, sd, level), a, b)

    base = Verdict(claim, m, INCONCLUSIVE, evidence, p, configs=(a.row, b.row),
                   seeds_needed=needed)
    if p < alpha:
        return _significant(claim, d, m, alpha, None, base)
    return replace(base, evidence=f"{evidence} (not significant); inconclusive: " + seeds_text(
        needed(alpha), f"detect the observed ratio of {math.exp(d.diff):.3g}×", alpha))


def _significant(claim: Claim, d: stats.Diff, m: str, alpha: float, margin: float | None,
                 base: Verdict) -> Verdict:
    """A significant difference (``base`` holds its evidence, p and rows). ``margin``: the
    smallest difference that matters where the observed one is below it, else None."""
    wins = _gain(d.diff, m) > 0
    said = f"significantly {'better' if wins else 'worse'}"
    if margin is None:
        return replace(base, verdict=SUPPORTED if wins else NOT_SUPPORTED,
                       evidence=f"{base.evidence} ({said})")
    # Too small to matter only where its interval shows it (TOST), not the estimate.
    p_eq = stats.p_equivalent(d, margin)
    low, high = stats.ci(d, 1 - 2 * alpha)
    gist = "no meaningful difference" if wins else "too small to matter"
    shown = (f"shown smaller ({p_text(p_eq, 'TOST p')}): {gist}" if p_eq < alpha else
             f"not shown smaller: its {100 * (1 - 2 * alpha):.3g}% CI [{low:+.3g}, {high:+.3g}] "
             "reaches the margin")
    evidence = (f"{base.evidence} ({said}, but by {abs(d.diff):.3g}, less than the {margin:g}"
                f"{units_text(m, margin)} that matters, {shown})")
    if p_eq < alpha and wins:
        # A real difference shown smaller than the smallest that matters is not the one the
        # claim asserts ("far worse" names its own margin; otherwise the default's point), and
        # is judged so whatever its variance, or a 0.38-point gap would be "supported" beside
        # a 0.28-point one that is "no difference".
        return replace(base, verdict=NOT_SUPPORTED, evidence=evidence, p_value=p_eq)
    return replace(base, verdict=SUPPORTED if wins else NOT_SUPPORTED, evidence=evidence)


def meaningful_difference(claim: Claim, m: str) -> float | None:
    """A better claim's smallest difference that matters: its margin, else SIMILAR_MARGIN
    accuracy points; None on other metrics without a margin (times, losses, epochs)."""
    if claim.margin is not None:
        return claim.margin
    return SIMILAR_MARGIN if m.endswith("_acc") else None


def _best(claim: Claim, summary: Summary, a: Side, m: str, alpha: float,
          reading: Sequence[tuple[str, Any]]) -> Verdict:
    rows = [r for r in summary.records()
            if r["n"] > 0 and r["config"] != a.row["config"] and in_reading(reading, r)]
    others = [s for s in (side_of(summary, r, m) for r in rows) if len(s.values)]
    if not others:
        return Verdict(claim, m, SUPPORTED, f"{stat_text(a, m)}; the only configuration",
                       configs=(a.row,))
    diffs = [stats.welch_diff(a.values, o.values) for o in others]
    raw = [stats.p_two_sided(d) if d is not None else math.nan for d in diffs]
    adjusted = stats.holm(raw)
    gain = [_gain(a.values.mean() - o.values.mean(), m) for o in others]
    holm = f"Holm over {len(others)} Welch tests"
    beaten = [i for i, o in enumerate(others) if gain[i] < 0 and adjusted[i] < alpha]
    def needed_for(j: int) -> Callable[[float], int | None]:
        sd = stats.pooled_std(a.values, others[j].values)
        return lambda level: more_than(stats.seeds_to_detect(diffs[j].diff, sd, level),
                                       a, others[j])

    if beaten:
        i = min(beaten, key=lambda j: adjusted[j])
        names = ", ".join(others[j].row["config"] for j in beaten)
        return Verdict(claim, m, NOT_SUPPORTED,
                       f"{stat_text(a, m)}; significantly worse than {names} (best: "
                       f"{stat_text(_best_side(others, m), m)}; {holm}, adjusted "
                       f"{p_text(adjusted[i], 'p')})", adjusted[i],
                       configs=(a.row, *(others[j].row for j in beaten)),
                       seeds_needed=needed_for(i))
    runner_up = _best_side(others, m)
    if all(g > 0 for g in gain) and all(p < alpha for p in adjusted):
        p = max(adjusted)
        j = max(range(len(others)), key=lambda i: adjusted[i])
        return Verdict(claim, m, SUPPORTED,
                       f"best by mean: {stat_text(a, m)}; runner-up {stat_text(runner_up, m)}; "
                       f"significantly better than all {len(others)} others ({holm}, largest "
                       f"adjusted {p_text(p, 'p')})", p, configs=(a.row, runner_up.row),
                       seeds_needed=needed_for(j))
    return _best_undecided(claim, m, a, others, diffs, adjusted, gain, alpha, needed_for)


def _shown_tie(m: str, others: list[Side], diffs: list[Any],
               testable: list[int], alpha: float) -> tuple[int, float] | None:
    """(index, Holm-adjusted TOST p) of a configuration shown within the smallest difference
    that matters of the claimed best (accuracies: SIMILAR_MARGIN), else None: a best that
    ties another is not the best, and no number of seeds would make it so."""
    if not m.endswith("_acc") or not testable:
        return None
    adjusted = stats.holm([stats.p_equivalent(diffs[i], SIMILAR_MARGIN) for i in testable])
    k = min(range(len(testable)), key=lambda j: adjusted[j])
    return (testable[k], adjusted[k]) if adjusted[k] < alpha else None


def _best_undecided(claim: Claim, m: str, a: Side, others: list[Side], diffs: list[Any],
                    adjusted: list[float], gain: list[float], alpha: float,
                    needed_for: Callable[[int], Callable[[float], int | None]]) -> Verdict:
    """A best claim neither beaten nor ahead of every other: inconclusive, naming those not
    significantly different from it and the seeds that would decide it."""
    holm = f"Holm over {len(others)} Welch tests"
    tied = [i for i in range(len(others)) if not adjusted[i] < alpha]
    ties = [others[i] for i in tied]
    lead = (f"best by mean: {stat_text(a, m)}" if all(g > 0 for g in gain)
            else f"{stat_text(a, m)}; best by mean: {stat_text(_best_side(others, m), m)}")
    finite = [adjusted[i] for i in tied if math.isfinite(adjusted[i])]
    p = max(finite) if finite else math.nan
    evidence = (f"{lead}; not significantly different from "
                f"{', '.join(o.row['config'] for o in ties)} ({holm}, adjusted p ≥ {alpha:.3g} "
                "or no test; not a tie)")
    testable = [i for i in tied if diffs[i] is not None]
    tie = _shown_tie(m, others, diffs, testable, alpha)
    if tie is not None:
        i, p_eq = tie
        return Verdict(claim, m, NOT_SUPPORTED, f"{evidence}; no meaningful difference from "
                       f"{others[i].row['config']}: within ±{SIMILAR_MARGIN:g}"
                       f"{units_text(m, SIMILAR_MARGIN)} (TOST, Holm over the {len(testable)} "
                       f"tied, adjusted {p_text(p_eq, 'p')}), so it is not the best",
                       p_eq, configs=(a.row, others[i].row))
    if not testable:
        return Verdict(claim, m, INCONCLUSIVE, f"{evidence}; inconclusive: at least 2 seeds per "
                       "configuration are needed for a test", p, configs=(a.row, *(o.row for o in
                                                                                   ties)),
                       seeds_needed=lambda _alpha: 2)
    if all(g > 0 for g in gain):
        # Best by mean: the closest rival decides how many seeds are needed (the last one
        # Holm rejects).
        j = min(testable, key=lambda i: abs(diffs[i].diff))
        what = (f"detect the observed {amount_text(diffs[j].diff, m)} to "
                f"{others[j].row['config']}")
    else:
        # Behind another by mean: what decides it is whether the leader is really ahead.
        j = min(testable, key=lambda i: gain[i])
        what = (f"show whether {others[j].row['config']} is really ahead (the observed "
                f"{amount_text(diffs[j].diff, m)}; that would make it not supported)")
    needed = needed_for(j)
    return Verdict(claim, m, INCONCLUSIVE, f"{evidence}; inconclusive: "
                   + seeds_text(needed(alpha), what, alpha), p,
                   configs=(a.row, *(o.row for o in ties)), seeds_needed=needed)


def _best_side(sides: list[Side], m: str) -> Side:
    pick = min if lower_is_better(m) else max
    return pick(sides, key=lambda s: s.values.mean())


def more_than(n: int | None, *sides: Side | dict) -> int | None:
    """A power estimate never below the seeds already run plus one: the formula assumes the
    pooled t-test, Welch's (the test used) has fewer degrees of freedom when the spreads
    differ, so at small n it can promise a decision the current seeds did not give."""
    if n is None:
        return None
    have = min(int(s["n"]) if isinstance(s, dict) else len(s.values) for s in sides)
    return max(n, have + 1)
