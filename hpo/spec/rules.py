"""The values a key may take (choices) and the validators that check them."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TypeGuard

from hpo.schema import (
    JSON,
    METRICS,  # noqa: F401  (a study metric: the record schema's names)
)

DATASETS = ("digits", "mnist", "fashion_mnist", "kmnist", "cifar10", "imagefolder")
FAMILIES = ("cnn", "mlp", "alexnet", "efficientnet_lite0")
# The families built from ImageNet weights (or a package): `hpo run` checks those before a store.
PRETRAINED_FAMILIES = ("alexnet", "efficientnet_lite0")
PRETRAINED = ("none", "imagenet")
FINETUNE_BN = ("train", "frozen")
ACTIVATIONS = ("relu", "leaky_relu", "elu", "gelu", "sigmoid", "tanh")
POOLS = ("max", "avg", "none")
BATCH_NORMS = ("none", "conv", "fc", "both")
DROPOUT_LOCATIONS = (
    "none",
    "input",
    "before_conv",
    "after_conv",
    "before_pool",
    "before_fc",
    "between_fc",
)
CNN_ONLY_LOCATIONS = ("before_conv", "after_conv", "before_pool", "before_fc")
OPTIMIZERS = (
    "sgd",
    "momentum",
    "nesterov",
    "adam",
    "adamw",
    "adamax",
    "adadelta",
    "adagrad",
    "rmsprop",
)
SCHEDULES = ("none", "step", "cosine", "plateau")
PRECISIONS = ("fp32", "bf16")
LOSS_REDUCTIONS = ("mean", "sum")
# PyTorch's momentum adds the whole gradient to the velocity; the dampened (EMA) form adds
# (1 - momentum) x the gradient, as some course frameworks and textbooks write it.
MOMENTUM_FORMS = ("pytorch", "dampened")
THRESHOLD_ON = ("epoch", "minibatch")
SAMPLERS = ("grid", "tpe", "random", "gp", "cmaes")
PRUNERS = ("none", "median", "percentile", "hyperband")
ANALYSES = ("table", "flatness")


class RuleError(ValueError):
    """Raised by a validator with the rule that was broken (``must be > 0``)."""


# A study file's value in, the value the study keeps out (or a RuleError).
Validator = Callable[[object], JSON]


def is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def integer(low: int | None = None, high: int | None = None) -> Validator:
    rule = "must be an integer" + (f" >= {low}" if low is not None else "")
    rule += f" and <= {high}" if high is not None else ""

    def check(value: object) -> int:
        if not is_int(value) or (low is not None and value < low):
            raise RuleError(rule)
        if high is not None and value > high:
            raise RuleError(rule)
        return value

    return check


def real(
    *, gt: float | None = None, ge: float | None = None, lt: float | None = None,
    le: float | None = None,
) -> Validator:
    parts = [f"> {gt}" if gt is not None else "", f">= {ge}" if ge is not None else "",
             f"< {lt}" if lt is not None else "", f"<= {le}" if le is not None else ""]
    rule = "must be a number " + " and ".join(p for p in parts if p)

    def check(value: object) -> float:
        if not (is_int(value) or isinstance(value, float)) or not math.isfinite(value):
            raise RuleError(rule.strip())
        if (gt is not None and not value > gt) or (ge is not None and not value >= ge):
            raise RuleError(rule)
        if (lt is not None and not value < lt) or (le is not None and not value <= le):
            raise RuleError(rule)
        return float(value)

    return check


def choice(*options: str) -> Validator:
    rule = "must be one of " + ", ".join(repr(o) for o in options)

    def check(value: object) -> str:
        if value not in options:
            raise RuleError(rule)
        return value

    return check


def boolean(value: object) -> bool:
    if not isinstance(value, bool):
        raise RuleError("must be true or false")
    return value


def text(value: object) -> str:
    if not isinstance(value, str):
        raise RuleError("must be a string")
    return value


def optional_choice(*options: str) -> Validator:
    """None (unset) or one of ``options``."""
    pick = choice(*options)

    def check(value: object) -> str | None:
        return None if value in (None, "") else pick(value)

    return check


def optional_text(value: object) -> str | None:
    return None if value in (None, "") else text(value)


def int_list(low: int) -> Validator:
    rule = f"must be a list of integers >= {low}"

    def check(value: object) -> list[int]:
        if not isinstance(value, list) or not all(is_int(v) and v >= low for v in value):
            raise RuleError(rule)
        return list(value)

    return check


def int_or(literal: str, low: int) -> Validator:
    rule = f"must be an integer >= {low} or {literal!r}"

    def check(value: object) -> int | str:
        if value == literal or (is_int(value) and value >= low):
            return value
        raise RuleError(rule)

    return check


def key_list(value: object) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RuleError("must be a list of dotted keys of [space]")
    if len(set(value)) != len(value):
        raise RuleError("must not repeat a key")
    return list(value)


def choice_or_list(*options: str) -> Validator:
    rule = "must be one of " + ", ".join(repr(o) for o in options) + ", or a list of them"

    def check(value: object) -> str | list[str]:
        if value in options:
            return value
        if isinstance(value, list) and value and all(v in options for v in value):
            return list(value)
        raise RuleError(rule)

    return check
