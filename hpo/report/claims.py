"""Machine-checked verdicts on a study's ``[[claims]]``: does the measurement support the seed?

Every verdict is one of SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE, with the numbers behind it. The
tests are the report table's own: per-configuration means over seeds, Welch's t-test at
``tables.ALPHA`` (two-sided, no correction for multiple claims).

- ``best``: the named configuration has the best mean ``metric`` (default: the study's).
  Supported if it is the best row, or if it is not but Welch's test against the best row finds
  no significant difference (it is *within noise* of the best, and the verdict says so); not
  supported if it is significantly worse than the best row.
- ``better``: ``config`` has a better mean than ``than`` and Welch's p < ALPHA: supported; a
  significantly worse mean: not supported; p >= ALPHA: inconclusive.
- ``similar``: p >= ALPHA (no significant difference): supported (absence of a detected
  difference at this n, not proof of equality); p < ALPHA: not supported.
- ``at_chance``: the mean accuracy (default test_acc) lies within ``tolerance`` percentage
  points (default 5) of chance, 100 / n_classes: supported; otherwise not supported. The 95%
  t-interval is shown beside it.

Any test that cannot be computed (a configuration without complete runs, fewer than 2 runs on a
side of a Welch test, a claim that matches no or several configurations) is inconclusive.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from hpo.report.tables import ALPHA, Summary, _matches, format_value, short_names, welch_p
from hpo.spec import Claim

SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE = "supported", "not supported", "inconclusive"


@dataclass
class Verdict:
    claim: Claim
    metric: str
    verdict: str
    evidence: str  # the numbers behind the verdict, one sentence
    p_value: float = math.nan  # the Welch p-value the verdict rests on, when there is one


def claim_metric(claim: Claim, summary: Summary) -> str:
    if claim.metric is not None:
        return claim.metric
    return "test_acc" if claim.kind == "at_chance" else summary.study.config["metric"]


def n_classes(dataset: str) -> int:
    from hpo.data import DATASETS

    return DATASETS[dataset].n_classes if dataset in DATASETS else 10


def _label(summary: Summary, params: Any) -> str:
    names = short_names(summary.keys)
    return ", ".join(f"{names.get(k, k)}={format_value(v)}" for k, v in params)


def _row(summary: Summary, params: Any) -> tuple[dict | None, str]:
    rows = [r for r in summary.table.to_dict("records") if _matches(params, r)]
    if len(rows) != 1:
        return None, f"{_label(summary, params)} matches {len(rows)} configurations, not one"
    row = rows[0]
    if row["n"] == 0:
        return None, f"{row['config']} has no complete run"
    return row, ""


def _stat(row: dict, m: str) -> str:
    mean, std = row[f"{m}_mean"], row[f"{m}_std"]
    if not math.isfinite(mean):
        return f"{row['config']}: no finite {m}"
    spread = f" ± {std:.3g}" if math.isfinite(std) else ""
    return f"{row['config']}: {m} {mean:.4g}{spread} (n={int(row['n'])})"


def _p(a: dict, b: dict, m: str) -> float:
    return float(welch_p(a[f"{m}_mean"], a[f"{m}_std"], a["n"],
                         b[f"{m}_mean"], b[f"{m}_std"], b["n"]))


def _fmt_p(p: float) -> str:
    return "no test (n < 2)" if not math.isfinite(p) else (
        f"Welch p = {p:.3g}" if p >= 0.001 else "Welch p < 0.001")


def _better(a: float, b: float, m: str) -> bool:
    return a < b if m.endswith("_loss") else a > b


def evaluate(claim: Claim, summary: Summary) -> Verdict:
    m = claim_metric(claim, summary)
    row, why = _row(summary, claim.config)
    if row is None:
        return Verdict(claim, m, INCONCLUSIVE, why)
    if claim.kind == "at_chance":
        return _at_chance(claim, summary, row, m)
    if not math.isfinite(row[f"{m}_mean"]):
        return Verdict(claim, m, INCONCLUSIVE, _stat(row, m))
    if claim.kind == "best":
        return _best(claim, summary, row, m)
    other, why = _row(summary, claim.than)
    if other is None or not math.isfinite(other[f"{m}_mean"]):
        return Verdict(claim, m, INCONCLUSIVE, why or _stat(other, m))
    p = _p(row, other, m)
    evidence = f"{_stat(row, m)} vs {_stat(other, m)}; {_fmt_p(p)}"
    if not math.isfinite(p):
        return Verdict(claim, m, INCONCLUSIVE, evidence, p)
    significant = p < ALPHA
    if claim.kind == "similar":
        verdict = NOT_SUPPORTED if significant else SUPPORTED
        note = "significant difference" if significant else "no significant difference"
        return Verdict(claim, m, verdict, f"{evidence} ({note})", p)
    if not significant:
        return Verdict(claim, m, INCONCLUSIVE, f"{evidence} (within noise)", p)
    wins = _better(row[f"{m}_mean"], other[f"{m}_mean"], m)
    return Verdict(claim, m, SUPPORTED if wins else NOT_SUPPORTED,
                   f"{evidence} (significantly {'better' if wins else 'worse'})", p)


def _best(claim: Claim, summary: Summary, row: dict, m: str) -> Verdict:
    rows = [r for r in summary.table.to_dict("records")
            if r["n"] > 0 and math.isfinite(r[f"{m}_mean"])]
    rows.sort(key=lambda r: r[f"{m}_mean"], reverse=not m.endswith("_loss"))
    best = rows[0]
    if best["config"] == row["config"]:
        if len(rows) == 1:
            return Verdict(claim, m, SUPPORTED, f"{_stat(row, m)}; the only configuration")
        p = _p(row, rows[1], m)
        tail = ("" if not math.isfinite(p) else
                " (significantly better)" if p < ALPHA else " (runner-up within noise)")
        return Verdict(claim, m, SUPPORTED, f"best by mean: {_stat(row, m)}; runner-up "
                       f"{_stat(rows[1], m)}; {_fmt_p(p)}{tail}", p)
    p = _p(row, best, m)
    evidence = f"{_stat(row, m)}; best is {_stat(best, m)}; {_fmt_p(p)}"
    if not math.isfinite(p):
        return Verdict(claim, m, INCONCLUSIVE, evidence, p)
    if p < ALPHA:
        return Verdict(claim, m, NOT_SUPPORTED, f"{evidence} (significantly worse)", p)
    return Verdict(claim, m, SUPPORTED, f"{evidence} (not the best by mean, but within noise "
                   "of it)", p)


def _at_chance(claim: Claim, summary: Summary, row: dict, m: str) -> Verdict:
    chance = 100.0 / n_classes(summary.study.config["dataset"])
    mean, low, high = row[f"{m}_mean"], row[f"{m}_ci_low"], row[f"{m}_ci_high"]
    if not math.isfinite(mean):
        return Verdict(claim, m, INCONCLUSIVE, _stat(row, m))
    ci = f", 95% CI [{low:.3g}, {high:.3g}]" if math.isfinite(low) else ""
    inside = abs(mean - chance) <= claim.tolerance
    evidence = (f"{_stat(row, m)}{ci}; chance {chance:.3g}% ± {claim.tolerance:g} points: mean "
                f"{'inside' if inside else 'outside'}")
    return Verdict(claim, m, SUPPORTED if inside else NOT_SUPPORTED, evidence)


def evaluate_all(summary: Summary) -> list[Verdict]:
    return [evaluate(c, summary) for c in summary.study.claims]


def claims_markdown(verdicts: list[Verdict]) -> str:
    """The README's Claims table."""
    lines = ["| claim | kind | metric | verdict | evidence |", "|---|---|---|---|---|"]
    for v in verdicts:
        cells = (v.claim.text, v.claim.kind, v.metric, f"**{v.verdict}**", v.evidence)
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)
