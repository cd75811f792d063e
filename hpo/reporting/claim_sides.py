"""A claim's sides: the per-seed values of the configurations it compares, the metric it is
judged on, and the words its evidence is written in."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hpo.reporting import stats
from hpo.reporting.tables import (
    ALPHA,
    Summary,
    config_key,
    epoch_seconds,
    epochs_to_target,
    format_value,
    short_names,
)
from hpo.schema import LOWER_IS_BETTER, lower_is_better  # noqa: F401
from hpo.spec import Claim

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

# sharpness: the training-set loss (labels as trained on) at alpha = 1 -/+ SHARPNESS_STEP,
# averaged, minus the loss at theta_final (alpha = 1): the valley's curvature in a small
# neighbourhood of the minimum, both directions (farther out it measures the climb back towards
# the initial weights, which every run has, not the valley's width).
SHARPNESS_STEP = 0.05


@dataclass
class Side:
    row: dict
    values: npt.NDArray[np.float64]  # per-seed metric values, finite only, in seed order
    seeds: list[Any]


def claim_metric(claim: Claim, summary: Summary) -> str:
    if claim.metric is not None:
        return claim.metric
    return "test_acc" if claim.kind == "at_chance" else summary.study.config["metric"]


def n_classes(dataset: str) -> int:
    from hpo.nn.shapes import DATASETS

    return DATASETS[dataset].n_classes if dataset in DATASETS else 10


def report_alpha(summary: Summary) -> float:
    """ALPHA; when seeds were added until decided, the level of the look this report is (the
    looks taken + 1), by hpo.spec.looks' alpha-spending function."""
    from hpo.schema import LOOKS_ATTR
    from hpo.spec import look_alpha, planned_looks

    config = summary.study.config
    adaptive = config.get("until_decided") or summary.attrs.get(LOOKS_ATTR)
    if not adaptive:
        return ALPHA
    taken = len(summary.attrs.get(LOOKS_ATTR) or []) + 1
    return look_alpha(ALPHA, taken, planned_looks(config))


# ---------------------------------------------------------------------------------------------
# Per-seed values


def sharpness(flatness: object) -> float:
    """Mean training-loss rise SHARPNESS_STEP either side of theta_final; NaN if unknown."""
    if not isinstance(flatness, dict):
        return math.nan
    alphas, losses = flatness.get("alpha") or [], flatness.get("train_loss") or []
    at = {round(a, 6): v for a, v in zip(alphas, losses)}
    points = [at.get(round(1.0 + s, 6)) for s in (-SHARPNESS_STEP, 0.0, SHARPNESS_STEP)]
    if any(p is None or not math.isfinite(p) for p in points):
        return math.nan
    return (points[0] + points[2]) / 2 - points[1]


def relative_sharpness(flatness: object) -> float:
    """sharpness over the training loss at theta_final: the valley's shape apart from its
    depth (a run that ends at a 100x higher loss rises 100x more for the same shape); NaN if
    unknown or the loss there is not positive."""
    if not isinstance(flatness, dict):
        return math.nan
    at = {round(a, 6): v for a, v in zip(flatness.get("alpha") or [],
                                          flatness.get("train_loss") or [])}
    bottom = at.get(1.0)
    if bottom is None or not math.isfinite(bottom) or bottom <= 0:
        return math.nan
    return sharpness(flatness) / bottom


LATE_EPOCHS = 2  # late_loss_fall: the last epoch against the one this many before it


def late_loss_fall(history: Sequence[object] | None) -> float:
    """How much (%) the training loss fell over the last LATE_EPOCHS epochs; NaN if unknown."""
    losses = [h.get("train_loss") for h in history or [] if isinstance(h, dict)]
    if len(losses) <= LATE_EPOCHS:
        return math.nan
    before, last = losses[-1 - LATE_EPOCHS], losses[-1]
    if not all(isinstance(x, (int, float)) and math.isfinite(x) for x in (before, last)) \
            or before <= 0:
        return math.nan
    return 100.0 * (before - last) / before


def val_loss_rise(history: Sequence[object] | None) -> float:
    """The last epoch's validation loss minus the run's lowest; NaN if unknown."""
    losses = [h.get("val_loss") for h in history or [] if isinstance(h, dict)]
    if not losses or not all(isinstance(x, (int, float)) and math.isfinite(x) for x in losses):
        return math.nan
    return losses[-1] - min(losses)


def val_acc_drop(history: Sequence[object] | None) -> float:
    """The run's highest validation accuracy minus the last epoch's (points); NaN if unknown."""
    accs = [h.get("val_acc") for h in history or [] if isinstance(h, dict)]
    if not accs or not all(isinstance(x, (int, float)) and math.isfinite(x) for x in accs):
        return math.nan
    return max(accs) - accs[-1]


def early_mean(steps: object, key: str, until_step: int) -> float:
    """The mean of the per-step curve's ``key`` (loss, acc) over its points up to
    ``until_step`` minibatches; NaN without a curve."""
    if not isinstance(steps, dict):
        return math.nan
    points = [v for s, v in zip(steps.get("step") or [], steps.get(key) or [])
              if s <= until_step and isinstance(v, (int, float)) and math.isfinite(v)]
    return sum(points) / len(points) if points else math.nan


