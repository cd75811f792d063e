"""Seeds until decided, as the study file plans them: batches, looks, and the level each look
tests at. Pure functions of the study's config, so the runner, the report and hpo.decide agree.

The looks spend alpha along Lan and DeMets' Pocock-type function alpha(t) = alpha·ln(1 +
(e − 1)·t), t the share of the planned looks taken: look k of K tests at alpha(k/K) −
alpha((k−1)/K), and these add up to alpha over all looks (a union bound: valid whatever the
looks' correlation). Pocock's shape spends more early than O'Brien-Fleming's, so a clear effect
stops after the first batches.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


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
    """The level of look ``look`` (1-based) of ``looks``: its share of the spending function."""
    look = min(max(look, 1), looks)
    return spent(alpha, look / looks) - spent(alpha, (look - 1) / looks)


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
