"""The record schema and the defaults: one name for each stored thing, one default per key."""

from __future__ import annotations

import math
from dataclasses import MISSING, fields

import pandas as pd
import pytest

from hpo import schema
from hpo.nn.shapes import ModelConfig
from hpo.nn.train import TrainConfig
from hpo.spec import KEYS


def _default(field):
    if field.default is not MISSING:
        return field.default
    return field.default_factory()


@pytest.mark.parametrize(("config", "section"), [(ModelConfig, "model"), (TrainConfig, "train")])
def test_keys_defaults_match_the_config_dataclasses(config, section) -> None:
    """KEYS holds the defaults; the dataclasses repeat them for direct (library) use. A key
    whose default drifts from its field's would train differently from a study file than from
    code: this pins them together (sequences compare as lists: KEYS says [], fields ())."""
    names = {f.name for f in fields(config)}
    assert {k.split(".", 1)[1] for k in KEYS if k.startswith(f"{section}.")} == names
    for field in fields(config):
        want = KEYS[f"{section}.{field.name}"].default
        got = _default(field)
        if isinstance(got, tuple):
            got = list(got)
        assert got == want, f"{section}.{field.name}: KEYS {want!r}, {config.__name__} {got!r}"


def test_metrics_are_the_schemas() -> None:
    from hpo import records, spec
    from hpo.reporting import tables

    assert spec.METRICS is schema.METRICS
    assert tables.STAT_METRICS is schema.STAT_METRICS and tables.STATES is schema.STATES
    assert records.METRICS is schema.FRAME_METRICS
    assert set(schema.STAT_METRICS) == set(schema.METRICS)
    assert set(schema.FRAME_METRICS) <= set(schema.RECORD_KEYS)


def test_one_ranking_rule() -> None:
    assert schema.best_position([80.0, math.nan, 91.0, 91.0], "val_acc") == 2
    assert schema.best_position([0.5, 0.2, None], "val_loss") == 1
    assert schema.best_position([math.nan], "test_acc") is None
    table = pd.DataFrame({"mean": [0.3, math.nan, 0.1, 0.3]})
    assert schema.ranked(table, "mean", "val_loss").index.tolist() == [2, 0, 3, 1]
    assert schema.ranked(table, "mean", "val_acc").index.tolist() == [0, 3, 2, 1]


def test_config_label() -> None:
    keys = ["model.dropout_location", "train.lr", "model.width"]
    assert schema.config_label(keys, ["before_pool", 0.001, math.nan]) == (
        "dropout_location=before_pool, lr=0.001")
    assert schema.config_label([], []) == "base configuration"
    assert schema.config_key([100, None]) == schema.config_key([100.0, math.nan])
