"""Guessing: the accuracy of a network that learned nothing, and which runs ended there (the
diverged/collapsed column, the did-not-train rule of the claims, at_chance claims). Its class
count is the dataset's, or, for an image folder (known only once read), what the trials
recorded."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, TypeVar

from hpo.errors import HpoError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from hpo.reporting.tables import Summary

Runs = TypeVar("Runs", "pd.Series", "np.ndarray")


def chance_acc(dataset: str, classes: int = 0) -> float:
    """Accuracy (%) of guessing: 100 / the dataset's classes, or for a dataset whose classes
    are known only once read (an image folder) the ``classes`` its trials recorded."""
    from hpo.nn.shapes import DATASETS

    known = DATASETS[dataset].n_classes if dataset in DATASETS else 10
    if not (known or classes):
        raise HpoError(f"the trials of this {dataset} study do not record how many classes its "
                       "data has (hpo records it from 2026-12-08 on), so guessing's accuracy is "
                       "unknown; run the study again to report it")
    return 100.0 / (known or classes)


def recorded_classes(frame: pd.DataFrame) -> int:
    """The class count the complete trials recorded (0 where none did)."""
    import pandas as pd

    if "n_classes" not in frame:
        return 0
    done = pd.to_numeric(frame.loc[frame["state"] == "COMPLETE", "n_classes"], errors="coerce")
    return int(done.max()) if done.notna().any() else 0


def chance_config(summary: Summary) -> dict[str, Any]:
    """The study's configuration with the class count its trials recorded (``n_classes``):
    what the did-not-train rule reads."""
    return {**summary.study.config, "n_classes": recorded_classes(summary.frame)}


REDUCTION = "train.loss_reduction"
# A mean cross-entropy this close to ln(classes), guessing's, has learned nothing (R1's plain SGD
# at lr 1e-3: 2.29-2.30 against ln 10 = 2.303, at 16% test accuracy).
CHANCE_LOSS_SHARE = 0.95
# ... where its accuracy is within this many at_chance tolerances of guessing (R1's plain SGD:
# 16-20% for 10 classes, within 3 x 5 points of 10%; mnist/batch_size_lr's x13 output layer: 44%
# at a loss of 2.2 is not).
LOSS_RULE_TOLERANCES = 3


def at_chance(train_acc: Runs, dataset: str, train_loss: Runs | None = None,
              reduction: str | Runs = "mean", val_acc: Runs | None = None,
              classes: int = 0) -> Runs:
    """Runs that learned nothing: final training accuracy (%, a Series) within the at_chance
    tolerance of guessing, or, for a mean-reduced loss, final training loss at least
    CHANCE_LOSS_SHARE of ln(classes) with accuracy within LOSS_RULE_TOLERANCES tolerances of
    guessing; unless the final weights' validation accuracy is more than LOSS_RULE_TOLERANCES
    tolerances above guessing (the training accuracy is a running mean over the last epoch: a
    one-epoch run that learned late reads 15% while its weights score 45%, R0 at lr 1e-5). A
    missing accuracy (a diverged run) counts as at chance.
    ``reduction`` is each run's (a Series) where a study varies it: a summed loss is a batch's
    worth of per-image losses, so its size says nothing about guessing."""
    from hpo.spec import CHANCE_TOLERANCE

    if len(train_acc) == 0:
        return train_acc > 0  # no complete run (an image folder's count unread yet): none stuck
    chance = chance_acc(dataset, classes)
    well_above = chance + LOSS_RULE_TOLERANCES * CHANCE_TOLERANCE
    stuck = ~(train_acc > chance + CHANCE_TOLERANCE)
    if train_loss is not None:
        guess_loss = math.log(100.0 / chance)
        # A loss at guessing's with accuracy well above chance is a network that learned,
        # with overconfident logits (an output layer initialised large keeps its loss high).
        near = train_acc <= well_above
        stuck = stuck | ((reduction == "mean") & near
                         & (train_loss >= CHANCE_LOSS_SHARE * guess_loss))
    if val_acc is not None:
        stuck = stuck & ~(val_acc > well_above)
    return stuck
