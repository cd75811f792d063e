"""The report's verdicts together: each claim judged over the readings the seed left open
(hpo.reporting.claims has the rule for one claim in one setting), and Holm's correction over
the report's claims (hpo.reporting.claims_section writes the Claims section's text).

Readings in which a compared configuration did not train are left out of a claim's verdict
and named; the rest follow the readings rule (the reading the published numbers single out,
else a verdict only where every reading gives it).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from hpo.reporting import stats
from hpo.reporting.chance import chance_config
from hpo.reporting.claim_sides import SEED_CAP, claim_metric, seeds_text, side_label
from hpo.reporting.claims import (
    INCONCLUSIVE,
    NOT_EXERCISED,
    NOT_SUPPORTED,
    SUPPORTED,
    TESTED,
    Verdict,
    evaluate,
    meaningful_difference,
)
from hpo.reporting.tables import ALPHA, Summary
from hpo.reporting.untrained import (
    claim_readings,
    left_out,
    nothing_trains,
    row_labels,
    untrained_label,
    untrained_rows,
)
from hpo.schema import END_ATTR
from hpo.spec import Claim

if TYPE_CHECKING:
    from hpo.reporting.readings import Reading

# ---------------------------------------------------------------------------------------------
# Readings and the report's claims together


def evaluate_in_readings(claim: Claim, summary: Summary, alpha: float) -> Verdict:
    """Readings the seed left open: judged in the one the published numbers single out; else a
    verdict holds only where every reading gives it (an intersection-union test: its p-value is
    the largest of the readings'), and readings that disagree leave the claim inconclusive.

    A reading in which a configuration the claim compares did not train says nothing about
    the claim, whichever side it is on (a network that never leaves chance does not measure
    the seed's effect, even where the claim expects it to lose): it is left out, and named;
    if no reading is left, the claim is not exercised. A study without readings is one
    reading."""
    closest, every = claim_readings(claim, summary)
    if not every:
        verdict = evaluate(claim, summary, alpha)
        if nothing := nothing_trains(claim, summary, None):
            return Verdict(claim, verdict.metric, NOT_EXERCISED, "no configuration of this "
                           "study trains, so none can show that it leaves the network at chance",
                           configs=verdict.configs, untrained=("no configuration trains",),
                           untrained_rows=row_labels(nothing))
        rows = untrained_rows(claim, verdict, chance_config(summary))
        if not rows:
            return verdict
        named = (" and ".join(row["config"] for row in rows) + " did not train",)
        return Verdict(claim, verdict.metric, NOT_EXERCISED, f"{named[0]}: a network that "
                       "never leaves chance does not measure the claim", configs=verdict.configs,
                       untrained=named, untrained_rows=row_labels(rows))
    untrained = {}
    for r in every:
        rows = (untrained_rows(claim, evaluate(claim, summary, alpha, r), chance_config(summary))
                or nothing_trains(claim, summary, r))
        if rows:
            untrained[r] = rows
    return _with_untrained(claim, summary, alpha, closest, every, untrained)


def _with_untrained(claim: Claim, summary: Summary, alpha: float, closest: Reading | None,
                    every: list[Any], untrained: dict) -> Verdict:
    """The readings rule over the readings left once those in ``untrained`` are taken out."""
    if untrained:
        named = tuple(untrained_label(summary, r, rows) for r, rows in untrained.items())
        each = row_labels([row for rows in untrained.values() for row in rows])
        trained = [r for r in every if r not in untrained]
        if not trained:
            return Verdict(claim, claim_metric(claim, summary), NOT_EXERCISED,
                           "no reading the seed leaves open trains the networks it compares: "
                           + "; ".join(named), untrained=named, untrained_rows=each)
        if closest in untrained:
            closest = None
        kept = _judge_readings(claim, summary, alpha, closest, trained)
        return replace(kept, untrained=named, untrained_rows=each, evidence=(
            f"{kept.evidence}; left out, as they did not train: {'; '.join(named)}"))
    return _judge_readings(claim, summary, alpha, closest, every)


def _judge_readings(claim: Claim, summary: Summary, alpha: float, closest: Reading | None,
                    every: list[Any]) -> Verdict:
    """The readings rule over ``every`` (the readings that count)."""
    if len(every) == 1 and closest is None:
        verdict = evaluate(claim, summary, alpha, every[0])
        return replace(verdict, evidence=f"{verdict.evidence} (judged within "
                       f"{side_label(summary, every[0])}, the one reading that trains)")
    if closest is not None:
        verdict = evaluate(claim, summary, alpha, closest)
        differ = [f"{side_label(summary, r)}: {v.verdict}" for r in every if r != closest
                  for v in [evaluate(claim, summary, alpha, r)] if v.verdict != verdict.verdict]
        note = (f"judged within {side_label(summary, closest)}, the reading the published "
                "numbers single out")
        if differ:
            note += "; other readings differ (uncorrected): " + "; ".join(differ)
        return replace(verdict, evidence=f"{verdict.evidence} ({note})")
    per = [(r, evaluate(claim, summary, alpha, r)) for r in every]
    kinds = {v.verdict for _, v in per}
    if len(kinds) == 1:
        return _same_in_every_reading(claim, summary, alpha, per)
    opposed = {SUPPORTED, NOT_SUPPORTED} <= kinds
    needs = [v.seeds_needed for _, v in per if v.seeds_needed is not None
             and v.verdict == INCONCLUSIVE]
    listed = "; ".join(f"{side_label(summary, r)}: {v.verdict}" + reading_gist(v) for r, v in per)
    against = _pointing_against(claim, per, summary)
    if opposed:
        tail = "a closer reproduction of the seed's setting would decide it, more seeds would not"
    elif against:
        needs = []
        tail = (f"in {', '.join(against)} {_what_points(claim)} points to another verdict than "
                "the decided readings', so more seeds would more likely confirm the "
                "disagreement than decide it; a closer reproduction of the seed's setting would")
    elif needs:
        decided = [v.verdict for _, v in per if v.verdict in (SUPPORTED, NOT_SUPPORTED)]
        n = _most_seeds(needs)(alpha)
        # The way it would be decided, where seeds can decide it at all.
        way = (f", as {decided[0]} (where the decided readings point)"
               if decided and n is not None and n <= SEED_CAP else "")
        tail = seeds_text(n, f"decide it in every reading{way}", alpha)
    else:
        tail = "it needs every reading decided the same way"
    lead = ("the readings the seed leaves open disagree" if opposed or against else
            "not every reading the seed leaves open decides it")
    return Verdict(claim, per[0][1].metric, INCONCLUSIVE,
                   f"{lead} (no published numbers single one "
                   f"out; uncorrected): {listed}; inconclusive: {tail}",
                   configs=tuple(row for _, v in per for row in v.configs),
                   seeds_needed=None if opposed or not needs else _most_seeds(needs),
                   by_reading=tuple((side_label(summary, r), v.verdict) for r, v in per))


def _same_in_every_reading(claim: Claim, summary: Summary, alpha: float,
                           per: list[tuple[Any, Verdict]]) -> Verdict:
    """The same verdict in every reading: it stands, shown in the weakest (largest p) reading,
    with seed advice for every reading, or none where the readings point apart."""
    reading, weakest = max(per, key=lambda rv: rv[1].p_value
                           if math.isfinite(rv[1].p_value) else -1.0)
    needs = [v.seeds_needed for _, v in per if v.seeds_needed is not None]
    signs = _differences_by_reading(claim, per, summary)
    evidence = weakest.evidence
    split = _split(claim, per)
    if weakest.verdict == INCONCLUSIVE and split and "; inconclusive: " in evidence:
        needs = []  # more seeds would settle the readings apart, not decide the claim
        evidence = (evidence.rsplit("; inconclusive: ", 1)[0] + "; inconclusive: the "
                    "readings point to different verdicts (their observed differences fall on "
                    "both sides of the smallest that matters), so more seeds would more likely "
                    "settle them apart than decide it; a closer reproduction of the seed's "
                    "setting would")
    elif weakest.verdict == INCONCLUSIVE and needs and "; inconclusive: " in evidence:
        # The weakest reading's p is not the one needing most seeds: advise for them all.
        evidence = (evidence.rsplit("; inconclusive: ", 1)[0] + "; inconclusive: "
                    + seeds_text(_most_seeds(needs)(alpha), "decide it in every reading",
                                 alpha))
    # Undecided: the rows more seeds would go to are every undecided reading's, not only the
    # weakest's (a reading left at fewer than min_seeds runs could never be decided).
    configs = weakest.configs if weakest.verdict != INCONCLUSIVE else tuple(
        {id(row): row for _, v in per if not v.decided for row in v.configs}.values())
    return replace(weakest, configs=configs,
                   seeds_needed=_most_seeds(needs) if needs else None, evidence=(
        f"{evidence} (the same verdict in every reading the seed leaves open, "
        f"{len(per)}; shown: {side_label(summary, reading)}, the weakest"
        + (f"; the observed difference per reading: {signs}" if signs else "") + ")"))


def _differences_by_reading(claim: Claim, per: list[tuple[Any, Verdict]], summary: Summary
                            ) -> str:
    """``sgd +0.4, adam -4.9`` (claimed side minus the other, in the metric's units) for an
    undecided `better` claim, so a reader sees where the readings point ("" otherwise)."""
    if claim.kind != "better" or any(v.verdict != INCONCLUSIVE for _, v in per):
        return ""
    parts = []
    for r, v in per:
        if len(v.configs) != 2:
            return ""
        a, b = (row.get(f"{v.metric}_mean") for row in v.configs)
        if a is None or b is None or not (math.isfinite(a) and math.isfinite(b)):
            return ""
        # Means of the same numbers in another order differ by rounding: that is no difference.
        diff = a - b if abs(a - b) > 1e-9 * max(1.0, abs(a), abs(b)) else 0.0
        parts.append(f"{side_label(summary, r)} {diff:+.3g}")
    return ", ".join(parts)


def _split(claim: Claim, per: list[tuple[Any, Verdict]]) -> bool:
    """Whether a `better` claim's readings point to different verdicts, so that more seeds
    would settle them apart: with a smallest difference that matters, some observed gains
    reach it (supported, with enough seeds) and others fall short of it (no meaningful
    difference, or worse: not supported); without one, gains of opposite signs."""
    from hpo.schema import lower_is_better

    if claim.kind != "better":
        return False
    ways = set()
    for _, v in per:
        if len(v.configs) != 2:
            return False
        a, b = (row.get(f"{v.metric}_mean") for row in v.configs)
        if a is None or b is None or not (math.isfinite(a) and math.isfinite(b)):
            return False
        gain = (b - a) if lower_is_better(v.metric) else (a - b)
        margin = meaningful_difference(claim, v.metric)
        if margin:
            ways.add(gain >= margin)
        elif a != b:
            ways.add(gain > 0)
    return len(ways) == 2


def _pointing_against(claim: Claim, per: list[tuple[Any, Verdict]], summary: Summary
                      ) -> list[str]:
    """Undecided readings that run against the verdict the decided readings reached: one
    undecided only for want of min_seeds runs whose test already gives the other verdict (any
    kind); for a `better` claim, one whose observed difference falls short of the margin that
    matters (or is behind, without one), where they found it better, or is ahead by at least
    the margin, where they found it not better (a reading ahead by less points to "no
    meaningful difference", which is "not supported" too)."""
    from hpo.schema import lower_is_better

    decided = {v.verdict for _, v in per if v.verdict in (SUPPORTED, NOT_SUPPORTED)}
    if len(decided) != 1:
        return []
    wins = decided == {SUPPORTED}
    out = []
    for r, v in per:
        if v.verdict != INCONCLUSIVE:
            continue
        if v.would_be is not None:
            if v.would_be not in decided:
                out.append(side_label(summary, r))
            continue
        if claim.kind != "better" or len(v.configs) != 2:
            continue
        a, b = (row.get(f"{v.metric}_mean") for row in v.configs)
        if a is None or b is None or not (math.isfinite(a) and math.isfinite(b)) or a == b:
            continue
        gain = (b - a) if lower_is_better(v.metric) else (a - b)
        margin = meaningful_difference(claim, v.metric) or 0.0
        # Where a margin matters, a gain short of it points to "no meaningful difference".
        if (gain < margin if margin else gain <= 0) if wins else (
                gain >= margin if margin else gain > 0):
            out.append(side_label(summary, r))
    return out


def _what_points(claim: Claim) -> str:
    """What of an undecided reading points a way: a comparison's difference, else its test."""
    return ("the observed difference" if claim.kind == "better" else
            "the test on fewer than min_seeds runs")


def reading_gist(v: Verdict) -> str:
    """A reading's p-value and, for an equivalence claim, its difference and the margin (the
    numbers a reader needs to see why the readings disagree)."""
    parts = [f"p = {v.p_value:.3g}"] if math.isfinite(v.p_value) else []
    if "no meaningful difference" in v.evidence:  # a TOST p-value, not a difference's
        parts = [f"no meaningful difference, TOST p = {v.p_value:.3g}"]
    if "every run the same" in v.evidence:  # a p of 0 or 1 from zero variance, not from data
        parts = ["every run the same"]
    if v.claim.kind == "at_chance" and v.configs:
        # Whether a configuration collapses is a count of runs, not only a mean's test.
        row = v.configs[0]
        parts.append(f"{int(row.get('collapsed', 0))} of {int(row.get('n', 0))} runs at chance")
    if v.claim.kind == "similar":
        found = re.search(r"difference [^;]*margin ±[^;]*", v.evidence)
        parts += [found.group(0)] if found else []
    return f" ({', '.join(parts)})" if parts else ""


def _most_seeds(needs: list[Callable[[float], int | None]]) -> Callable[[float], int | None]:
    """Seeds that decide every one of several tests: the largest of their needs (None wins)."""
    def most(alpha: float) -> int | None:
        ns = [f(alpha) for f in needs]
        return None if any(n is None for n in ns) else max(ns)
    return most


def evaluate_all(summary: Summary, alpha: float | None = None) -> list[Verdict]:
    """Every claim's verdict, each at its own level (``alpha`` for all, if given), with Holm's
    correction over the claims' decisive p-values."""
    judged = []
    levels = []
    for claim in summary.study.claims:
        level = claim_level(claim, summary)[0] if alpha is None else alpha
        judged.append(_beyond_the_plan(evaluate_in_readings(claim, summary, level),
                                       summary, level))
        levels.append(level)
    return holm_over_claims(judged, levels)


def _beyond_the_plan(v: Verdict, summary: Summary, level: float) -> Verdict:
    """An undecided claim of a study deciding its seeds, whose seeds advice exceeds the study's
    own cap: say so, or the reader asks why the study stopped short of the number it names."""
    config = summary.study.config
    if v.verdict != INCONCLUSIVE or not config.get("until_decided") or v.seeds_needed is None:
        return v
    needed, cap = v.seeds_needed(level), int(config["max_repeats"])
    if needed is None or needed <= cap or needed > SEED_CAP:
        return v
    return replace(v, evidence=f"{v.evidence}; more than this study's plan allows (at most "
                   f"{cap} seeds a configuration, max_repeats): deciding it takes a study "
                   f"planned for {needed}")


def claim_level(claim: Claim, summary: Summary) -> tuple[float, int, float]:
    """(the level the claim is tested at, the look of its data, its information share).

    ALPHA in a study of fixed seeds. With seeds added until decided, each distinct data the
    claim has been tested on is one of its looks, taken at its information share (the share of
    the runs its configurations would have at the cap), and the look tests at the exact
    group-sequential level of hpo.spec.looks' spending function at those shares: the chances
    of a first rejection at each look add up to at most ALPHA, however the looks fall."""
    from hpo.schema import LOOKS_ATTR
    from hpo.spec import level_at

    config = summary.study.config
    if not (config.get("until_decided") or summary.attrs.get(LOOKS_ATTR)):
        return ALPHA, 1, 1.0
    shares = claim_shares(claim, summary)
    return level_at(ALPHA, shares), len(shares), shares[-1]


def claim_shares(claim: Claim, summary: Summary) -> list[float]:
    """The information share of each distinct data a claim has been judged on: the first look's
    (``repeats`` seeds a configuration), then one after each look that raised the seeds of a
    configuration it compares (a look that added seeds elsewhere tested the same data again:
    the same test, which spends nothing more), the last one from the complete runs judged now;
    looks on fewer than min_seeds runs a configuration are left out. A share is the seeds of
    the configurations it compares (each up to the cap) over what they would have at the cap."""
    from hpo.schema import LOOKS_ATTR

    config = summary.study.config
    cap = max(int(config.get("max_repeats") or config["repeats"]), 1)
    seeds = dict.fromkeys(share_labels(claim, summary), int(config["repeats"]))
    if not seeds:
        return [1.0]

    def share(counts: Mapping[str, int]) -> float:
        return sum(min(int(n), cap) for n in counts.values()) / (len(counts) * cap)

    # A look on fewer than min_seeds runs a configuration cannot decide (claims.evaluate
    # leaves it inconclusive), so it rejects nothing and spends no alpha: it is not counted.
    least = summary.min_seeds
    shares = [share(seeds)]
    decisive = [min(seeds.values()) >= least]
    for look in summary.attrs.get(LOOKS_ATTR) or []:
        raised = {label: int(n) for label, n in (look.get("seeds") or {}).items()
                  if label in seeds and int(n) > seeds[label]}
        if raised:
            seeds.update(raised)
            shares.append(share(seeds))
            decisive.append(min(seeds.values()) >= least)
    complete = {label: 0 for label in seeds}
    complete.update({r["config"]: int(r["n"]) for r in summary.records() if r["config"] in seeds})
    now = share(complete)
    if now > (shares[-2] if len(shares) > 1 else 0.0):
        shares[-1] = now  # a batch still running, or runs that failed: what is judged
        decisive[-1] = min(complete.values()) >= least
    counted = [t for t, ok in zip(shares, decisive) if ok]
    return counted or shares[-1:]


def share_labels(claim: Claim, summary: Summary) -> set[str]:
    """The configurations a claim's information share counts: those of the readings its
    verdict can rest on (one left out as untrained gets no seeds, and counting its
    configurations would hold the share, and the level, down for ever)."""
    from hpo.reporting.claims import compared_labels

    _closest, every = claim_readings(claim, summary)
    kept = [r for r in every if not left_out(claim, summary, r)] or every
    return compared_labels(claim, summary, kept)


def data_looks(claim: Claim, summary: Summary) -> int:
    """The distinct data a claim has been judged on (see claim_shares)."""
    return len(claim_shares(claim, summary))


def next_level(v: Verdict, summary: Summary) -> float:
    """The level claim ``v`` would be tested at after one more batch of seeds to each of its
    verdict's configurations below the cap (what decide adds): its next look's share."""
    from hpo.spec import batch_size, level_at

    config = summary.study.config
    cap = int(config["max_repeats"])
    shares = claim_shares(v.claim, summary)
    # The same configurations as claim_shares counts, so the next share is never below it.
    counts = dict.fromkeys(share_labels(v.claim, summary), 0)
    counts.update({r["config"]: int(r["n"]) for r in summary.records() if r["config"] in counts})
    for row in v.configs:
        if row["config"] in counts:
            counts[row["config"]] = min(cap, counts[row["config"]] + batch_size(config))
    share = sum(min(n, cap) for n in counts.values()) / (max(len(counts), 1) * cap)
    return level_at(ALPHA, [*shares, share])


def looks_would_go_on(summary: Summary) -> bool:
    """Whether a study deciding its seeds stopped before today's rules would: a look now would
    add seeds to some undecided claim, because its configurations have fewer than min_seeds
    runs (the rule once stopped on two runs), because the seeds it needs no longer exceed
    futility_factor × the cap, or because it stopped at its "last planned look", which looks
    at information shares no longer run out before the cap. Such a study's looks are not over:
    the campaign runs it again and its report waits."""
    from hpo.spec import futile

    end = summary.attrs.get(END_ATTR)
    if not isinstance(end, str) or ("futility" not in end and "last planned look" not in end):
        return False
    config = summary.study.config
    least, cap = summary.min_seeds, int(config["max_repeats"])
    for v in evaluate_all(summary):
        runs = [int(row["n"]) for row in v.configs]
        if v.decided or not runs or min(runs) >= cap:
            continue
        if min(runs) < least:
            return True
        needs = v.seeds_needed(next_level(v, summary)) if v.seeds_needed else None
        if not (config["futility"] and futile(needs, config)):
            return True
    return False


def holm_over_claims(verdicts: list[Verdict], levels: Sequence[float] | float) -> list[Verdict]:
    """A decided test that does not survive Holm over the report's tests becomes inconclusive.

    Each claim's p-value is first scaled to ALPHA by its own level (p × ALPHA / level: a claim
    at look k of seeds until decided is tested at its look's share of alpha), then Holm runs
    at ALPHA. With one level for all this is Holm at that level."""
    if not isinstance(levels, Sequence):
        levels = [levels] * len(verdicts)
    # A claim left inconclusive without one p-value (its readings disagree) was still tested:
    # it counts in Holm's m with p = 1, or a report's other claims would be corrected for
    # fewer tests than it ran.
    raw = [min(1.0, (v.p_value if math.isfinite(v.p_value) else 1.0) * ALPHA / level)
           if v.verdict in TESTED and level > 0 else math.nan
           for v, level in zip(verdicts, levels)]
    adjusted = stats.holm(raw)
    m = sum(1 for p in raw if math.isfinite(p))
    out = []
    for v, p_adj, level in zip(verdicts, adjusted, levels):
        v = replace(v, p_adjusted=p_adj)
        if m > 1 and math.isfinite(p_adj):
            if v.verdict in (SUPPORTED, NOT_SUPPORTED) and not p_adj < ALPHA:
                n = v.seeds_needed(level / m) if v.seeds_needed else None
                tail = "" if v.seeds_needed is None else ": " + seeds_text(
                    n, f"decide it at α/{m}", level / m)
                v = replace(v, verdict=INCONCLUSIVE, evidence=(
                    f"{v.evidence}; {v.verdict} alone, but not after Holm over the report's "
                    f"{m} tests (adjusted p = {p_adj:.3g}); inconclusive{tail}"))
            else:
                v = replace(v, evidence=f"{v.evidence}; Holm-adjusted p = {p_adj:.3g}")
        out.append(v)
    return out
