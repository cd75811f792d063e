"""Figures that do not mislead, checked as data: seed lines, line styles, heat-map noise marks
and colour range, importance intervals and agreement, the time a report shows, n = 1 without ±."""

from __future__ import annotations

import copy
import datetime
import math
from pathlib import Path

import matplotlib
import optuna
import pandas as pd
import pytest

from hpo import records, spec, store
from hpo.benchmarks import synthetic
from hpo.reporting import figures, render, tables, timing
from tests.conftest import cached_store

matplotlib.use("Agg")
optuna.logging.set_verbosity(optuna.logging.WARNING)

GRID = {
    "name": "g", "dataset": "digits", "epochs": 2, "repeats": 3, "sampler": "grid",
    "model": {"channels": [4, 4], "padding": 1},
    "space": {"train.optimizer": ["sgd", "adam"], "train.lr": [0.01, 0.1]},
}
# (optimizer, lr) -> test accuracy per seed; sgd/0.1 is bimodal (one collapsed seed)
START = datetime.datetime(2026, 11, 30, 12, 0, 0)
ACCS = {("sgd", 0.01): (80.0, 81.0, 82.0), ("sgd", 0.1): (10.0, 95.0, 96.0),
        ("adam", 0.01): (95.0, 96.0, 97.0), ("adam", 0.1): (94.0, 95.0, 96.0)}


def _store(tmp_path: Path, command: str = "hpo run --study g", cpu: bool = True,
           overlap: bool = False) -> store.StoreURL:
    """Trial i runs from 10 i s to 10 i + 15 s (overlap: two workers) or + 5 s."""
    key = ["figures", command, cpu, overlap]
    return cached_store(tmp_path / "f.db", key, lambda url: _build(url, command, cpu, overlap))


def _build(url: store.StoreURL, command: str, cpu: bool, overlap: bool) -> None:
    study = spec.validate(copy.deepcopy(GRID), "test")
    storage = store.open_storage(url, create=True)
    study_obj = synthetic.create_study(storage, study, command=command)
    trials = []
    for (opt, lr), accs in ACCS.items():
        for seed, acc in enumerate(accs):
            attrs = synthetic.record(seed, test_acc=acc, wall_time=10.0 + seed, epochs=4)
            if cpu:
                attrs["cpu_time"] = 2.0 * (seed + 1)
            trial = synthetic.trial(study, {"train.optimizer": opt, "train.lr": lr}, attrs)
            trial.datetime_start = START + datetime.timedelta(seconds=10 * len(trials))
            trial.datetime_complete = trial.datetime_start + datetime.timedelta(
                seconds=15 if overlap else 5)
            trials.append(trial)
    synthetic.add(study_obj, trials)


def _summary(url: store.StoreURL) -> tables.Summary:
    return tables.summarize(store.load_study(store.open_storage(url, create=False), "g"))


def test_every_seed_is_a_line_of_its_own(tmp_path: Path) -> None:
    data = figures.curves_data(_summary(_store(tmp_path)))
    runs = data.seeds[(data.seeds["config"] == "optimizer=sgd, lr=0.1")
                      & (data.seeds["metric"] == "val_acc")]
    assert sorted(runs["seed"].unique()) == [0, 1, 2]
    final = runs[runs["epoch"] == 4].set_index("seed")["value"]
    assert final.to_dict() == {0: 10.0, 1: 95.0, 2: 96.0}
    assert len(data.seeds) == 12 * 4 * len(figures.CURVE_METRICS)  # runs x epochs x metrics


def test_line_styles_are_distinct_and_narrow_in_draw_order() -> None:
    configs = [f"c{i}" for i in range(8)]
    styles = figures.line_styles(configs)
    assert len({(s.dash, s.marker) for s in styles.values()}) == 8
    assert [styles[c].width for c in configs] == [3.4, 3.086, 2.771, 2.457, 2.143, 1.829,
                                                  1.514, 1.2]
    assert [styles[c].zorder for c in configs] == list(range(3, 11))
    assert figures.line_styles(["only"])["only"].width == 3.4


def test_heatmap_marks_cells_within_noise_of_the_best(tmp_path: Path) -> None:
    summary = _summary(_store(tmp_path))
    data = figures.heatmap_data(summary)
    marks = data.within_noise["test_acc"]
    # best adam/0.01 (96 ± 1); adam/0.1 (95 ± 1, p = 0.29) is within noise; the bimodal
    # sgd/0.1 (67 ± 49: one seed at chance) would be by Welch's test but a cell with a run at
    # chance is never outlined; sgd/0.01 (81 ± 1, p < 0.001) is not.
    assert marks.loc["sgd"].tolist() == [False, False]
    assert marks.loc["adam"].tolist() == [True, True]
    assert "wall_time" not in data.within_noise and "cpu_time" not in data.within_noise
    # Three runs a cell are below a min_seeds of 4: no cell is judged, only the best outlined.
    summary.study.config["min_seeds"] = 4
    marks = figures.heatmap_data(summary).within_noise["test_acc"]
    assert marks.loc["adam"].tolist() == [True, False]
    assert marks.loc["sgd"].tolist() == [False, False]


