"""`hpo bench`'s accuracy comparison: the two ways' runs paired by (configuration, seed).

A speed-up is only "at equal accuracy" when the two ways train to the same accuracy, and
that is a claim like any other: each run of one way is compared with the run of the other
way that trained the same configuration from the same seed, runs that collapsed (ended at
chance, by the report's at_chance rule) are counted apart, and on the pairs where both ways
trained the mean paired difference gets a 95% t interval. The verdict:

- equal within noise: the interval lies inside ± the equivalence margin;
- different: the interval excludes 0 and is not inside the margin;
- cannot tell: otherwise (the interval holds 0 and reaches past the margin), with the pairs
  that would narrow it to the margin where a bench would run that many.

Pure functions of per-run records (plain dicts, as the bench's JSON stores them).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hpo.reporting import stats
from hpo.reporting.chance import at_chance
from hpo.reporting.claim_sides import SEED_CAP
from hpo.reporting.tables import CONFIDENCE

if TYPE_CHECKING:
    import numpy as np

MARGIN = 1.0  # points of test accuracy: the default equivalence margin (--margin)
EQUAL = "equal within noise"


@dataclass
class Paired:
    """The paired comparison of hpo's runs (``b``) against the seeds' way's (``a``)."""

    pairs: int
    collapsed_a: int  # runs of the seeds' way that ended at chance (paired ones)
    collapsed_b: int  # runs of hpo's way that ended at chance
    only_a: list[tuple[str, int]] = field(default_factory=list)  # (config, seed): only a collapsed
    only_b: list[tuple[str, int]] = field(default_factory=list)
    both: int = 0  # pairs where both ways collapsed
    unpaired: int = 0  # runs whose (configuration, seed) the other way lacks
    differences: list[float] = field(default_factory=list)  # b - a where neither collapsed
    margin: float = MARGIN
    configurations: int = 1

    @property
    def clean(self) -> int:
        return len(self.differences)

    def interval(self) -> tuple[float, float, float] | None:
        """(mean difference, 95% low, 95% high) over the clean pairs; None under 2 of them."""
        d = stats.one_sample_diff(self.differences, 0.0)
        if d is None:
            return None
        low, high = stats.ci(d, CONFIDENCE)
        return d.diff, low, high

    @property
    def verdict(self) -> str:
        found = self.interval()
        if found is None:
            return (f"cannot tell ({self.clean} pair{'s' if self.clean != 1 else ''} where both "
                    "ways trained; at least 2 are needed)")
        mean, low, high = found
        span = f"interval [{low:+.2f}, {high:+.2f}]"
        if -self.margin < low and high < self.margin:
            return EQUAL
        if low > 0 or high < 0:
            return f"different ({span} excludes 0 and is not inside ±{self.margin:g})"
        return f"cannot tell ({span}; {self._advice(mean)})"

    def _advice(self, mean: float) -> str:
        """The pairs that would narrow the interval to the margin (80% power), where a bench
        would run that many; a difference at or past the margin is narrowed to exclude 0.
        The seeds it takes scale with the share of pairs in which both ways trained."""
        import numpy as np

        sd = float(np.std(self.differences, ddof=1))
        alpha = (1 - CONFIDENCE) / 2  # TOST at alpha: the 95% interval inside the margin
        if abs(mean) < self.margin:
            n, what = stats.seeds_for_equivalence(mean, sd, self.margin, alpha, 1), \
                "narrow it to the margin"
        else:
            n, what = stats.seeds_to_detect(mean, sd, 1 - CONFIDENCE, 1), "exclude 0"
        repeats = None if n is None else math.ceil(
            n * self.pairs / (self.clean * self.configurations))
        if repeats is None or repeats > SEED_CAP:
            return f"more than {SEED_CAP} seeds per configuration would be needed to {what}"
        return f"about {n} pairs where both ways train would {what}: --repeats {repeats}"


def compare(a: Sequence[Mapping[str, Any]], b: Sequence[Mapping[str, Any]], dataset: str,
            reduction: str = "mean", margin: float = MARGIN) -> Paired:
    """Pair runs (dicts with config, seed, test_acc, train_acc, train_loss) by (config, seed)."""
    runs_a = {(r["config"], int(r["seed"])): r for r in a}
    runs_b = {(r["config"], int(r["seed"])): r for r in b}
    keys = [k for k in runs_a if k in runs_b]
    down_a = _collapsed([runs_a[k] for k in keys], dataset, reduction)
    down_b = _collapsed([runs_b[k] for k in keys], dataset, reduction)
    found = Paired(pairs=len(keys), collapsed_a=sum(down_a), collapsed_b=sum(down_b),
                   unpaired=len(runs_a) + len(runs_b) - 2 * len(keys), margin=margin,
                   configurations=max(1, len({k[0] for k in keys})))
    for key, down1, down2 in zip(keys, down_a, down_b):
        if down1 and down2:
            found.both += 1
        elif down1 or down2:
            (found.only_a if down1 else found.only_b).append(key)
        else:
            found.differences.append(float(runs_b[key]["test_acc"]) -
                                     float(runs_a[key]["test_acc"]))
    return found


def _collapsed(runs: Sequence[Mapping[str, Any]], dataset: str, reduction: str) -> list[bool]:
    import numpy as np

    def column(name: str) -> np.ndarray:
        return np.array([math.nan if r.get(name) is None else float(r[name]) for r in runs],
                        dtype=float)

    if not runs:
        return []
    classes = max(int(r.get("n_classes") or 0) for r in runs)  # an image folder's, as read
    return [bool(v) for v in at_chance(column("train_acc"), dataset, column("train_loss"),
                                       reduction, column("val_acc"), classes)]


def lines(found: Paired, names: tuple[str, str] = ("seeds' way", "hpo")) -> list[str]:
    """The Markdown paragraph: pairs, collapses per way, the difference and the verdict."""
    a, b = names
    out = [f"Paired by configuration and seed: {found.pairs} pairs"
           + (f" ({found.unpaired} runs without a partner left out)" if found.unpaired else "")
           + f"; collapsed (ended at chance): {a} {found.collapsed_a}, {b} {found.collapsed_b}"
           + (f", both in {found.both} pairs" if found.both else "") + "."]
    for name, only in ((a, found.only_a), (b, found.only_b)):
        if only:
            out.append(f"Only {name} collapsed in: "
                       + "; ".join(f"{config} seed {seed}" for config, seed in only) + ".")
    interval = found.interval()
    if interval is not None:
        mean, low, high = interval
        out.append(f"Test accuracy, {b} − {a}, over the {found.clean} pairs where neither "
                   f"collapsed: {mean:+.2f} points (95% interval [{low:+.2f}, {high:+.2f}]; "
                   f"equivalence margin ±{found.margin:g}).")
    out.append(f"Verdict: {found.verdict}.")
    return out


def speed_line(speedup: float, found: Paired | None) -> str:
    """The speed-up, "at equal accuracy" only where the paired verdict is equal within noise."""
    head = f"Speed-up, study wall time: **{speedup:.2f}x**"
    if found is None:
        return head + "; accuracy not compared run by run (see below)."
    if found.verdict == EQUAL:
        return head + f" at equal accuracy (paired, within ±{found.margin:g} point"\
            + ("" if found.margin == 1 else "s") + ")."
    return head + f"; not a speed-up at equal accuracy (accuracy: {found.verdict.split(' (')[0]}" \
        ", see below)."
