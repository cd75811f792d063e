"""Seeds until decided, as the study file plans them: batches, looks, and the level each look
tests at. Pure functions of the study's config, so the runner, the report and hpo.decide agree.

The looks spend alpha along Lan and DeMets' Pocock-type function alpha(t) = alpha·ln(1 +
(e − 1)·t), t a claim's information share (hpo.reporting.verdicts.claim_shares: the seeds of
the configurations it compares over what they would have at the cap). A look tests at the
exact group-sequential level: the nominal two-sided level c_k such that, with no effect, the
chance of crossing first at look k is alpha(t_k) − alpha(t_(k−1)), given the boundaries of the
looks before it. Crossing chances add up to alpha however many looks there are. The test
statistics of a claim's looks share data (look k's seeds include look k−1's), so they are
correlated as a Brownian motion's at the shares t_k; using each increment of alpha as the
level itself (a union bound) ignores that and leaves power unused: for 4 equal looks the last
would test at 0.0086, not 0.0188. Pocock's shape spends more early than O'Brien-Fleming's, so a
clear effect stops after the first batches.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from typing import Any

# Points of the numerical integration over the continuation region, per look: the crossing
# chances it gives agree with 10x as many points to ~1e-11.
_GRID = 401


def batch_size(config: Mapping[str, Any]) -> int:
    return int(config["repeats"])


def planned_looks(config: Mapping[str, Any]) -> int:
    """Looks at the data the cap allows: after repeats, then after each batch."""
    extra = max(0, int(config["max_repeats"]) - int(config["repeats"]))
    return 1 + math.ceil(extra / batch_size(config))


def spent(alpha: float, share: float) -> float:
    """Alpha spent by the share ``share`` (0-1) of the planned looks: Pocock-type."""
    return alpha * math.log(1 + (math.e - 1) * min(max(share, 0.0), 1.0))


def look_alpha(alpha: float, look: int, looks: int) -> float:
    """The nominal two-sided level of look ``look`` (1-based) of ``looks`` equally spaced ones:
    exact boundaries for the spending function's increments."""
    look = min(max(look, 1), looks)
    return _levels(float(alpha), tuple(k / looks for k in range(1, looks + 1)))[look - 1]


def level_at(alpha: float, shares: Sequence[float]) -> float:
    """The nominal two-sided level of the last of looks taken at information shares ``shares``
    (increasing, in (0, 1]; 1: every planned run in): the exact boundary given the earlier
    looks', so looks may come at any shares (a claim's data grows when other claims' seeds
    reach its configurations too) and never run out before the cap. 0.0 where the last share
    adds nothing (no alpha is left to spend on the same data)."""
    times = _times(shares)
    if not times or times[-1] <= (times[-2] if len(times) > 1 else 0.0):
        return 0.0
    return _levels(float(alpha), times)[-1]


def _times(shares: Sequence[float]) -> tuple[float, ...]:
    """Shares clipped to (0, 1] and rounded (equal data is one cache entry); an earlier share
    that adds nothing to the one before it is dropped (the same data tested again spends
    nothing), the last is kept as it is so that level_at can tell."""
    clipped = [round(min(max(float(x), 1e-6), 1.0), 9) for x in shares]
    out: list[float] = []
    for t in clipped[:-1]:
        if not out or t > out[-1]:
            out.append(t)
    return (*out, *clipped[-1:])


@functools.lru_cache(maxsize=512)
def _levels(alpha: float, times: tuple[float, ...]) -> tuple[float, ...]:
    """Each look's nominal level, by recursive numerical integration (Armitage, McPherson and
    Rowe) of the score S(t), a standard Brownian motion observed at the information shares
    ``times``: look k rejects when |S(t_k)| ≥ b_k, and b_k is chosen so that P(no earlier
    rejection, reject at k) is the spending function's increment alpha(t_k) − alpha(t_{k−1})."""
    import numpy as np
    from scipy import optimize, stats

    first = spent(alpha, times[0])
    levels = [first]
    bound = stats.norm.isf(first / 2) * math.sqrt(times[0])
    grid = np.linspace(-bound, bound, _GRID)
    density = stats.norm.pdf(grid, scale=math.sqrt(times[0]))
    for k in range(1, len(times)):
        step = math.sqrt(times[k] - times[k - 1])
        weights = _simpson(grid) * density  # the mass still running, at each point

        def crossing(b: float, weights: np.ndarray = weights, grid: np.ndarray = grid,
                     step: float = step) -> float:
            return float(weights @ (stats.norm.cdf((-b - grid) / step)
                                    + stats.norm.sf((b - grid) / step)))

        target = spent(alpha, times[k]) - spent(alpha, times[k - 1])
        bound = optimize.brentq(lambda b: crossing(b) - target, 1e-6, 20.0, xtol=1e-12)
        levels.append(float(2 * stats.norm.sf(bound / math.sqrt(times[k]))))
        new_grid = np.linspace(-bound, bound, _GRID)
        density = weights @ stats.norm.pdf((new_grid[None, :] - grid[:, None]) / step) / step
        grid = new_grid
    return tuple(levels)


def _simpson(grid: Any) -> Any:
    """Simpson's weights on an evenly spaced grid of an odd number of points."""
    import numpy as np

    w = np.ones(len(grid))
    w[1:-1:2], w[2:-1:2] = 4, 2
    return w * (grid[1] - grid[0]) / 3


def futile(needs: int | None, config: Mapping[str, Any]) -> bool:
    """Whether a claim that needs ``needs`` seeds per configuration at the observed difference
    (None: no number of seeds would decide it) stops for futility under the study's cap.

    Only past futility_factor × max_repeats: a difference estimated from a few seeds is noisy,
    and a claim that looks to need a little more than the cap is often decided by it (on
    digits, weight_decay's claim looked to need 23 seeds against a cap of 10 after 3 seeds, and
    10 fixed seeds decided it). At 3× the cap, the cap still has about a third of the power
    asked (80%) at the observed difference."""
    if needs is None:
        return True
    return needs > float(config["futility_factor"]) * int(config["max_repeats"])
