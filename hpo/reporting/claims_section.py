"""The report's Claims section: its first paragraph (the rules the verdicts follow, the
corrections, the seed advice) and the table of verdicts (hpo.reporting.verdicts judges them)."""

from __future__ import annotations

from hpo.reporting.claim_kinds import BOOTSTRAP_DRAWS
from hpo.reporting.claims import Verdict
from hpo.reporting.tables import ALPHA, Summary
from hpo.reporting.verdicts import claim_level
from hpo.schema import RATIO_METRICS
from hpo.spec import SIMILAR_MARGIN


def claims_intro(summary: Summary) -> str:
    """The Claims section's first paragraph: the rules, the corrections, the power rule."""
    looks = ""
    levels = [claim_level(c, summary) for c in summary.study.claims]
    if any(level != (ALPHA, 1, 1.0) for level in levels):
        each = "; ".join(f"claim {i} look {taken} at {share:.0%} of its planned runs, "
                         f"α = {level:.3g}" for i, (level, taken, share) in enumerate(levels, 1))
        looks = (" Seeds were added until the claims were decided: each distinct data a claim "
                 "was tested on is one of its looks, taken at its information share t (the "
                 "seeds of the configurations it compares over what they would have at the "
                 "cap), and each look tests at the exact group-sequential level of a "
                 "Pocock-type spending function α(t) = 0.05·ln(1 + (e − 1)t) (Lan-DeMets): "
                 "with no effect, the chance that a claim is first rejected at a look is "
                 "α(t_k) − α(t_(k−1)), given that the looks share data, so the chances add up "
                 "to at most 0.05 however the looks fall: "
                 f"{each}. Holm over the claims runs on p × 0.05 / α, so Holm-adjusted p is "
                 "compared with 0.05.")
    return (
        "What the seed reports claimed, checked against these measurements. `better`: "
        "supported iff Welch's two-sided t-test finds it significantly better, not supported "
        "iff significantly worse, or, on accuracies, iff the difference is shown smaller than "
        "the smallest that matters (the claim's margin, default 1 point; TOST), significant "
        "or not: no meaningful difference. `best`: supported iff best by mean and "
        "significantly better than every other configuration (Welch, Holm-corrected over "
        "those comparisons), not supported iff another is significantly better or, on "
        "accuracies, shown within 1 point of it (TOST, Holm over the tied ones: a tie is no "
        "best); an inconclusive `best` names those it is not yet separated from. "
        "`similar`: TOST equivalence within ±margin (default "
        f"{SIMILAR_MARGIN:g} accuracy point; supported iff the (1 − 2α) confidence interval of "
        "the difference, 90% at α = 0.05, lies inside it; not supported iff the difference is "
        "significantly larger than the margin, one-sided). `at_chance`: the same on "
        "the mean against chance ± tolerance. `not exercised`: the mechanism never acted (a stop "
        "rule that fired in no run, or both sides the same runs); `not applicable`: the study "
        f"did not run in the setting the claim needs. A decision needs at least "
        f"{summary.min_seeds} seeds a configuration (`min_seeds`; a std "
        "from two runs makes nearly any difference significant): with fewer the verdict is "
        f"inconclusive and says what it would be. Tests at α = {ALPHA:g} (with seeds added "
        "until decided, at each look's level, below), then Holm over "
        "the report's claims (a claim significant alone but not after it is inconclusive). "
        "Every inconclusive verdict says how many seeds per configuration would decide it at "
        "the observed difference (80% power with the pooled std, at α before the Holm "
        "corrections, taking the observed difference and spread as true: for the two-sample "
        "t-test where the difference is at least the margin, for TOST equivalence where it is "
        "smaller; a rough, optimistic estimate, the rougher the fewer seeds it rests on). "
        "Where the seed left "
        "something open (readings), a claim is judged in the reading the published numbers "
        "single out; if none is singled out, a verdict stands only when every reading gives it "
        "(p: the largest of the readings'), and readings that disagree leave it inconclusive. "
        "A reading in which a configuration that a `better`, `best` or `similar` claim compares "
        "did not train (its mean final training accuracy within the at_chance tolerance of "
        "chance, or its mean-reduced training loss near guessing's with its accuracy within "
        "three tolerances of chance, while its validation accuracy is not more than three "
        "tolerances above chance), on either side, is left out of that claim's verdict "
        "(not of a claim on what a run costs: seconds need no training) and named (a study "
        "without readings is one reading); with no reading left the claim is not exercised. "
        "An `at_chance` claim leaves out a reading in which no configuration trains. Holm "
        "counts every claim tested, one whose readings disagree with p = 1. "
        "Verdicts named for other readings are uncorrected." + looks + _new_kinds(summary)
    )