def test_heatmap_colour_range_spans_the_noise(tmp_path: Path) -> None:
    data = figures.heatmap_data(_summary(_store(tmp_path)))
    # largest std is the bimodal cell's: 4 stds below 96 is below 0, clipped to 0
    assert data.ranges["test_acc"] == (0.0, 96.0)
    assert figures.colour_range(pd.DataFrame([[95.0, 96.0]]), "test_acc", 0.5) == (91.0, 96.0)
    assert figures.colour_range(pd.DataFrame([[95.0, 96.0]]), "test_acc", 2.0) == (88.0, 96.0)
    assert figures.colour_range(pd.DataFrame([[60.0, 96.0]]), "test_acc", 1.0) == (60.0, 96.0)
    assert figures.colour_range(pd.DataFrame([[0.2, 0.3]]), "val_loss", 0.1) == \
        pytest.approx((0.2, 0.6))


def test_time_is_cpu_time_when_workers_ran_side_by_side(tmp_path: Path) -> None:
    s = _summary(_store(tmp_path, overlap=True))
    basis = timing.time_basis(s)
    assert (basis.metric, basis.side_by_side, basis.label) == ("cpu_time", True, "CPU time")
    shown = render.display_table(s)
    assert list(shown["CPU time/run (s)"]) == ["4.00"] * 4  # 2, 4, 6 s
    assert list(shown["CPU time/epoch (s)"]) == ["1"] * 4  # cpu_time / 4 epochs, mean
    assert list(figures.heatmap_data(s).matrices) == ["test_acc", "cpu_time"]


def test_time_falls_back_to_wall_time_and_says_so(tmp_path: Path) -> None:
    s = _summary(_store(tmp_path, cpu=False, overlap=True))
    basis = timing.time_basis(s)
    assert (basis.metric, basis.side_by_side) == ("wall_time", True)
    assert basis.note == (
        "Workers ran side by side, but this store's trials have no CPU time (`cpu_time`, "
        "recorded by newer hpo), so time is wall time and includes waiting for cores the "
        "workers shared.")
    shown = render.display_table(s)
    assert list(shown["wall time/run (s)"]) == ["11.00"] * 4
    assert "wall time/epoch (s)" in shown


def test_one_worker_shows_wall_time(tmp_path: Path) -> None:
    # --jobs 2 asked, but the trials ran one after another (hpo capped the workers)
    s = _summary(_store(tmp_path, command="hpo run --study g --jobs 2"))
    assert timing.time_basis(s) == timing.TimeBasis(
        "wall_time", False, "Time is wall time; one trial ran at a time.")


def test_overlapping_trials_count_as_side_by_side() -> None:
    t = pd.Timestamp
    frame = pd.DataFrame({"state": ["COMPLETE"] * 3,
                          "datetime_start": [t("2026-01-01 10:00"), t("2026-01-01 10:05"),
                                             t("2026-01-01 10:07")],
                          "datetime_complete": [t("2026-01-01 10:05"), t("2026-01-01 10:08"),
                                                t("2026-01-01 10:09")]})
    assert timing.overlapping(frame)
    assert not timing.overlapping(frame.iloc[:2])  # one ends as the next starts


def _importance(a: dict[str, float], b: dict[str, float]) -> figures.ImportanceData:
    rows = [(name, p, v, v - 0.1, v + 0.1) for name, imp in (("fANOVA", a), ("PED-ANOVA", b))
            for p, v in imp.items()]
    frame = pd.DataFrame(rows, columns=["evaluator", "param", "importance", "ci_low", "ci_high"])
    return figures.ImportanceData(frame, {}, 20, {"fANOVA": 50, "PED-ANOVA": 48}, asked=50)


def test_importance_disagreement_is_said_plainly() -> None:
    data = _importance({"lr": 0.6, "wd": 0.3, "bs": 0.1}, {"lr": 0.1, "wd": 0.2, "bs": 0.7})
    assert figures.importance_agreement(data) == (False, "lr", "bs", -1.0)
    assert figures.importance_text(data) == (
        "Bars are the importances over all 20 configurations; whiskers their 95% bootstrap "
        "interval over configurations (50 seeded resamples; with a result: fANOVA 50, "
        "PED-ANOVA 48). **fANOVA and PED-ANOVA disagree about which knobs matter**: fANOVA "
        "ranks lr 0.60 [0.50, 0.70] first, PED-ANOVA bs 0.70 [0.60, 0.80] (Spearman ρ = -1.00 "
        "over the knobs; they count as agreeing when the top knob is the same and ρ ≥ 0.5). "
        "Neither ranking should be read as settled.")


def test_importance_same_top_but_low_rank_correlation_disagrees() -> None:
    data = _importance({"a": 0.5, "b": 0.3, "c": 0.15, "d": 0.05},
                       {"a": 0.5, "b": 0.05, "c": 0.15, "d": 0.3})
    agree, top_a, top_b, rho = figures.importance_agreement(data)
    assert (agree, top_a, top_b) == (False, "a", "a") and rho == pytest.approx(0.2)