def loss_fall(steps: object) -> float:
    """How much (%) the per-step training loss fell over the run, its first point against its
    last; NaN without a curve."""
    losses = steps.get("loss") if isinstance(steps, dict) else None
    if not losses or len(losses) < 2:
        return math.nan
    first, last = losses[0], losses[-1]
    if not all(isinstance(x, (int, float)) and math.isfinite(x) for x in (first, last)) \
            or first <= 0:
        return math.nan
    return 100.0 * (first - last) / first


def trial_value(record: dict, metric: str, target: float, early_steps: int = 100) -> float:
    if metric in ("early_train_loss", "early_train_acc"):
        return early_mean(record.get("steps"), metric.rsplit("_", 1)[1], early_steps)
    if metric == "loss_fall":
        return loss_fall(record.get("steps"))
    if metric == "late_loss_fall":
        return late_loss_fall(record.get("history"))
    if metric == "val_loss_rise":
        return val_loss_rise(record.get("history"))
    if metric == "val_acc_drop":
        return val_acc_drop(record.get("history"))
    if metric == "epoch_seconds":
        return epoch_seconds(record.get("history"))
    if metric == "epochs_to_target":
        return epochs_to_target(record.get("history"), target)
    if metric == "sharpness":
        return sharpness(record.get("flatness"))
    if metric == "relative_sharpness":
        return relative_sharpness(record.get("flatness"))
    if metric == "cpu_time":
        value = record.get("cpu_time")
        if is_missing(value):
            value = record.get("wall_time")  # stores made before cpu_time was recorded
    else:
        value = record.get(metric)
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def side_runs(summary: Summary, row: dict) -> list[dict]:
    """The complete trials of one configuration, in seed order."""
    return list(summary.complete_runs().get(config_key([row[k] for k in summary.keys]), []))


def side_of(summary: Summary, row: dict, metric: str) -> Side:
    import numpy as np

    target = float(summary.study.config.get("target_acc") or 0)
    early = int(summary.study.config.get("early_steps") or 100)
    runs = side_runs(summary, row)
    pairs = [(r.get("seed"), trial_value(r, metric, target, early)) for r in runs]
    pairs = [(s, v) for s, v in pairs if math.isfinite(v)]
    return Side(row, np.asarray([v for _, v in pairs], dtype=float), [s for s, _ in pairs])


# ---------------------------------------------------------------------------------------------
# Wording


def side_label(summary: Summary, params: Iterable[tuple[str, object]]) -> str:
    names = short_names(summary.keys)
    return ", ".join(f"{names.get(k, k)}={format_value(v)}" for k, v in params)


def stat_text(side: Side, m: str) -> str:
    x = side.values
    if len(x) == 0:
        return f"{side.row['config']}: no finite {m}"
    spread = f" ± {x.std(ddof=1):.3g}" if len(x) > 1 else ""
    # Every run the same (a network predicting one class, say): a test's p of 0 or 1 then
    # comes from zero variance, which the reader should see.
    same = ", every run the same" if len(x) > 1 and float(x.std(ddof=1)) == 0 else ""
    return f"{side.row['config']}: {m} {x.mean():.4g}{spread} (n={len(x)}{same})"


def p_text(p: float, name: str = "Welch p") -> str:
    if not math.isfinite(p):
        return "no test (n < 2)"
    return f"{name} = {p:.3g}" if p >= 0.001 else f"{name} < 0.001"


def amount_text(diff: float, m: str) -> str:
    """'0.24-point difference', '1.3 s difference', 'difference of 0.012 in val_loss'."""
    x = f"{abs(diff):.2g}"
    if m.endswith("_acc"):
        return f"{x}-point difference"
    if m in ("wall_time", "cpu_time", "epoch_seconds"):
        return f"{x} s difference"
    if m in ("epochs_run", "epochs_to_target"):
        return f"{x}-epoch difference"
    if m in ("late_loss_fall", "loss_fall"):
        late = " late" if m == "late_loss_fall" else ""
        return f"{x}-percentage-point difference in the{late} loss fall"
    return f"difference of {x} in {m}"


def units_text(m: str, amount: float) -> str:
    return "" if not m.endswith("_acc") else " point" if amount == 1 else " points"


# The most seeds per configuration worth advising: past this, more seeds are not how a person
# would decide the question (a study here runs 2-25).
SEED_CAP = 30


def seeds_text(n: int | None, what: str, alpha: float, groups: int = 2) -> str:
    """The power rule's sentence for an inconclusive verdict: a number only where a person
    would run it (at most SEED_CAP), otherwise why seeds will not decide it and what would."""
    tail = f" (80% power, α = {alpha:.3g})"
    per = " per configuration" if groups == 2 else ""
    if n is None or n > SEED_CAP:
        needed = (f"more than {stats.MAX_SEEDS:,}" if n is None else f"≈ {n:,}{per}")
        return (f"more seeds would not {what} in practice ({needed} at the observed spread, "
                f"more than the {SEED_CAP} a study would run): the seed-to-seed spread is large "
                "against the difference at stake; a larger stated meaningful difference (the "
                "claim's margin), a longer run or a setting closer to the seed's would decide it")
    return f"≈ {n:,} seeds{per} would {what}{tail}"


def is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
