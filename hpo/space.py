"""The only place that turns a study's search space into Optuna suggestions.

Optuna's categorical choices must be scalars; list-valued choices (``model.channels``) travel
through Optuna encoded as ``hpo.listvalues`` says and are decoded as they are suggested, so
training sees real lists.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from hpo.listvalues import decode, encode
from hpo.spec import Param


def distribution(param: Param) -> Any:
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    if param.type == "categorical":
        return CategoricalDistribution([encode(c) for c in param.choices])
    if param.type == "int":
        return IntDistribution(int(param.low), int(param.high), log=param.log,
                               step=int(param.step or 1))
    return FloatDistribution(param.low, param.high, log=param.log, step=param.step)


def suggest(trial: Any, space: Sequence[Param], base: Mapping[str, Any]) -> dict[str, Any]:
    """Ask ``trial`` for every active parameter, in file order (conditions see earlier values)."""
    resolved = dict(base)
    params: dict[str, Any] = {}
    for param in space:
        if not param.active(resolved):
            continue
        if param.type == "categorical":
            raw = trial.suggest_categorical(param.key, [encode(c) for c in param.choices])
        elif param.type == "int":
            raw = trial.suggest_int(param.key, int(param.low), int(param.high),
                                    step=int(param.step or 1), log=param.log)
        else:
            raw = trial.suggest_float(param.key, param.low, param.high, step=param.step,
                                      log=param.log)
        params[param.key] = resolved[param.key] = decode(param, raw)
    return params


def cell_key(params: Mapping[str, Any]) -> str:
    """A canonical name for one configuration (same dict, same key, whatever the order)."""
    return json.dumps(dict(params), sort_keys=True)