def test_importance_agreement_text() -> None:
    data = _importance({"lr": 0.8, "wd": 0.2}, {"lr": 0.9, "wd": 0.1})
    assert figures.importance_agreement(data)[:3] == (True, "lr", "lr")
    assert figures.importance_text(data).endswith(
        "fANOVA and PED-ANOVA agree on the top knob (lr 0.80 [0.70, 0.90]; lr 0.90 "
        "[0.80, 1.00]; too few knobs for a rank correlation).")


@pytest.mark.slow
def test_importance_bootstrap_intervals(tmp_path: Path) -> None:
    raw = {"name": "t", "dataset": "digits", "epochs": 2, "repeats": 1, "sampler": "tpe",
           "n_trials": 12, "model": {"channels": [4, 4], "padding": 1},
           "space": {"train.lr": {"type": "float", "low": 1e-4, "high": 0.1, "log": True},
                     "train.optimizer": ["sgd", "adam"]}}
    study = spec.validate(raw, "test")
    url = store.parse(f"sqlite:///{tmp_path}/t.db")
    study_obj = synthetic.create_study(store.open_storage(url, create=True), study)
    trials = []
    for i in range(12):
        lr = 10 ** (-4 + 3 * i / 11)
        opt = "adam" if i % 2 else "sgd"
        acc = 90 - 10 * abs(math.log10(lr) + 2.5) - (5 if opt == "sgd" else 0)
        trials.append(synthetic.trial(study, {"train.lr": lr, "train.optimizer": opt},
                                      synthetic.record(0, test_acc=acc)))
    synthetic.add(study_obj, trials)
    s = tables.summarize(study_obj)
    data = figures.importance_data(s, resamples=10)
    assert data.resamples == {"fANOVA": 10, "PED-ANOVA": 10} and data.asked == 10
    frame = data.importances
    assert set(frame["evaluator"]) == {"fANOVA", "PED-ANOVA"}
    assert (frame["ci_low"] <= frame["ci_high"]).all()
    assert ((frame["ci_low"] >= 0) & (frame["ci_high"] <= 1)).all()
    assert figures.importance_data(s, resamples=10).importances.equals(frame)  # seeded


def test_hpo_run_summary_shows_one_run_without_plus_minus() -> None:
    frame = pd.DataFrame({"state": ["COMPLETE"] * 3, "train.lr": [0.1, 0.01, 0.01],
                          "test_acc": [90.0, 80.0, 84.0]})
    text = records.format_summary(records.config_summary(frame, ["train.lr"]), ["train.lr"])
    assert text.splitlines() == [
        f"{'lr=0.1':<48} test_acc  90.00          (n=1)",
        f"{'lr=0.01':<48} test_acc  82.00 ±  2.83  (n=2)",
    ]


def test_flatness_keeps_every_seed(tmp_path: Path) -> None:
    study = spec.validate({"name": "fl", "analysis": "flatness", "repeats": 2,
                           "model": {"channels": [4, 4], "padding": 1},
                           "space": {"train.label_shuffle": [0.0, 1.0]}}, "test")
    url = store.parse(f"sqlite:///{tmp_path}/s.db")
    study_obj = synthetic.create_study(store.open_storage(url, create=True), study)
    trials = []
    for shuffle in (0.0, 1.0):
        for seed in (0, 1):
            attrs = synthetic.record(seed, test_acc=50.0)
            attrs["flatness"] = {"alpha": [0.0, 1.0], "val_loss": [2.0 + seed, 0.1 + shuffle],
                                 "val_err": [90.0, 5.0], "train_loss": [2.0, 0.1],
                                 "train_err": [90.0, 0.0]}
            trials.append(synthetic.trial(study, {"train.label_shuffle": shuffle}, attrs))
    synthetic.add(study_obj, trials)
    data = figures.flatness_data(tables.summarize(study_obj))
    own = data.seeds[(data.seeds["config"] == "label_shuffle=0")
                     & (data.seeds["metric"] == "val_loss")]
    assert own.sort_values(["seed", "alpha"])["value"].tolist() == [2.0, 0.1, 3.0, 0.1]
    figures.save(figures.plot_flatness(data, "fl"), tmp_path / "flatness.png")
    assert (tmp_path / "flatness.png").stat().st_size > 10_000


def test_large_studies_resample_only_ped_anova() -> None:
    data = _importance({"lr": 0.8, "wd": 0.2}, {"lr": 0.9, "wd": 0.1})
    data.n_configs, data.resamples = 667, {"fANOVA": 0, "PED-ANOVA": 50}
    assert figures.importance_text(data).startswith(
        "Bars are the importances over all 667 configurations; whiskers their 95% bootstrap "
        "interval over configurations (50 seeded resamples; with a result: fANOVA 0, "
        "PED-ANOVA 50; fANOVA is not resampled above 200 configurations, where each refit "
        "takes seconds, so its bars have no whiskers).")


def test_stored_jobs_decide_without_trial_times() -> None:
    assert timing._jobs("hpo run --study g --jobs 2") == 2
    assert timing._jobs("hpo run --study g --jobs=3 --epochs 1") == 3
    assert timing._jobs("hpo run --study g") == 1
    assert timing._jobs("hpo run --jobs x") == 1
