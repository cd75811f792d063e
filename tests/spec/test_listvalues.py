"""List-valued parameters: stored in Optuna as JSON, read back as lists, labelled one way."""

from __future__ import annotations

import math

from hpo import listvalues, schema
from hpo.spec import Param

NESTED = [[16, 4], [8, [2, 1]]]
PARAM = Param("model.channels", "categorical", choices=(NESTED, [32]))


def test_a_nested_list_round_trips_through_its_optuna_encoding() -> None:
    stored = listvalues.encode(NESTED)
    assert stored == "[[16, 4], [8, [2, 1]]]"  # JSON text: a scalar Optuna accepts
    assert listvalues.decode(PARAM, stored) == NESTED
    assert listvalues.encoded({"model.channels": NESTED, "train.lr": 0.1}) == {
        "model.channels": stored, "train.lr": 0.1}


def test_scalars_pass_through_and_are_decoded_only_for_list_choices() -> None:
    assert listvalues.encode(0.1) == 0.1 and listvalues.encode("relu") == "relu"
    plain = Param("model.activation", "categorical", choices=("relu", "[1]"))
    assert listvalues.decode(plain, "[1]") == "[1]"  # a string choice stays a string
    assert not listvalues.has_lists(plain) and listvalues.has_lists(PARAM)


def test_the_label_is_the_one_spelling_of_tables_and_labels() -> None:
    label = listvalues.label(NESTED)
    assert label == "[[16, 4], [8, [2, 1]]]"
    assert listvalues.label(["a", "b"]) == "['a', 'b']"
    assert listvalues.label(3) == 3 and listvalues.label(None) is None
    # A grid cell's list and a trials frame's label are one configuration.
    assert schema.norm(NESTED) == label
    assert schema.config_key([NESTED, 100]) == schema.config_key([label, 100.0])
    assert schema.config_label(["model.channels"], [NESTED]) == f"channels={label}"
    assert schema.trial_label({"model.channels": NESTED}) == f"channels={label}"
    # ...and the label leads back to the choice (the importance figures need it).
    assert listvalues.from_label(PARAM, label) == NESTED
    assert listvalues.from_label(PARAM, "[32]") == [32]
    assert math.isnan(listvalues.from_label(PARAM, math.nan))
