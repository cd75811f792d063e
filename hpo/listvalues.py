"""List-valued parameters (``model.channels = [16, 4]``): the one place that says how such a
value is stored in Optuna, read back, and written in tables and labels.

Optuna's categorical choices must be scalars, so a list travels through Optuna as its JSON
text (``encode``); ``decode`` turns a stored param back into the list. Trials frames, tables,
figures and configuration labels write a list as ``label`` does (``[16, 4]``, hashable, so
configurations group), and ``from_label`` finds the choice such a label stands for. Pure
Python: imports nothing of hpo (``schema`` and ``space`` both import it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Protocol, TypeVar

T = TypeVar("T")


class Choices(Protocol):
    """What these functions read of a parameter (a ``spec.Param``, which they cannot import)."""

    type: str
    choices: Sequence[object]


def encode(value: T) -> T | str:
    """``value`` as an Optuna categorical choice: a list (or table) as its JSON text."""
    return json.dumps(value) if isinstance(value, (list, dict)) else value


def encoded(params: Mapping[str, object]) -> dict[str, object]:
    """Every value of ``params`` encoded (what Optuna stores for a configuration)."""
    return {k: encode(v) for k, v in params.items()}


def has_lists(param: Choices) -> bool:
    """A categorical parameter (a ``spec.Param``) with list choices: stored encoded."""
    return param.type == "categorical" and any(isinstance(c, list) for c in param.choices)


def decode(param: Choices, value: object) -> object:
    """A stored (Optuna) value of ``param`` in the study file's terms: the list again."""
    return json.loads(value) if has_lists(param) else value


def label(value: T) -> T | str:
    """How tables and labels write a value: a list as ``[16, 4]`` (hashable); others as they
    are."""
    return str(value) if isinstance(value, list) else value


def from_label(param: Choices, value: object) -> object:
    """The choice of ``param`` that ``value`` stands for: a label (``[16, 4]``) of a list
    choice back to the list; anything else as it is."""
    if isinstance(value, str) and param.type == "categorical" and value not in param.choices:
        return param.choices[[label(c) for c in param.choices].index(value)]
    return value
