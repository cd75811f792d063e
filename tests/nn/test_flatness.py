"""analysis = "flatness": the interpolation (plain PyTorch), a real tiny run, the artifacts,
and the report's flatness figure data."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import torch

from hpo import artifacts, cli, spec, store
from hpo.benchmarks import synthetic
from hpo.nn import data, flatness
from hpo.nn.models import ModelConfig, build_model
from hpo.nn.train import TrainConfig, evaluate, train_model
from hpo.reporting import figure_specs, figures, tables, write

optuna.logging.set_verbosity(optuna.logging.WARNING)

STUDY = """\
name = "flat"
analysis = "flatness"
dataset = "digits"
epochs = 2
repeats = 1
train_subset = 200

[model]
channels = [4, 4]
padding = 1
batch_norm = "conv"

[space]
"train.label_shuffle" = [0.0, 1.0]
"""


def test_interpolation_is_exact_at_the_ends_and_linear_between() -> None:
    a = {"w": torch.tensor([1.0, -2.0]), "bn.running_var": torch.tensor([1.0]),
         "bn.num_batches_tracked": torch.tensor(0)}
    b = {"w": torch.tensor([3.0, 2.0]), "bn.running_var": torch.tensor([4.0]),
         "bn.num_batches_tracked": torch.tensor(7)}
    assert torch.equal(flatness.interpolate(a, b, 0.0)["w"], a["w"])
    assert torch.equal(flatness.interpolate(a, b, 1.0)["w"], b["w"])
    mid = flatness.interpolate(a, b, 0.5)
    assert mid["w"].tolist() == [2.0, 0.0] and mid["bn.running_var"].tolist() == [2.5]
    assert mid["bn.num_batches_tracked"].item() == 7  # integer buffers: the final ones
    # Extrapolated past the end a variance would go negative (1 - 1.5 * 3 < 0): clipped to 0.
    assert flatness.interpolate(b, a, 1.5)["bn.running_var"].tolist() == [0.0]
    assert flatness.ALPHAS[5] == 0.0 and flatness.ALPHAS[17] == 1.0 and len(flatness.ALPHAS) == 25
    assert flatness.ALPHAS[15:20] == (0.95, 0.98, 1.0, 1.02, 1.05)  # the sharpness's neighbourhood


@pytest.mark.slow
def test_curve_at_alpha_0_and_1_is_the_initial_and_final_network() -> None:
    splits = data.load("digits", train_subset=200)
    config = spec.validate({"name": "x", "model": {"channels": [4, 4], "padding": 1,
                                      "batch_norm": "conv"}}, "test").config
    model_cfg = ModelConfig.from_config(config)
    result = train_model(model_cfg, TrainConfig(), splits, epochs=2, batch_size=64, seed=0,
                         keep_weights=True)
    curve = flatness.flatness_curve(model_cfg, splits, result.initial_state, result.final_state,
                                    alphas=(0.0, 0.5, 1.0))
    assert curve["alpha"] == [0.0, 0.5, 1.0]
    assert set(curve) == {"alpha", "val_loss", "val_err", "train_loss", "train_err"}
    torch.manual_seed(0)
    initial = build_model(model_cfg, splits.shape, splits.n_classes)
    loss0, acc0 = evaluate(initial, splits.val_x, splits.val_y)
    assert curve["val_loss"][0] == pytest.approx(loss0, rel=1e-6)
    assert curve["val_err"][0] == pytest.approx(100 - acc0)
    assert curve["val_loss"][2] == pytest.approx(result.history[-1].val_loss, rel=1e-6)
    assert curve["val_err"][2] == pytest.approx(100 - result.history[-1].val_acc)


@pytest.fixture(scope="module")
def flat_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    folder = tmp_path_factory.mktemp("flat")
    path = folder / "flat.toml"
    path.write_text(STUDY)
    url = f"sqlite:///{folder}/f.db"
    assert cli.main(["run", "--study", str(path), "--storage", url, "--no-progress"]) == 0
    return url, folder


@pytest.mark.slow
def test_a_real_run_records_the_curve_and_saves_both_weights(flat_store: tuple[str, Path]
                                                             ) -> None:
    url, folder = flat_store
    study_obj = store.load_study(store.open_storage(store.parse(url), create=False), "flat")
    trials = study_obj.get_trials()
    assert len(trials) == 2
    splits = data.load("digits", train_subset=200)
    for t in trials:
        curve = t.user_attrs["flatness"]
        assert curve["alpha"] == list(flatness.ALPHAS)
        assert len(flatness.ALPHAS) == 25
        assert all(len(curve[k]) == 25 for k in ("val_loss", "val_err", "train_loss",
                                                 "train_err"))
        # alpha = 1 is the final network: the last epoch's validation numbers.
        final = flatness.ALPHAS.index(1.0)
        assert curve["val_loss"][final] == pytest.approx(t.user_attrs["val_loss"], rel=1e-6)
        assert curve["val_err"][final] == pytest.approx(100 - t.user_attrs["val_acc"])
        theta0, theta1 = artifacts.load_trial_weights(t, artifacts.artifacts_dir(store.parse(url)))
        assert set(theta0) == set(theta1) and any(k.endswith("running_var") for k in theta0)
        model_cfg = ModelConfig.from_config(spec.load(str(folder / "flat.toml")).config)
        model = build_model(model_cfg, splits.shape, splits.n_classes)
        model.load_state_dict(theta0)
        assert curve["val_loss"][5] == pytest.approx(
            evaluate(model, splits.val_x, splits.val_y)[0], rel=1e-6)
        model.load_state_dict(theta1)
        assert curve["val_loss"][flatness.ALPHAS.index(1.0)] == pytest.approx(
            evaluate(model, splits.val_x, splits.val_y)[0], rel=1e-6)


def test_weights_round_trip_with_weights_only(tmp_path: Path) -> None:
    url = store.parse(f"sqlite:///{tmp_path}/w.db")
    study_obj = optuna.create_study(storage=str(url), study_name="w")
    trial = study_obj.ask()
    initial = {"a": torch.arange(6.0).reshape(2, 3), "n": torch.tensor(3)}
    final = {"a": torch.ones(2, 3), "n": torch.tensor(9)}
    ids = artifacts.save_trial_weights(trial, artifacts.artifacts_dir(url), initial, final)
    assert len(ids) == 2
    study_obj.tell(trial, 1.0)
    got0, got1 = artifacts.load_trial_weights(study_obj.trials[0], artifacts.artifacts_dir(url))
    assert torch.equal(got0["a"], initial["a"]) and got0["n"].item() == 3
    assert torch.equal(got1["a"], final["a"]) and got1["n"].item() == 9


def test_no_artifacts_saves_no_weights(tmp_path: Path) -> None:
    url = store.parse(f"sqlite:///{tmp_path}/w.db")
    study_obj = optuna.create_study(storage=str(url), study_name="w")
    trial = study_obj.ask()
    assert artifacts.save_trial_weights(trial, None, {"a": torch.ones(1)},
                                       {"a": torch.ones(1)}) == []
    assert not artifacts.artifacts_dir(url).exists()


@pytest.mark.slow
def test_flatness_data_averages_seeds(tmp_path: Path) -> None:
    study = spec.validate({"name": "fl", "analysis": "flatness", "repeats": 2,
                           "model": {"channels": [4, 4], "padding": 1},
                           "space": {"train.label_shuffle": [0.0, 1.0]}}, "test")
    url = store.parse(f"sqlite:///{tmp_path}/s.db")
    study_obj = synthetic.create_study(store.open_storage(url, create=True), study)
    trials = []
    for shuffle, base in ((0.0, 1.0), (1.0, 3.0)):
        for seed, shift in ((0, 0.0), (1, 2.0)):
            attrs = synthetic.record(seed, test_acc=50.0)
            attrs["flatness"] = {"alpha": [0.0, 1.0], "val_loss": [base + shift, base],
                                 "val_err": [90.0, 10.0 + shift], "train_loss": [None, 0.5],
                                 "train_err": [90.0, 0.0]}
            trials.append(synthetic.trial(study, {"train.label_shuffle": shuffle}, attrs))
    synthetic.add(study_obj, trials)
    summary = tables.summarize(store.load_study(store.open_storage(url, create=False), "fl"))
    got = figures.flatness_data(summary)
    assert got.configs == ["label_shuffle=0", "label_shuffle=1"]
    c = got.curves.set_index(["metric", "config", "alpha"])
    assert c.loc[("val_loss", "label_shuffle=0", 0.0), "mean"] == pytest.approx(2.0)
    assert c.loc[("val_loss", "label_shuffle=0", 0.0), "std"] == pytest.approx(2 ** 0.5)
    assert c.loc[("val_loss", "label_shuffle=1", 1.0), "mean"] == pytest.approx(3.0)
    assert c.loc[("val_err", "label_shuffle=1", 1.0), "mean"] == pytest.approx(11.0)
    assert c.loc[("train_loss", "label_shuffle=0", 0.0), "n"] == 0  # None is left out
    stems = [stem for stem, _, _ in figure_specs.figure_specs(summary)]
    assert "flatness" in stems
    written = write.write_report(summary, tmp_path / "reports")
    assert (written.folder / "figures" / "flatness.png").is_file()
