from __future__ import annotations

import optuna
import pytest

from hpo import records, runner, spec, store
from hpo.errors import SpecError
from tests.conftest import TINY_STUDY


def run_study(path, url, overrides=(), command=""):
    study = spec.load(str(path), overrides)
    opts = runner.RunOptions(storage_url=url, device="cpu", progress=False, threads=1,
                             command=command)
    return study, runner.run(study, opts)


def complete(study_obj):
    return [t for t in study_obj.get_trials() if t.state.name == "COMPLETE"]


@pytest.mark.slow
def test_tiny_study_runs_every_cell_and_seed(write_study, storage_url):
    study, study_obj = run_study(write_study(), storage_url)
    trials = complete(study_obj)
    runs = sorted((t.params["model.dropout_location"], t.user_attrs["seed"]) for t in trials)
    assert runs == [("before_fc", 0), ("before_fc", 1), ("none", 0), ("none", 1)]
    record = trials[0].user_attrs
    for key in ("n_params", "train_loss", "train_acc", "val_loss", "val_acc", "test_loss",
                "test_acc", "epochs_run", "diverged", "stopped", "wall_time", "history"):
        assert key in record
    assert record["epochs_run"] == 1 and record["diverged"] is False
    assert len(record["history"]) == 1
    assert trials[0].intermediate_values == {1: record["val_acc"]}
    assert trials[0].value == record["val_acc"]
    attrs = study_obj.user_attrs
    assert attrs["hpo.dataset"] == "digits" and attrs["hpo.device"] == "cpu"
    assert set(attrs["hpo.versions"]) == {"hpo", "torch", "optuna", "python"}
    assert study_obj.metric_names == ["val_acc"]


@pytest.mark.slow
def test_rerun_resumes_and_runs_nothing_twice(write_study, storage_url):
    path = write_study()
    run_study(path, storage_url)
    _, study_obj = run_study(path, storage_url)
    assert len(study_obj.get_trials()) == 4
    # More seeds: only the new seed runs; the study records the command that ran it last.
    _, study_obj = run_study(path, storage_url, ["repeats=3"], command="hpo run --repeats 3")
    seeds = sorted(t.user_attrs["seed"] for t in complete(study_obj))
    assert seeds == [0, 0, 1, 1, 2, 2]
    assert study_obj.user_attrs["hpo.command"] == "hpo run --repeats 3"


@pytest.mark.slow
def test_seed_reproduces_the_trial(write_study, tmp_path):
    path = write_study()
    _, first = run_study(path, store.parse(f"sqlite:///{tmp_path / 'a.db'}"))
    _, second = run_study(path, store.parse(f"sqlite:///{tmp_path / 'b.db'}"))

    def by_run(study_obj):
        return {
            (t.params["model.dropout_location"], t.user_attrs["seed"]): [
                {k: v for k, v in epoch.items() if k != "seconds"}
                for epoch in t.user_attrs["history"]
            ]
            for t in complete(study_obj)
        }

    assert by_run(first) == by_run(second)


@pytest.mark.slow
def test_changed_settings_refuse_to_mix(write_study, storage_url):
    path = write_study()
    run_study(path, storage_url)
    with pytest.raises(SpecError) as info:
        run_study(path, storage_url, ["epochs=2"])
    assert str(info.value) == (
        "study 'tiny' in the store was run with other settings (epochs 1 -> 2); run it under "
        "a new name with --name NEW, or `hpo delete tiny` first"
    )


def test_only_a_grid_may_add_choices() -> None:
    old = [{"key": "train.lr", "type": "categorical", "choices": [0.001, 0.01]}]
    more = [{"key": "train.lr", "type": "categorical", "choices": [0.001, 0.003, 0.01]}]
    grid, tpe = {"sampler": "grid"}, {"sampler": "tpe"}
    assert spec.identity_diff({"config": grid, "space": old},
                              {"config": grid, "space": more}) == []
    assert spec.identity_diff({"config": grid, "space": more},
                              {"config": grid, "space": old}) == ["the search space"]
    assert spec.identity_diff({"config": tpe, "space": old},
                              {"config": tpe, "space": more}) == ["the search space"]
    conditional = [{**more[0], "when": {"train.optimizer": ["sgd"]}}]
    assert spec.identity_diff({"config": grid, "space": old},
                              {"config": grid, "space": conditional}) == ["the search space"]


