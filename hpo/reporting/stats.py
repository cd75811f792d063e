"""The tests behind claim verdicts: Welch, TOST equivalence, Holm, and seeds for 80% power.

Pure functions of per-seed values (numpy arrays) or summary numbers; no pandas, no Optuna.
Two-sample tests are Welch's (unequal variances). Seed counts for power use the textbook
two-sample t-test with the pooled standard deviation (equal group sizes, noncentral t), the
formula of G*Power and R's ``power.t.test``: d = 1 needs 17 seeds per group, d = 0.5 needs 64.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

POWER = 0.8
MAX_SEEDS = 1_000_000  # beyond this a seed count is reported as "more than"


@dataclass(frozen=True)
class Diff:
    """Welch's view of mean(a) - mean(b): the difference, its standard error and df."""

    diff: float
    se: float
    df: float

    @property
    def exact(self) -> bool:
        """Zero variance on both sides: the difference is known without error."""
        return self.se == 0.0


@functools.lru_cache(maxsize=4096)
def t_quantile(q: float, df: float) -> float:
    """Student's t quantile, cached: the seed-count searches and every interval ask for the
    same few (level, df) pairs thousands of times in one report (~0.25 ms each in scipy)."""
    from scipy import stats

    return float(stats.t.ppf(q, df))


def _clean(values: npt.ArrayLike) -> np.ndarray:
    import numpy as np

    x = np.asarray(values, dtype=float)
    return x[np.isfinite(x)]


def welch_diff(a: npt.ArrayLike, b: npt.ArrayLike) -> Diff | None:
    """None when either side has fewer than 2 finite values (no variance estimate)."""
    a, b = _clean(a), _clean(b)
    if len(a) < 2 or len(b) < 2:
        return None
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se2 = va + vb
    diff = float(a.mean() - b.mean())
    if se2 == 0:
        return Diff(diff, 0.0, math.inf)
    df = se2 ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    return Diff(diff, math.sqrt(se2), float(df))


def one_sample_diff(x: npt.ArrayLike, center: float) -> Diff | None:
    """mean(x) - center with the one-sample standard error; None with fewer than 2 values."""
    x = _clean(x)
    if len(x) < 2:
        return None
    return Diff(float(x.mean() - center), float(x.std(ddof=1) / math.sqrt(len(x))), len(x) - 1.0)


def _sf(t: float, df: float) -> float:
    """P(T > t) for Student's t with df degrees of freedom (df = inf: the normal)."""
    from scipy import stats

    return float(stats.norm.sf(t) if math.isinf(df) else stats.t.sf(t, df))


def p_two_sided(d: Diff) -> float:
    """H0: the true difference is 0. With zero variance: 1 for equal means, else 0."""
    if d.exact:
        return 1.0 if d.diff == 0 else 0.0
    return min(1.0, 2.0 * _sf(abs(d.diff / d.se), d.df))


def p_equivalent(d: Diff, margin: float) -> float:
    """TOST: the larger of the two one-sided p-values of H0 diff <= -margin, H0 diff >= margin.

    p < alpha iff the (1 - 2 alpha) confidence interval of the difference lies inside
    (-margin, margin)."""
    if d.exact:
        return 0.0 if abs(d.diff) < margin else 1.0
    p_low = _sf((d.diff + margin) / d.se, d.df)
    p_high = _sf((margin - d.diff) / d.se, d.df)
    return max(p_low, p_high)


def p_beyond(d: Diff, margin: float) -> float:
    """One-sided p of H0 |diff| <= margin, on the side the observed difference lies on:
    p < alpha means the difference is significantly larger than the margin."""
    if d.exact:
        return 0.0 if abs(d.diff) > margin else 1.0
    return _sf((abs(d.diff) - margin) / d.se, d.df)