def _new_kinds(summary: Summary) -> str:
    """The rules of the kinds only some studies use, said where they are used."""
    kinds = {c.kind for c in summary.study.claims}
    return "".join([
        *(f" `{kind}`: supported iff the configuration's mean is significantly {kind} the "
          f"stated value (one-sample t-test, two-sided), not supported iff significantly "
          f"{other}; its seed advice is for that one-sample test."
          for kind, other in (("above", "below"), ("below", "above")) if kind in kinds),
        " `spread`: supported iff the metric varies more between seeds than the other metric "
        "in the same runs, relative to each mean (std / |mean|) or, where the claim says "
        "absolute, as plain standard deviations (two metrics in the same units): the percentile "
        f"bootstrap interval (seeds resampled in pairs, {BOOTSTRAP_DRAWS} draws, a fixed "
        "generator) of the ratio lies above 1; not supported iff below 1; no seed advice."
        if "spread" in kinds else "",
        " A `better` claim on sharpness or relative sharpness (they vary by factors between "
        "seeds) compares the ratio of geometric means: Welch's test on the logarithms, the ratio "
        "with its CI."
        if any(c.kind == "better" and c.metric in RATIO_METRICS and c.margin is None
               for c in summary.study.claims) else ""])


def claims_markdown(verdicts: list[Verdict]) -> str:
    """The README's Claims table."""
    lines = ["| claim | kind | metric | verdict | evidence |", "|---|---|---|---|---|"]
    for v in verdicts:
        cells = (v.claim.text, v.claim.kind, v.metric, f"**{v.verdict}**", v.evidence)
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


# What the results table already shows per configuration; a claim on any other measure gets its
# per-configuration values below the claims, so a verdict's numbers can be read off the report.
TABLE_MEASURES = ("train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc",
                  "wall_time", "cpu_time", "epoch_seconds", "epochs_run", "epochs_to_target")


def measures_markdown(summary: Summary) -> str:
    """Per configuration, mean ± std (n) of each claim measure the results table lacks
    (late_loss_fall, loss_fall, val_loss_rise, sharpness, ...); "" when there is none."""
    from hpo.reporting.claim_sides import claim_metric, side_of

    measures = list(dict.fromkeys(
        m for c in summary.study.claims for m in (claim_metric(c, summary), c.than_metric)
        if m and m not in TABLE_MEASURES))
    rows = [row for row in summary.records() if int(row.get("n") or 0) > 0]
    if not measures or not rows:
        return ""

    def cell(row: dict, m: str) -> str:
        values = side_of(summary, row, m).values
        if len(values) == 0:
            return "–"
        if len(values) == 1:
            return f"{values.mean():.3g} (n=1)"
        # The lowest and highest run: a mean of a bimodal cell (one seed of six escaping a
        # plateau) says little without them, and index rows quote them.
        return (f"{values.mean():.3g} ± {values.std(ddof=1):.2g} (n={len(values)}; "
                f"{values.min():.3g} to {values.max():.3g})")

    lines = ["The measures the claims compare that the results table lacks, per configuration "
             "(mean ± sample std over its complete runs, n; the lowest and the highest run):",
             "",
             "| configuration | " + " | ".join(measures) + " |",
             "|---|" + "---|" * len(measures)]
    lines += [f"| {row['config']} | " + " | ".join(cell(row, m) for m in measures) + " |"
              for row in rows]
    return "\n".join(lines)
