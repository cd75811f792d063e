"""Readings in which the networks a claim compares did not train (issue 24, item 1): which
readings a claim is judged over, which configurations did not train, and how they are named.
Below hpo.reporting.verdicts, which leaves such readings out of a claim's verdict, and which
counts a claim's information share over the readings left."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from hpo.reporting.chance import chance_config
from hpo.reporting.claim_sides import claim_metric, side_label
from hpo.reporting.claims import Verdict
from hpo.reporting.tables import Summary, in_reading
from hpo.spec import THRESHOLD_KINDS, Claim

if TYPE_CHECKING:
    from hpo.reporting.readings import Reading


def claim_readings(claim: Claim, summary: Summary) -> tuple[Any, list[Any]]:
    """(the reading the data single out or None, every reading); ``(None, [])`` when readings
    do not apply (no readings, or the claim names every reading key). Readings are given
    without the keys the claim names."""
    from hpo.reporting import readings as readings_mod

    all_readings = readings_mod.readings_of(summary)
    named = {k for k, _ in claim.config} | {k for k, _ in claim.than}
    if not all_readings or all(k in named for k, _ in all_readings[0]):
        return None, []
    strip = lambda r: tuple((k, v) for k, v in r if k not in named)  # noqa: E731
    closest = readings_mod.closest_reading(summary)
    return (strip(closest) if closest is not None else None,
            list(dict.fromkeys(strip(r) for r in all_readings)))


# Claims about a difference between trained networks; at_chance claims are about not training.
NEEDS_TRAINING = ("better", "best", "similar")
# Shapes of a training curve: a loss that stopped falling (or never rose) says nothing of a
# network that never learned, so an above / below claim on them needs one that trains. On an
# accuracy, above / below is about training itself (label_shuffle: the network memorises).
CURVE_METRICS = ("late_loss_fall", "val_loss_rise", "val_acc_drop")


def needs_training(claim: Claim, metric: str) -> bool:
    """Whether a reading in which the claim's configurations did not train is left out of it.
    Never for what a run costs (seconds, memory, parameters): that needs no training."""
    from hpo.schema import COST_METRICS

    if metric in COST_METRICS:
        return False
    return claim.kind in NEEDS_TRAINING or (claim.kind in THRESHOLD_KINDS
                                            and metric in CURVE_METRICS)


def untrained_label(summary: Summary, reading: Reading, rows: list[dict]) -> str:
    each = "; ".join(f"{row['config']} did not train" + (f": {why}" if (why := stuck_at(row))
                                                          else "") for row in rows)
    return f"{side_label(summary, reading)} ({each})"


def stuck_at(row: dict) -> str:
    """'training loss 2.24, accuracy 18.0%': what "did not train" rests on (a row that barely
    moved, above chance by accuracy but at guessing's loss, reads differently from one at
    chance)."""
    loss, acc = row.get("train_loss_mean"), row.get("train_acc_mean")
    if not (isinstance(loss, float) and isinstance(acc, float)
            and math.isfinite(loss) and math.isfinite(acc)):
        return ""
    return f"training loss {loss:.3g}, accuracy {acc:.1f}%"


def row_labels(rows: list[dict]) -> tuple[str, ...]:
    """Each configuration once, with what "did not train" rests on."""
    labels = {row["config"]: f"{row['config']} ({why})" if (why := stuck_at(row))
              else row["config"] for row in rows}
    return tuple(labels.values())


def untrained_rows(claim: Claim, verdict: Verdict, config: dict) -> list[dict]:
    """The configurations a claim compares that did not train: their mean final training
    accuracy within the at_chance tolerance of guessing, or their mean training loss near
    guessing's (chance.at_chance; one seed that barely moved does not make one that trains).
    None for a claim that needs no training (needs_training)."""
    if not needs_training(claim, verdict.metric):
        return []
    return [row for row in verdict.configs if int(row.get("n") or 0) > 0 and stuck(row, config)]


def stuck(row: dict, config: dict) -> bool:
    """Whether a table row's configuration did not train (chance.at_chance on its means)."""
    import pandas as pd

    from hpo.reporting.chance import REDUCTION, at_chance

    acc = pd.Series([row.get("train_acc_mean")], dtype=float)
    loss = pd.Series([row.get("train_loss_mean")], dtype=float)
    val = pd.Series([row.get("val_acc_mean")], dtype=float)
    return bool(at_chance(acc, config["dataset"], loss, row.get(REDUCTION, config[REDUCTION]),
                          val, int(config.get("n_classes") or 0)).iloc[0])


def nothing_trains(claim: Claim, summary: Summary, reading: Reading | None) -> list[dict]:
    """For an at_chance claim: every configuration of the reading (the whole study without
    readings), if none of them trains. "X leaves the network at chance" needs a network that
    trains without X: where nothing trains (plain SGD at lr 1e-3 on digits, at every weight
    decay), ending at chance says nothing about X."""
    if claim.kind != "at_chance":
        return []
    config = chance_config(summary)
    rows = [row for row in summary.records() if int(row.get("n") or 0) > 0
            and (reading is None or in_reading(reading, row))]
    return rows if rows and all(stuck(row, config) for row in rows) else []


def left_out(claim: Claim, summary: Summary, reading: Reading) -> bool:
    """Whether evaluate_in_readings leaves ``reading`` out of the claim as untrained."""
    from hpo.reporting.claims import compared_labels

    if claim.kind == "at_chance":
        return bool(nothing_trains(claim, summary, reading))
    if not needs_training(claim, claim_metric(claim, summary)):
        return False
    labels = compared_labels(claim, summary, [reading])
    config = chance_config(summary)
    return any(stuck(row, config) for row in summary.records()
               if row["config"] in labels and int(row.get("n") or 0) > 0)