def ci(d: Diff, level: float) -> tuple[float, float]:
    """The two-sided ``level`` confidence interval of the difference."""
    from scipy import stats

    if d.exact:
        return d.diff, d.diff
    q = float(stats.norm.ppf(0.5 + level / 2) if math.isinf(d.df)
              else t_quantile(0.5 + level / 2, d.df))
    return d.diff - q * d.se, d.diff + q * d.se


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (NaN stays NaN and does not count in m).

    Rejecting where the adjusted p < alpha controls the family-wise error rate at alpha."""
    finite = sorted((p, i) for i, p in enumerate(pvalues) if math.isfinite(p))
    m = len(finite)
    out = [math.nan] * len(pvalues)
    running = 0.0
    for rank, (p, i) in enumerate(finite):
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out


def pooled_std(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    a, b = _clean(a), _clean(b)
    dof = len(a) + len(b) - 2
    if len(a) < 2 or len(b) < 2 or dof <= 0:
        return math.nan
    return math.sqrt(((len(a) - 1) * a.var(ddof=1) + (len(b) - 1) * b.var(ddof=1)) / dof)


def _t_dist(n: int, groups: int) -> tuple[float, float]:
    """(standard-error factor, df) of a t-test with n values per group (1 or 2 groups)."""
    return (math.sqrt(2.0 / n), 2.0 * n - 2) if groups == 2 else (math.sqrt(1.0 / n), n - 1.0)


def power_difference(effect: float, n: int, alpha: float, groups: int = 2) -> float:
    """Power of the two-sided t-test to detect a standardized difference ``effect``."""
    from scipy import stats

    factor, df = _t_dist(n, groups)
    ncp = abs(effect) / factor
    crit = t_quantile(1 - alpha / 2, df)
    return float(stats.nct.sf(crit, df, ncp) + stats.nct.cdf(-crit, df, ncp))


def power_equivalence(effect: float, margin: float, n: int, alpha: float,
                      groups: int = 2) -> float:
    """Power of TOST (margin in std units) at a true standardized difference ``effect``."""
    from scipy import stats

    factor, df = _t_dist(n, groups)
    crit = t_quantile(1 - alpha, df)
    upper = stats.nct.sf(crit, df, (effect + margin) / factor)
    lower = stats.nct.cdf(-crit, df, (effect - margin) / factor)
    return max(0.0, float(upper + lower - 1.0))


def power_beyond(effect: float, margin: float, n: int, alpha: float, groups: int = 2) -> float:
    """Power of the one-sided test that |difference| exceeds the margin (std units)."""
    from scipy import stats

    factor, df = _t_dist(n, groups)
    crit = t_quantile(1 - alpha, df)
    return float(stats.nct.sf(crit, df, (abs(effect) - margin) / factor))


def _smallest_n(power: Callable[[int], float], target: float = POWER) -> int | None:
    """The smallest n >= 2 with power(n) >= target (power grows with n); None past MAX_SEEDS."""
    if power(2) >= target:
        return 2
    low, high = 2, 4
    while power(high) < target:
        low, high = high, high * 2
        if high > 2 * MAX_SEEDS:
            return None
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if power(mid) >= target else (mid, high)
    return high if high <= MAX_SEEDS else None


def seeds_to_detect(diff: float, sd: float, alpha: float, groups: int = 2) -> int | None:
    """Seeds per configuration giving 80% power to detect ``diff`` (None: never, or > cap)."""
    if not (math.isfinite(diff) and math.isfinite(sd)) or diff == 0 or sd <= 0:
        return None
    return _smallest_n(lambda n: power_difference(diff / sd, n, alpha, groups))


def seeds_for_equivalence(diff: float, sd: float, margin: float, alpha: float,
                          groups: int = 2) -> int | None:
    """Seeds per configuration giving TOST 80% power at a true difference ``diff``; None when
    |diff| >= margin (no number of seeds shows equivalence there) or sd is unknown."""
    if not (math.isfinite(diff) and math.isfinite(sd)) or sd <= 0 or abs(diff) >= margin:
        return None
    return _smallest_n(lambda n: power_equivalence(diff / sd, margin / sd, n, alpha, groups))


def seeds_to_exceed(diff: float, sd: float, margin: float, alpha: float,
                    groups: int = 2) -> int | None:
    """Seeds per configuration giving 80% power to show |diff| > margin; None if it is not."""
    if not (math.isfinite(diff) and math.isfinite(sd)) or sd <= 0 or abs(diff) <= margin:
        return None
    return _smallest_n(lambda n: power_beyond(diff / sd, margin / sd, n, alpha, groups))
