"""`hpo report` on stores filled with known synthetic trials (no training)."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib
import numpy as np
import optuna
import pytest
from scipy import stats

from hpo import cli, spec, store
from hpo.benchmarks import synthetic
from hpo.reporting import figures, published, render, tables, write
from hpo.store import StoreURL
from tests.conftest import cached_store

matplotlib.use("Agg")
optuna.logging.set_verbosity(optuna.logging.WARNING)

T975_2 = 4.302652729911275  # t quantile 0.975 with 2 degrees of freedom

LOCATION = {
    "name": "loc", "question": "Where should dropout go?", "dataset": "digits", "epochs": 2,
    "repeats": 3, "sampler": "grid", "model": {"channels": [4, 4], "padding": 1,
                                               "dropout": 0.2},
    "space": {"model.dropout_location": ["none", "before_pool", "before_conv"]},
    "reference": {"source": "R4 (MNIST)", "metric": "test_acc", "rows": [
        {"model.dropout_location": "before_pool", "value": 93.17},
        {"model.dropout_location": "before_conv", "value": 89.36},
    ]},
}
GRID2 = {
    "name": "grid2", "dataset": "digits", "epochs": 2, "repeats": 2, "sampler": "grid",
    "model": {"channels": [4, 4], "padding": 1},
    "space": {"train.optimizer": ["sgd", "adam"], "train.lr": [0.01, 0.1]},
    "reference": {"source": "R3", "metric": "test_acc",
                  "rows": [{"train.optimizer": "adam", "value": 88.1}]},
}
TUNING = {
    "name": "tune", "dataset": "digits", "epochs": 2, "repeats": 1, "sampler": "tpe",
    "n_trials": 12, "model": {"channels": [4, 4], "padding": 1},
    "space": {"train.lr": {"type": "float", "low": 1e-4, "high": 0.1, "log": True},
              "train.optimizer": ["sgd", "adam"]},
}


def make(raw: dict) -> spec.Study:
    import copy

    return spec.validate(copy.deepcopy(raw), "test")


@pytest.fixture
def url(tmp_path: Path) -> StoreURL:
    return store.parse(f"sqlite:///{tmp_path}/t.db")


@pytest.fixture
def location_store(url: StoreURL) -> StoreURL:
    """none: 80/82/84 (one diverged run); before_pool: 90 x3; before_conv: 85 + pruned + failed;
    plus a running trial of 'none'."""
    return cached_store(url.path, "report:location", _location_store)


def _location_store(url: StoreURL) -> None:
    study = make(LOCATION)
    storage = store.open_storage(url, create=True)
    study_obj = synthetic.create_study(storage, study, command="hpo run --study loc")
    rec = synthetic.record
    cell = "model.dropout_location"
    trials = [
        synthetic.trial(study, {cell: "none"}, rec(0, test_acc=80.0, train_loss=0.5)),
        synthetic.trial(study, {cell: "none"}, rec(1, test_acc=82.0, train_loss=0.7)),
        synthetic.trial(study, {cell: "none"}, rec(2, test_acc=84.0, train_loss=None,
                                                  diverged=True, epochs_run=1)),
        synthetic.trial(study, {cell: "none"}, {"seed": 3}, state="RUNNING"),
        *(synthetic.trial(study, {cell: "before_pool"}, rec(s, test_acc=90.0, wall_time=2.0))
          for s in range(3)),
        synthetic.trial(study, {cell: "before_conv"}, rec(0, test_acc=85.0, n_params=1000)),
        synthetic.trial(study, {cell: "before_conv"}, rec(1, test_acc=50.0), state="PRUNED"),
        synthetic.trial(study, {cell: "before_conv"}, {"seed": 2}, state="FAIL"),
    ]
    synthetic.add(study_obj, trials)


def summary_of(url: StoreURL, name: str, metric: str | None = None) -> tables.Summary:
    storage = store.open_storage(url, create=False)
    return tables.summarize(store.load_study(storage, name), metric)


def row(summary: tables.Summary, label: str) -> dict:
    return summary.table.set_index("config").loc[label].to_dict()


# ---------------------------------------------------------------------------------------------
# The table


def test_means_stds_and_t_intervals_are_exact(location_store: StoreURL) -> None:
    s = summary_of(location_store, "loc")
    assert list(s.table["config"]) == ["dropout_location=none", "dropout_location=before_pool",
                                       "dropout_location=before_conv"]
    none = row(s, "dropout_location=none")
    assert none["n"] == 3 and none["n_asked"] == 3
    assert none["test_acc_mean"] == pytest.approx(82.0)
    assert none["test_acc_std"] == pytest.approx(2.0)
    half = T975_2 * 2.0 / math.sqrt(3)
    assert none["test_acc_ci_low"] == pytest.approx(82.0 - half)
    assert none["test_acc_ci_high"] == pytest.approx(82.0 + half)
    # The diverged run counts for accuracy; its missing loss is left out of the loss mean.
    assert none["diverged"] == 1
    assert none["train_loss_mean"] == pytest.approx(0.6)
    assert none["train_loss_std"] == pytest.approx(math.sqrt(0.02))
    assert none["epochs_run_mean"] == pytest.approx(7.0)  # 10, 10, 1
    assert none["running"] == 1 and none["pruned"] == 0
    pool = row(s, "dropout_location=before_pool")
    assert pool["test_acc_std"] == 0.0
    assert pool["test_acc_ci_low"] == pool["test_acc_ci_high"] == 90.0
    assert pool["wall_time_mean"] == pytest.approx(2.0)


def test_pruned_failed_running_are_counted_never_averaged(location_store: StoreURL) -> None:
    s = summary_of(location_store, "loc")
    assert s.counts == {"COMPLETE": 7, "PRUNED": 1, "FAIL": 1, "RUNNING": 1, "WAITING": 0}
    conv = row(s, "dropout_location=before_conv")
    assert (conv["n"], conv["pruned"], conv["failed"], conv["running"]) == (1, 1, 1, 0)
    assert conv["test_acc_mean"] == 85.0  # the pruned run's 50.0 is not in it
    assert math.isnan(conv["test_acc_std"]) and math.isnan(conv["test_acc_ci_low"])
    assert conv["n_params"] == 1000


def test_best_row_and_welch_p_values(location_store: StoreURL) -> None:
    s = summary_of(location_store, "loc")
    assert list(s.table["best"]) == [False, True, False]
    # Welch with one zero-variance side: t = 8 / sqrt(4/3), df = 2 (scipy's ttest_ind warns here)
    expected = 2 * stats.t.sf(8 / math.sqrt(4 / 3), 2)
    assert row(s, "dropout_location=none")["p_value"] == pytest.approx(expected)
    assert math.isnan(row(s, "dropout_location=before_pool")["p_value"])  # the best itself
    assert math.isnan(row(s, "dropout_location=before_conv")["p_value"])  # n = 1: no test
    shown = render.display_table(s)
    column = shown.columns[-1]
    assert column == "vs best (Welch p, val_acc)"
    assert list(shown[column]) == [f"{expected:.3f} (significant)", "best", "n/a (n < 2)"]
    assert list(shown["n"]) == ["3", "3", "1 of 3"]


def test_rows_below_min_seeds_show_p_but_are_not_judged(location_store: StoreURL) -> None:
    s = summary_of(location_store, "loc")
    expected = 2 * stats.t.sf(8 / math.sqrt(4 / 3), 2)
    assert write.best_line(s) == (
        "Best by mean val_acc: **dropout_location=before_pool** (90.00 ± 0.00, n=3). 0 of 1 "
        "other configurations judged against it are not significantly different from it "
        "(Welch's t-test p ≥ 0.05; with few seeds that is weak evidence, not a tie). 1 could "
        "not be tested (fewer than 2 runs on a side).")
    # The claims' rule for the tables too: with min_seeds 4, three runs a side are no ground.
    s.study.config["min_seeds"] = 4
    assert list(render.display_table(s)["vs best (Welch p, val_acc)"]) == [
        f"{expected:.3f} (n < 4: not judged)", "best", "n/a (n < 2)"]
    assert write.best_line(s).endswith(
        "(90.00 ± 0.00, n=3). 1 is not judged (fewer than 4 runs on a side, min_seeds, or "
        "runs at chance). 1 could not be tested (fewer than 2 runs on a side).")
    assert render.fmt_p({"best": False, "p_value": 0.3, "n": 2}, 3, 5) == \
        "0.300 (n < 3: not judged)"
    assert render.fmt_p({"best": False, "p_value": 0.0004, "n": 3}, 3, 3) == \
        "<0.001 (significant)"
    # A row with runs at chance (one seed of six collapsed) is no rival's mean either.
    assert render.fmt_p({"best": False, "p_value": 0.234, "n": 6, "collapsed": 1}, 3, 6) == \
        "0.234 (1 of 6 at chance: not judged)"


def test_ranking_metric_can_be_chosen(location_store: StoreURL) -> None:
    s = summary_of(location_store, "loc", metric="train_loss")
    assert s.best["config"] == "dropout_location=before_pool"  # 0.5 < 0.6 (none)
    assert s.table["best"].sum() == 1


def test_welch_degenerate_cases() -> None:
    assert tables.welch_p(90, 0, 3, 90, 0, 3) == 1.0
    assert tables.welch_p(89, 0, 3, 90, 0, 3) == 0.0
    assert math.isnan(tables.welch_p(89, 0, 1, 90, 1, 3))
    assert math.isnan(tables.welch_p(89, 1, 3, 90, math.nan, 1))
    a, b = [1.0, 2.0, 4.0, 7.0], [3.0, 5.0, 6.0]
    ref = stats.ttest_ind(a, b, equal_var=False).pvalue
    got = tables.welch_p(np.mean(a), np.std(a, ddof=1), 4, np.mean(b), np.std(b, ddof=1), 3)
    assert float(got) == pytest.approx(ref)


def test_mean_std_ci_helper() -> None:
    mean, std, lo, hi = tables.mean_std_ci([80.0, 82.0, 84.0, None])
    assert (mean, std) == (82.0, 2.0)
    assert hi - mean == pytest.approx(T975_2 * 2 / math.sqrt(3))
    assert math.isnan(tables.mean_std_ci([5.0])[1])


def test_grid_cells_not_run_yet_are_rows_with_n_zero(url: StoreURL) -> None:
    study = make(LOCATION)
    storage = store.open_storage(url, create=True)
    study_obj = synthetic.create_study(storage, study)
    synthetic.add(study_obj, [synthetic.trial(study, {"model.dropout_location": "none"},
                                              synthetic.record(0, test_acc=70.0))])
    s = summary_of(url, "loc")
    assert list(s.table["n"]) == [1, 0, 0]
    assert list(render.display_table(s)["n"]) == ["1 of 3", "0 of 3", "0 of 3"]
    assert "3 of 3 configurations have fewer complete seeds than the 3 asked" in \
        write._trial_line(s)


# ---------------------------------------------------------------------------------------------
# Two-parameter grids, reference


@pytest.fixture
def grid_store(url: StoreURL) -> StoreURL:
    return cached_store(url.path, "report:grid", _grid_store)


def _grid_store(url: StoreURL) -> None:
    study = make(GRID2)
    storage = store.open_storage(url, create=True)
    study_obj = synthetic.create_study(storage, study)
    acc = {("sgd", 0.01): (60.0, 62.0), ("sgd", 0.1): (70.0, 74.0),
           ("adam", 0.01): (88.0, 90.0), ("adam", 0.1): (9.8, 9.8)}
    trials = []
    for (opt, lr), values in acc.items():
        for seed, v in enumerate(values):
            trials.append(synthetic.trial(
                study, {"train.optimizer": opt, "train.lr": lr},
                synthetic.record(seed, test_acc=v, train_loss=1 - v / 100, wall_time=lr * 10)))
    synthetic.add(study_obj, trials)


def test_pivot_tables_of_a_two_parameter_grid(grid_store: StoreURL) -> None:
    s = summary_of(grid_store, "grid2")
    assert tables.is_two_way_grid(s)
    matrix = render.pivot_numeric(s, "test_acc")
    assert list(matrix.index) == ["sgd", "adam"] and list(matrix.columns) == [0.01, 0.1]
    assert matrix.loc["sgd", 0.1] == pytest.approx(72.0)
    assert matrix.loc["adam", 0.1] == pytest.approx(9.8)
    shown = render.pivot_display(s, "test_acc")
    assert list(shown.columns) == ["lr=0.01", "lr=0.1"]
    assert shown.loc["sgd", "lr=0.1"] == "72.00 ± 2.83"
    assert shown.loc["adam", "lr=0.1"] == "9.80 ± 0.00"
    loss = render.pivot_display(s, "train_loss")
    assert loss.loc["adam", "lr=0.01"] == "0.110 ± 0.014"
    assert render.pivot_numeric(s, "wall_time").loc["sgd", 0.1] == pytest.approx(1.0)


def test_reference_rows_match_on_the_keys_they_name(grid_store: StoreURL, location_store: StoreURL
                                                     ) -> None:
    s = summary_of(grid_store, "grid2")
    ref = published.reference_table(s)
    # {"train.optimizer": "adam"} names one key: it matches both adam configurations.
    assert list(ref["config"]) == ["optimizer=adam, lr=0.01", "optimizer=adam, lr=0.1"]
    assert list(ref["difference"]) == pytest.approx([89.0 - 88.1, 9.8 - 88.1])
    assert list(ref["published_in_ci"]) == [True, False]
    # The half-width the ±3-point rule judged travels with the table (before clipping at 0-100%:
    # the display once fell back to the clipped interval's and showed ±2.9 for a judged ±3.3).
    for row in ref.to_dict("records"):
        pi_low, pi_high = published.prediction_interval(row["mean"], row["std"], row["n"])
        assert row["pi_half"] == pytest.approx((pi_high - pi_low) / 2)

    s = summary_of(location_store, "loc")
    ref = published.reference_table(s)
    assert list(ref["published"]) == [93.17, 89.36]
    assert ref["difference"].iloc[0] == pytest.approx(90.0 - 93.17)
    assert ref["published_in_ci"].iloc[1] is None  # before_conv has n = 1: no interval
    shown = render.reference_display(ref, "test_acc")
    assert list(shown["difference (measured − published)"]) == ["-3.17", "-4.36"]


# ---------------------------------------------------------------------------------------------
# Figures: data first, then a file


def test_curves_data_averages_histories(location_store: StoreURL) -> None:
    s = summary_of(location_store, "loc")
    data = figures.curves_data(s)
    assert data.configs == list(s.table["config"])
    pool = data.curves[(data.curves["config"] == "dropout_location=before_pool")
                       & (data.curves["metric"] == "val_acc")]
    assert list(pool["epoch"]) == list(range(1, 11))
    assert pool["mean"].iloc[-1] == pytest.approx(90.0) and pool["n"].iloc[-1] == 3
    none_loss = data.curves[(data.curves["config"] == "dropout_location=none")
                            & (data.curves["metric"] == "train_loss")]
    # Epoch 1: two runs with a finite loss (the diverged run's loss is None), epoch 2: two runs.
    assert list(none_loss["n"].iloc[:2]) == [2, 2]
    assert none_loss["mean"].iloc[-1] == pytest.approx(0.6)


def test_accuracy_and_history_data(location_store: StoreURL) -> None:
    s = summary_of(location_store, "loc")
    data = figures.accuracy_data(s)
    assert list(data.bars["mean"]) == pytest.approx([82.0, 90.0, 85.0])
    assert len(data.seeds) == 7
    assert list(data.reference["value"]) == [93.17, 89.36]
    hist = figures.history_data(s)
    assert list(hist["value"]) == [80.0, 82.0, 84.0, 90.0, 90.0, 90.0, 85.0]
    assert list(hist["best_so_far"]) == [80.0, 82.0, 84.0, 90.0, 90.0, 90.0, 90.0]


@pytest.fixture
def tuning_store(url: StoreURL) -> StoreURL:
    return cached_store(url.path, "report:tuning", _tuning_store)


def _tuning_store(url: StoreURL) -> None:
    study = make(TUNING)
    storage = store.open_storage(url, create=True)
    study_obj = synthetic.create_study(storage, study)
    trials = []
    for i in range(12):
        lr = 10 ** (-4 + 3 * i / 11)
        opt = "adam" if i % 2 else "sgd"
        acc = 90 - 10 * abs(math.log10(lr) + 2.5) - (5 if opt == "sgd" else 0)
        trials.append(synthetic.trial(study, {"train.lr": lr, "train.optimizer": opt},
                                      synthetic.record(0, test_acc=acc)))
    synthetic.add(study_obj, trials)


@pytest.mark.slow
def test_importance_data_for_tuning_studies(tuning_store: StoreURL) -> None:
    s = summary_of(tuning_store, "tune")
    data = figures.importance_data(s)
    assert data.errors == {}
    assert data.n_configs == 12
    for evaluator in ("fANOVA", "PED-ANOVA"):
        sub = data.importances[data.importances["evaluator"] == evaluator]
        assert set(sub["param"]) == {"train.lr", "train.optimizer"}
        assert sub["importance"].sum() == pytest.approx(1.0)


@pytest.mark.slow
def test_every_figure_renders_to_a_file(tmp_path: Path, grid_store: StoreURL) -> None:
    s = summary_of(grid_store, "grid2")
    drawn = {
        "curves": figures.plot_curves(figures.curves_data(s), "grid2"),
        "accuracy": figures.plot_accuracy(figures.accuracy_data(s), "grid2", "R3"),
        "heatmap": figures.plot_heatmaps(figures.heatmap_data(s), "grid2"),
        "importance": figures.plot_importance(figures.importance_data(s), "grid2", "val_acc"),
        "history": figures.plot_history(figures.history_data(s), "grid2", "val_acc"),
    }
    for name, fig in drawn.items():
        path = tmp_path / f"{name}.png"
        figures.save(fig, path)
        assert path.stat().st_size > 10_000, name


# ---------------------------------------------------------------------------------------------
# Files and the command line


def test_report_command_writes_every_file(location_store: StoreURL, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "reports"
    code = cli.main(["report", "--study", "loc", "--storage", str(location_store),
                     "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "before_pool" in printed and "90.00 ± 0.00 [90.00, 90.00]" in printed
    folder = out / "loc"
    assert {p.name for p in folder.iterdir()} == {"README.md", "table.csv", "table.tex",
                                                  "figures"}
    assert {p.name for p in (folder / "figures").iterdir()} == {"learning_curves.png",
                                                                "test_accuracy.png"}
    md = (folder / "README.md").read_text()
    flat = " ".join(md.split())  # Markdown column widths are not the point
    assert "> Where should dropout go?" in md
    assert ("| **before_pool** | 3 | 0.500 ± 0.000 [0.500, 0.500] | 90.00 ± 0.00 "
            "[90.00, 90.00] |") in flat
    assert ("| before_conv | 1 of 3 | 0.500 | 85.00 | 85.00 | 85.00 | 5.00 | 0.5 | 1,000 | 10 "
            "| 0 / 0 | 1 | 1 | 0 | n/a (n < 2) |") in flat
    assert "Welch's t-test" in md
    assert "10 trials: 7 complete, 1 pruned, 1 failed, 1 still running." in md
    assert ("| dropout_location=before_pool | dropout_location=before_pool | 93.17 | 3 | "
            "90.00 ± 0.00 [90.00, 90.00] | -3.17 | [90.00, 90.00] | no |") in flat
    assert "![" in md and "(figures/test_accuracy.png)" in md
    assert "hpo run --study loc" in md
    assert f"hpo report --study loc --storage {location_store} --out {out}" in md
    tex = (folder / "table.tex").read_text()
    assert r"before\_pool & 3 & 0.500 $\pm$ 0.000 [0.500, 0.500] & 90.00 $\pm$ 0.00" in tex
    assert r"\toprule" in tex and r"train acc \%" in tex
    csv = (folder / "table.csv").read_text().splitlines()
    assert csv[0].startswith("config,model.dropout_location,n,n_asked,train_loss_mean")
    assert csv[2].startswith("dropout_location=before_pool,before_pool,3,3,0.5,0.0,")


@pytest.mark.slow
def test_two_parameter_grid_report_has_pivots_and_heatmap(grid_store: StoreURL,
                                                          tmp_path: Path) -> None:
    assert cli.main(["report", "--study", "grid2", "--storage", str(grid_store), "--out",
                     str(tmp_path), "--format", "md"]) == 0
    folder = tmp_path / "grid2"
    assert not (folder / "table.csv").exists() and not (folder / "table.tex").exists()
    assert (folder / "figures" / "heatmap.png").exists()
    md = (folder / "README.md").read_text()
    assert "### optimizer × lr" in md
    assert "| sgd | 61.00 ± 1.41 | 72.00 ± 2.83 |" in " ".join(md.split())


@pytest.mark.slow
def test_tuning_report_has_importance_and_history(tuning_store: StoreURL, tmp_path: Path) -> None:
    assert cli.main(["report", "--study", "tune", "--storage", str(tuning_store), "--out",
                     str(tmp_path)]) == 0
    names = {p.name for p in (tmp_path / "tune" / "figures").iterdir()}
    assert names == {"learning_curves.png", "test_accuracy.png", "importance.png",
                     "optimization_history.png"}


@pytest.mark.slow
def test_all_writes_every_study_and_an_index(location_store: StoreURL, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    storage = store.open_storage(location_store, create=False)
    optuna.create_study(study_name="not_hpo", storage=storage)
    assert cli.main(["report", "--all", "--storage", str(location_store), "--out",
                     str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert "== loc ==" in captured.out
    assert "hpo: skipping study 'not_hpo': study 'not_hpo' was not created by hpo" in \
        captured.err
    index = (tmp_path / "README.md").read_text()
    assert "| [loc](loc/README.md) | Where should dropout go? | digits, 2 epochs × 3 seeds | " \
        "7 complete of 10 |" \
        " dropout_location=before_pool |" in index


def test_unknown_study_is_one_line(location_store: StoreURL,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["report", "--study", "nope", "--storage", str(location_store)]) == 1
    assert capsys.readouterr().err == (
        "hpo: error: no study 'nope' in the store (studies there: loc)\n")


def test_empty_study_is_one_line(url: StoreURL, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    storage = store.open_storage(url, create=True)
    synthetic.create_study(storage, make(LOCATION), name="empty")
    assert cli.main(["report", "--study", "empty", "--storage", str(url), "--out",
                     str(tmp_path)]) == 1
    assert capsys.readouterr().err == (
        "hpo: error: study 'empty' has no trials yet; run `hpo run --study loc --name empty` "
        "first\n")


def test_missing_store_and_bad_format_are_one_line(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    missing = f"sqlite:///{tmp_path}/none.db"
    assert cli.main(["report", "--study", "x", "--storage", missing]) == 1
    assert capsys.readouterr().err == (
        f"hpo: error: no store at {tmp_path}/none.db; run `hpo run` first or pass "
        "--storage URL\n")
    assert cli.main(["report", "--study", "x", "--storage", missing, "--format", "md,pdf"]) == 1
    assert capsys.readouterr().err == (
        "hpo: error: --format must be a comma-separated list of md, csv, tex, got 'md,pdf'\n")


def test_fast_sql_reader_gives_the_same_frame_as_optuna(location_store: StoreURL,
                                                        tuning_store: StoreURL) -> None:
    from hpo import records

    for url, name in ((location_store, "loc"), (tuning_store, "tune")):
        study_obj = store.load_study(store.open_storage(url, create=False), name)
        fast = records.fetch_trials(study_obj)
        assert isinstance(fast[0], records.TrialRow)  # the SQL path, not the fallback
        study = records.study_spec(study_obj)
        slow = records.trials_frame(study_obj, study, study_obj.get_trials(deepcopy=False))
        import pandas as pd

        pd.testing.assert_frame_equal(records.trials_frame(study_obj, study, fast), slow)


def test_intervals_are_clipped_to_the_metric_range(url: StoreURL) -> None:
    study = make(LOCATION)
    storage = store.open_storage(url, create=True)
    study_obj = synthetic.create_study(storage, study)
    synthetic.add(study_obj, [
        synthetic.trial(study, {"model.dropout_location": "none"},
                        synthetic.record(s, test_acc=acc, train_loss=loss))
        for s, (acc, loss) in enumerate([(99.0, 0.001), (100.0, 0.009)])])
    none = row(summary_of(url, "loc"), "dropout_location=none")
    assert none["test_acc_ci_high"] == 100.0 and none["test_acc_ci_low"] < 99.0
    assert none["train_loss_ci_low"] == 0.0
    shown = render.fmt_stat(none, "train_loss")
    assert shown.startswith("5.00e-03 ± 5.66e-03 [0.00e+00, ")


@pytest.mark.slow
def test_report_figures_are_attached_to_the_study_once(location_store: StoreURL, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    import optuna

    from hpo import artifacts, store

    args = ["report", "--study", "loc", "--storage", str(location_store), "--out",
            str(tmp_path / "r"), "--artifacts", str(tmp_path / "art")]
    assert cli.main(args) == 0
    assert cli.main(args) == 0  # a second report replaces, never piles up
    study_obj = optuna.load_study(study_name="loc",
                                  storage=store.open_storage(location_store, create=False))
    names = sorted(m["filename"] for m in artifacts.study_artifacts(study_obj))
    assert names == ["report_learning_curves.png", "report_test_accuracy.png"]
    assert len(list((tmp_path / "art").rglob("*"))) >= 2


@pytest.mark.slow
def test_no_artifacts_attaches_nothing(location_store: StoreURL, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    import optuna

    from hpo import artifacts, store

    url = location_store
    assert cli.main(["report", "--study", "loc", "--storage", str(url), "--out",
                     str(tmp_path / "r"), "--no-artifacts"]) == 0
    study_obj = optuna.load_study(study_name="loc",
                                  storage=store.open_storage(url, create=False))
    assert artifacts.study_artifacts(study_obj) == []


def test_a_published_single_run_is_compared_with_a_prediction_interval() -> None:
    from hpo.reporting.published import prediction_interval

    low, high = prediction_interval(90.0, 2.0, 3)
    half = 4.302652729749464 * 2.0 * math.sqrt(1 + 1 / 3)  # t(0.975, 2) * s * sqrt(1 + 1/n)
    assert (low, high) == pytest.approx((90.0 - half, 90.0 + half))
    assert all(math.isnan(x) for x in prediction_interval(90.0, 2.0, 1))


def test_cannot_tell_names_the_half_width_the_rule_judged() -> None:
    """A 97.5 ± 3.3 interval clipped at 100 shows [94.2, 100] (±2.9): the ±3-point rule
    judged ±3.3, and the cell says so."""
    import pandas as pd

    ref = pd.DataFrame([{
        "published_config": "lr=0.01", "config": "lr=0.01", "published": 97.0, "n": 2,
        "mean": 97.5, "std": 0.3, "ci_low": 94.8, "ci_high": 100.0, "difference": 0.5,
        "published_in_ci": True, "pi_low": 94.2, "pi_high": 100.0, "pi_half": 3.3,
        "published_in_pi": None}])
    shown = render.reference_display(ref, "test_acc")
    assert list(shown["published inside it"]) == ["cannot tell (±3.3)"]


def test_setup_leaves_out_training_keys_no_run_used() -> None:
    from types import SimpleNamespace as NS

    from hpo.reporting.write import _inert_train_keys

    def summary(config: dict, **varied: list) -> NS:
        space = [NS(key=k.replace("__", "."), choices=v) for k, v in varied.items()]
        return NS(study=NS(config=config, space=space), keys=[p.key for p in space])

    plain = {"train.optimizer": "sgd", "train.schedule": "none"}
    assert _inert_train_keys(summary(plain)) == {"train.momentum", "train.step_size",
                                                 "train.gamma"}
    # Varied: momentum acts where one of the optimizers reads it (momentum_cifar10), not where
    # none does (optimizer_r1_cifar10: plain SGD against Adadelta).
    assert _inert_train_keys(summary(plain, train__optimizer=["sgd", "momentum"])) == {
        "train.step_size", "train.gamma"}
    assert _inert_train_keys(summary(plain, train__optimizer=["sgd", "adadelta"])) == {
        "train.momentum", "train.step_size", "train.gamma"}
    stepped = {"train.optimizer": "momentum", "train.schedule": "plateau"}
    assert _inert_train_keys(summary(stepped)) == {"train.step_size"}
    assert _inert_train_keys(summary(stepped, train__schedule=["none", "step"])) == set()


def test_params_column_names_the_trained_ones_when_fewer() -> None:
    import math

    from hpo.reporting.render import _params_cell

    assert _params_cell(3373570, 2562) == "3,373,570 (2,562 trained)"
    assert _params_cell(2710, 2710) == "2,710"
    assert _params_cell(2710, math.nan) == "2,710"
    assert _params_cell(math.nan, 5) == "–"


def test_a_run_stored_under_another_name_says_what_it_changed_from_its_file() -> None:
    import types

    from hpo import spec
    from hpo.reporting.write import changed_from_shipped, command_study

    shipped = spec.load("learning_rate")
    config = {**shipped.config, "name": "learning_rate_cifar10", "dataset": "cifar10",
              "repeats": 2}
    summary = types.SimpleNamespace(
        study=types.SimpleNamespace(name="learning_rate_cifar10", config=config),
        attrs={"hpo.command": "hpo run --study learning_rate --dataset cifar10 --repeats 2 "
                              "--name learning_rate_cifar10"})
    assert changed_from_shipped(summary) == "dataset digits → cifar10, repeats 3 → 2"
    summary.attrs = {}
    assert changed_from_shipped(summary) == ""
    assert command_study("hpo run --study=studies/kernel.toml --jobs 2") == "kernel"
    assert command_study("hpo run --study 'unclosed") is None


def test_the_headline_names_the_lengths_of_a_grid_over_epochs(tmp_path: Path) -> None:
    """batch_norm_r1_cifar10's headline said "7 epochs" (the base) of a grid over 2 and 7."""
    study = spec.validate({"name": "len", "dataset": "digits", "epochs": 7, "repeats": 2,
                           "sampler": "grid", "space": {"epochs": [2, 7]}}, "len.toml")
    study_obj = synthetic.create_study(
        store.open_storage(store.parse(f"sqlite:///{tmp_path / 's.db'}")), study)
    synthetic.add(study_obj, [
        synthetic.trial(study, {"epochs": e}, synthetic.record(s, test_acc=90.0 + s))
        for e in (2, 7) for s in (0, 1)])
    assert write.headline(tables.summarize(study_obj)) == (
        "*Ran on digits: 2 or 7 epochs (a grid dimension) × 2 seeds per configuration, "
        "2 configurations with complete runs.*")
