"""The fields of a [[claims]] entry that depend on its kind and metric: which metric, the
spread's second metric and scale, the threshold of above / below, the margin of similar /
better. Each checks one field and raises SpecError with one line naming it."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from hpo.errors import SpecError
from hpo.spec.model import (
    CLAIM_METRICS,
    SAME_UNITS,
    SPREAD_SCALES,
    STEP_METRICS,
    THRESHOLD_KINDS,
    Study,
)


def check_metric(where: str, metric: object, study: Study) -> None:
    """A claim's metric is one hpo can compute, and the study records what it needs."""
    if metric is not None and metric not in CLAIM_METRICS:
        raise SpecError(f"{where} must be one of {', '.join(CLAIM_METRICS)}, got {metric!r}")
    if metric == "epochs_to_target" and not study.config["target_acc"]:
        raise SpecError(f"{where} 'epochs_to_target' needs target_acc > 0 (the "
                        "validation accuracy to reach), got target_acc = 0")
    if metric in STEP_METRICS and not study.config["train.log_every"]:
        raise SpecError(f"{where} {metric!r} reads the per-step training curve: set "
                        "train.log_every (minibatches per point), got 0")
    if metric == "late_loss_fall" and study.config["epochs"] < 3:
        raise SpecError(f"{where} 'late_loss_fall' compares the last epoch with the "
                        f"one two before it: needs epochs >= 3, got {study.config['epochs']}")
    if metric in ("sharpness", "relative_sharpness") and study.config["analysis"] != "flatness":
        raise SpecError(f"{where} {metric!r} needs analysis = 'flatness', got "
                        f"{study.config['analysis']!r}")


def than_metric(where: str, raw: Mapping[str, Any], kind: str,
                       metric: str | None) -> str | None:
    """spread: the metric whose between-seed spread the claim's metric exceeds."""
    if kind != "spread":
        if "than_metric" in raw:
            raise SpecError(f"{where}.than_metric is only for kind 'spread', got kind {kind!r}")
        return None
    other = raw.get("than_metric")
    if metric is None or other not in CLAIM_METRICS or other == metric:
        raise SpecError(f"{where}: kind 'spread' needs metric and than_metric, two different "
                        f"metrics of {', '.join(CLAIM_METRICS)}; got {metric!r} and {other!r}")
    return str(other)


def spread_scale(where: str, raw: Mapping[str, Any], kind: str, metric: str | None) -> str:
    """spread: compare std / |mean| (relative, the default) or the plain std (absolute: both
    metrics in the same units, or the comparison means nothing)."""
    if "scale" not in raw:
        return "relative"
    scale = raw["scale"]
    if kind != "spread":
        raise SpecError(f"{where}.scale is only for kind 'spread', got kind {kind!r}")
    if scale not in SPREAD_SCALES:
        raise SpecError(f"{where}.scale must be one of "
                        f"{', '.join(repr(s) for s in SPREAD_SCALES)}, got {scale!r}")
    if scale == "absolute" and not any({metric, raw.get("than_metric")} <= set(units)
                                       for units in SAME_UNITS):
        raise SpecError(f"{where}: scale 'absolute' compares two standard deviations, so "
                        f"both metrics need the same units (two losses or two accuracies); "
                        f"got {metric!r} and {raw.get('than_metric')!r}")
    return str(scale)


def threshold_value(where: str, raw: Mapping[str, Any], kind: str) -> float | None:
    """above / below: the threshold the mean must exceed / stay under (required); no other
    kind takes one."""
    if kind not in THRESHOLD_KINDS:
        if "value" in raw:
            raise SpecError(f"{where}.value is only for kinds 'above' and 'below', got kind "
                            f"{kind!r}")
        return None
    value = raw.get("value")
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value):
        what = "exceed" if kind == "above" else "stay under"
        raise SpecError(f"{where}: kind {kind!r} needs value, a finite number (the threshold "
                        f"the mean must {what}), got {value!r}")
    return float(value)


def margin(where: str, raw: Mapping[str, Any], kind: str, metric: str) -> float | None:
    """similar: the equivalence margin; accuracy points default to SIMILAR_MARGIN, any other
    metric (losses, seconds, epochs) has no natural default and must name one. better: the
    smallest difference that matters (default SIMILAR_MARGIN on accuracies, none elsewhere): a
    difference shown to be smaller is decided as no meaningful difference."""
    if "margin" not in raw:
        if kind == "similar" and not metric.endswith("_acc"):
            raise SpecError(f"{where}: kind 'similar' on {metric!r} needs margin (the largest "
                            f"difference in {metric} that counts as the same)")
        return None
    margin = raw["margin"]
    if kind not in ("similar", "better"):
        raise SpecError(f"{where}.margin is only for kinds 'similar' and 'better', got kind "
                        f"{kind!r}")
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not margin > 0:
        raise SpecError(f"{where}.margin must be a number > 0, got {margin!r}")
    return float(margin)