@pytest.mark.slow
def test_divergence_is_recorded_as_complete(write_study, storage_url):
    path = write_study()
    _, study_obj = run_study(
        path, storage_url,
        ["train.optimizer=sgd", "train.lr=1e30", "epochs=3", "repeats=1",
         'space.model.dropout_location=["none"]'],
    )
    (trial,) = study_obj.get_trials()
    assert trial.state.name == "COMPLETE"
    assert trial.user_attrs["diverged"] is True
    assert trial.user_attrs["stopped"] == "diverged"
    frame = records.trials_frame(study_obj)
    assert frame.loc[0, "diverged"] == True  # noqa: E712 (numpy bool)


@pytest.mark.slow
def test_interrupted_trial_is_failed_and_rerun(write_study, storage_url, monkeypatch):
    path = write_study()
    calls = {"n": 0}
    from hpo import objective

    original = objective.run_trial

    def flaky(trial, study, data):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return original(trial, study, data)

    monkeypatch.setattr(objective, "run_trial", flaky)
    with pytest.raises(KeyboardInterrupt):
        run_study(path, storage_url)
    storage = store.open_storage(storage_url, create=False)
    states = sorted(t.state.name for t in optuna.load_study(
        study_name="tiny", storage=storage).get_trials())
    assert states == ["COMPLETE", "FAIL", "WAITING", "WAITING"]
    monkeypatch.setattr(objective, "run_trial", original)
    _, study_obj = run_study(path, storage_url)
    assert len(complete(study_obj)) == 4
    runs = {(t.params["model.dropout_location"], t.user_attrs["seed"])
            for t in complete(study_obj)}
    assert len(runs) == 4


@pytest.mark.slow
def test_tuning_study_counts_n_trials_across_restarts(write_study, storage_url):
    text = TINY_STUDY.replace('sampler = "grid"', 'sampler = "random"\nn_trials = 3')
    text = text.replace("repeats = 2", "repeats = 1")
    text += '"train.lr" = { type = "float", low = 1e-4, high = 1e-1, log = true }\n'
    path = write_study(text)
    _, study_obj = run_study(path, storage_url)
    assert len(complete(study_obj)) == 3
    _, study_obj = run_study(path, storage_url)
    assert len(study_obj.get_trials()) == 3
    _, study_obj = run_study(path, storage_url, ["n_trials=4"])
    assert len(complete(study_obj)) == 4


@pytest.mark.slow
def test_tuning_repeats_run_each_sampled_config_on_every_seed(write_study, storage_url):
    text = TINY_STUDY.replace('sampler = "grid"', 'sampler = "tpe"\nn_trials = 4')
    path = write_study(text)
    _, study_obj = run_study(path, storage_url)
    by_cell: dict[str, list[int]] = {}
    for t in complete(study_obj):
        by_cell.setdefault(t.user_attrs["cell"], []).append(t.user_attrs["seed"])
    assert sorted(sorted(s) for s in by_cell.values()) == [[0, 1], [0, 1]]


@pytest.mark.slow
def test_keys_added_after_a_study_was_stored_count_as_their_default(write_study, storage_url):
    path = write_study()
    _, study_obj = run_study(path, storage_url)
    identity = study_obj.user_attrs["hpo.identity"]
    del identity["config"]["pruner_startup_trials"]  # as stored by an older hpo
    study_obj.set_user_attr("hpo.identity", identity)
    _, study_obj = run_study(path, storage_url)  # resumes, nothing to do
    assert len(study_obj.get_trials()) == 4


@pytest.mark.parametrize(("pruner", "kept", "pruned"), [("median", 66.0, 64.0),
                                                          ("percentile", 75.0, 72.0)])
def test_pruners_keep_trials_above_their_share_of_earlier_ones(pruner, kept, pruned):
    study = spec.load("tune", [f"pruner={pruner!r}", "pruner_keep_percent=25",
                               "pruner_startup_trials=4"])
    store = optuna.create_study(direction="maximize", pruner=runner.make_pruner(study))
    for value in (50.0, 60.0, 70.0, 80.0):  # epoch-1 values: median 65, top quarter from 72.5
        store.add_trial(optuna.trial.create_trial(value=value, intermediate_values={1: value}))

    def prunes(value):
        trial = store.ask()
        trial.report(value, 1)
        return trial.should_prune()

    assert not prunes(kept)
    assert prunes(pruned)
