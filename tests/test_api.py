"""The Python API runs, reads back and reports a real (tiny) study."""

from __future__ import annotations

from pathlib import Path

import pytest

import hpo
from hpo.errors import HpoError


@pytest.mark.slow
def test_run_results_report_round_trip(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'api.db'}"
    study = hpo.load_study_file("dropout_location", {"epochs": 1, "repeats": 1,
                                                     "train_subset": 200})
    assert study.config["epochs"] == 1
    locations = ["before_pool", "before_conv", "before_fc"]  # what the study's claims name
    done = hpo.run(study, storage=url, **{"space.model.dropout_location": locations,
                                          "space.train.optimizer": ["sgd"]})
    assert [t.state.name for t in done.trials] == ["COMPLETE"] * 3
    frame = hpo.results(url, "dropout_location")
    assert list(frame["model.dropout_location"]) == locations
    assert set(frame["seed"]) == {0}
    assert frame["test_acc"].between(0, 100).all()
    folder = hpo.report(url, "dropout_location", out=tmp_path / "reports")
    assert folder == tmp_path / "reports" / "dropout_location"
    assert (folder / "README.md").read_text().startswith("# dropout_location\n")


def test_bad_override_is_the_clis_one_line_error() -> None:
    with pytest.raises(HpoError) as err:
        hpo.load_study_file("dropout_location", {"train.lr": -1})
    assert str(err.value).endswith("studies/dropout_location.toml: train.lr must be a number > 0, "
                                   "got -1")


def test_unknown_attribute() -> None:
    with pytest.raises(AttributeError, match="module 'hpo' has no attribute 'nope'"):
        hpo.nope  # noqa: B018


def test_api_functions_are_top_level_attributes() -> None:
    from hpo import api, records, reporting  # noqa: F401  (importing them must not shadow)

    for name in ("run", "results", "report", "load_study_file"):
        assert getattr(hpo, name) is getattr(api, name)
        assert callable(getattr(hpo, name))
