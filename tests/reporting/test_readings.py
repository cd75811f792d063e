"""Readings: distance of each reading to the published numbers, on hand-made trials."""

from __future__ import annotations

import copy
import dataclasses
import math
import types
from pathlib import Path

import optuna
import pytest

from hpo import spec, store
from hpo.benchmarks import synthetic
from hpo.reporting import readings, tables, write
from tests.conftest import cached_store

optuna.logging.set_verbosity(optuna.logging.WARNING)

T975_1 = 12.706204736174707  # t quantile 0.975 with 1 degree of freedom
T975_2 = 4.302652729911275

RAW = {
    "name": "r4", "dataset": "digits", "epochs": 2, "repeats": 2, "sampler": "grid",
    "model": {"channels": [4, 4], "padding": 1},
    "space": {"train.optimizer": ["sgd", "adam"],
              "model.dropout_location": ["none", "before_pool"]},
    "reference": {"source": "R4", "metric": "test_acc", "rows": [
        {"model.dropout_location": "none", "value": 90.0},
        {"model.dropout_location": "before_pool", "value": 92.0},
    ]},
}
# (optimizer, location) -> test accuracy of the two seeds
MEASURED = {("sgd", "none"): (88.0, 88.0), ("sgd", "before_pool"): (91.0, 93.0),
            ("adam", "none"): (95.0, 95.0), ("adam", "before_pool"): (96.0, 98.0)}


@pytest.fixture
def summary(tmp_path: Path) -> tables.Summary:
    study = spec.validate(copy.deepcopy(RAW), "test")

    def build(url: store.StoreURL) -> None:
        study_obj = synthetic.create_study(store.open_storage(url, create=True), study)
        synthetic.add(study_obj, [
            synthetic.trial(study, {"train.optimizer": opt, "model.dropout_location": loc},
                            synthetic.record(seed, test_acc=acc, train_loss=0.5 + seed / 10))
            for (opt, loc), accs in MEASURED.items() for seed, acc in enumerate(accs)])

    url = cached_store(tmp_path / "r.db", "readings", build)
    s = tables.summarize(store.load_study(store.open_storage(url, create=False), "r4"))
    config = {**s.study.config, "readings": ["train.optimizer"]}
    return dataclasses.replace(s, study=dataclasses.replace(s.study, config=config))


def test_no_readings_key_means_no_readings(summary: tables.Summary) -> None:
    plain = dataclasses.replace(summary, study=dataclasses.replace(
        summary.study, config={k: v for k, v in summary.study.config.items()
                               if k != "readings"}))
    assert readings.readings_of(plain) == []
    assert readings.closest_reading(plain) is None
    assert readings.reading_distances(plain).empty
    assert readings.readings_markdown(plain) == ""


def test_distances_per_reading_with_t_interval(summary: tables.Summary) -> None:
    assert readings.readings_of(summary) == [(("train.optimizer", "sgd"),),
                                             (("train.optimizer", "adam"),)]
    frame = readings.reading_distances(summary).set_index("reading")
    sgd, adam = frame.loc["optimizer=sgd"], frame.loc["optimizer=adam"]
    # sgd: |88 - 90| = 2, |92 - 92| = 0 -> mean 1, std sqrt(2), t-interval over 2 rows
    assert sgd["rows"] == 2 and sgd["mean_abs_diff"] == pytest.approx(1.0)
    assert sgd["ci_low"] == 0.0  # 1 - 12.7 clipped: a mean |difference| is >= 0
    assert sgd["ci_high"] == pytest.approx(1.0 + T975_1 * math.sqrt(2) / math.sqrt(2))
    # adam: |95 - 90| = |97 - 92| = 5
    assert adam["mean_abs_diff"] == pytest.approx(5.0)
    assert (adam["ci_low"], adam["ci_high"]) == pytest.approx((5.0, 5.0))
    assert list(frame["closest"]) == [True, False]
    # sgd is closest by mean, but its interval (up to 13.7) overlaps adam's (5, 5): claims are
    # not judged in a reading the data do not single out.
    assert not readings.clearly_closest(frame)
    assert readings.closest_reading(summary) is None
    assert not readings.clearly_closest(readings.reading_distances(summary))


def test_markdown_names_closest_and_says_it_is_not_singled_out(
        summary: tables.Summary) -> None:
    text = readings.readings_markdown(summary)
    # Published values inside the 95% prediction interval of one run: sgd/none 88, 88 (an
    # interval of width 0, 90 outside), sgd/before_pool 92 ± 12.7·1.41·1.22 (92 inside); adam
    # likewise 1 of 2.
    assert ("| optimizer=sgd | 2 | 1.00 [0.00, 13.71] | 0 of 1; 1 cannot tell | 1 of 2 | "
            "**closest** |"
            in text)
    assert "| optimizer=adam | 2 | 5.00 [5.00, 5.00] | 0 of 1; 1 cannot tell | 1 of 2 |  |" in text
    assert ("**No reading is consistent with the published table**: of its values whose "
            "interval can tell (at most ±3 points wide), none lies inside any reading's 95% "
            "prediction interval of one run.") in text
    assert ("Closest: **optimizer=sgd**; its interval overlaps another reading's, and no "
            "reading is the only one that no published value contradicts (outside its "
            "prediction interval of one run, at 95% jointly over its rows, Bonferroni: the "
            "table's contradicts column), so the data do not single one out: a claim's verdict "
            "then stands only where every reading gives it (Claims).") in text


def test_every_reference_table_counts(summary: tables.Summary) -> None:
    """Several tables (R3 printed loss and accuracies per row): all rows enter the distance."""
    loss = spec.Reference(source="R3 Table 1", metric="train_loss", note="", rows=(
        ((("model.dropout_location", "none"), ("train.optimizer", "adam")), 0.45),))
    study = types.SimpleNamespace(config=summary.study.config, reference=summary.study.reference,
                                  references=(summary.study.reference, loss))
    s = dataclasses.replace(summary, study=study)
    frame = readings.reading_distances(s).set_index("reading")
    # adam: 5, 5 (accuracy) and |0.55 - 0.45| = 0.1 (mean train loss of seeds 0.5, 0.6)
    assert frame.loc["optimizer=adam", "rows"] == 3
    assert frame.loc["optimizer=adam", "mean_abs_diff"] == pytest.approx(10.1 / 3)
    assert frame.loc["optimizer=adam", "mean_abs_diff_train_loss"] == pytest.approx(0.1)
    assert frame.loc["optimizer=adam", "rows_test_acc"] == 2
    assert frame.loc["optimizer=sgd", "rows_train_loss"] == 0
    assert math.isnan(frame.loc["optimizer=sgd", "mean_abs_diff_train_loss"])
    half = T975_2 * math.sqrt(((5 - 10.1 / 3) ** 2 * 2 + (0.1 - 10.1 / 3) ** 2) / 2) / math.sqrt(3)
    assert frame.loc["optimizer=adam", "ci_high"] == pytest.approx(10.1 / 3 + half)
    assert bool(frame.loc["optimizer=sgd", "closest"])
    assert readings.closest_reading(s) is None  # overlapping intervals: not singled out


def test_report_has_a_readings_section(summary: tables.Summary) -> None:
    from hpo.reporting import write

    text = write.readme(summary, [], ["md"])
    section = text.split("## Readings\n\n", 1)[1]
    assert section.startswith(
        "Per reading (a combination of the values the seed left open: `train.optimizer`), the "
        "mean absolute difference between the measured means and the published values over "
        "the reference rows (test_acc), with a 95% t-interval over the rows' absolute "
        "differences (none with fewer than 2 rows; descriptive only: the rows share "
        "configurations and metrics, so they are not independent samples).")
    assert ("| optimizer=sgd | 2 | 1.00 [0.00, 13.71] | 0 of 1; 1 cannot tell | 1 of 2 | "
            "**closest** |"
            in section)
    assert text.index("## Published result") < text.index("## Readings")


def test_readings_and_references_from_the_study_file(tmp_path: Path) -> None:
    """The spec's own `readings` and `[[references]]`: both tables rendered, all rows counted."""
    from hpo.reporting import write

    raw = copy.deepcopy(RAW)
    raw["readings"] = ["train.optimizer"]
    raw["references"] = [{"source": "R3 Table 1", "metric": "train_loss", "rows": [
        {"model.dropout_location": "none", "train.optimizer": "adam", "value": 0.45}]}]
    study = spec.validate(raw, "test")
    storage = store.open_storage(store.parse(f"sqlite:///{tmp_path}/s.db"), create=True)
    study_obj = synthetic.create_study(storage, study)
    synthetic.add(study_obj, [
        synthetic.trial(study, {"train.optimizer": opt, "model.dropout_location": loc},
                        synthetic.record(seed, test_acc=acc, train_loss=0.5 + seed / 10))
        for (opt, loc), accs in MEASURED.items() for seed, acc in enumerate(accs)])
    s = tables.summarize(study_obj)
    frame = readings.reading_distances(s).set_index("reading")
    assert frame.loc["optimizer=adam", "rows"] == 3
    assert frame.loc["optimizer=adam", "mean_abs_diff"] == pytest.approx(10.1 / 3)
    text = write.readme(s, [], ["md"])
    assert "Source: R4." in text and "Source: R3 Table 1." in text
    # adam: before_pool 97 ± 22 holds 92, none 95 ± 0 misses 90, loss 0.55 ± 1.1 holds 0.45
    # (the loss row's interval, 0.55 ± 1.1, is far wider than 10% of itself: it cannot tell)
    assert ("| optimizer=adam | 3 | 3.37 [0.00, 10.39] | 5.00 (2) | 0.100 (1) | 0 of 1; 2 cannot "
            "tell | 1 of 3 |  |") in text


def test_published_numbers_rank_no_reading_off_the_seeds_dataset(
        summary: tables.Summary) -> None:
    # The fixture ran on digits; numbers published for MNIST say nothing about its readings.
    config = {**summary.study.config, "seed_dataset": "mnist"}
    off = dataclasses.replace(summary, study=dataclasses.replace(summary.study, config=config))
    assert readings.off_seed_dataset(off) == "mnist"
    assert readings.reading_distances(off).empty
    assert readings.closest_reading(off) is None
    assert readings.readings_markdown(off) == (
        "The published numbers are for mnist; this study ran on digits, so they rank none of the "
        "readings (`train.optimizer`). Run it with `--dataset mnist` for that comparison.")


def test_seed_dataset_must_be_a_known_dataset() -> None:
    raw = {**copy.deepcopy(RAW), "seed_dataset": "mnsit"}
    with pytest.raises(spec.SpecError) as err:
        spec.validate(raw, "test")
    assert str(err.value) == (
        "test: seed_dataset must be one of 'digits', 'mnist', 'fashion_mnist', 'kmnist', "
        "'cifar10', 'imagefolder', got 'mnsit'")


def test_every_published_value_inside_says_consistent_not_reproduced() -> None:
    import pandas as pd

    frame = pd.DataFrame({"reading": ["bn=train", "bn=frozen"], "rows": [2, 2],
                          "with_interval": [2, 2], "inside": [2, 1]})
    assert readings._reproduces(frame, 3.0) == (
        "Consistent with the published table (every published value inside its 95% "
        "prediction interval of one run, each at most ±3 points wide): **bn=train**.")


def test_intervals_too_wide_to_tell_are_not_called_consistent() -> None:
    import pandas as pd

    # bn=train: 1 value inside a narrow interval, 1 inside a wide one (cannot tell).
    frame = pd.DataFrame({"reading": ["bn=train", "bn=frozen"], "rows": [2, 2],
                          "with_interval": [1, 2], "inside": [1, 0]})
    assert readings._reproduces(frame, 3.0) == (
        "Consistent only where the interval can tell: in bn=train, 1 of 2 published values lie "
        "inside an interval narrow enough to tell (accuracies: at most ±3 points, losses ±10%) "
        "and none "
        "outside; the other intervals are wider, so the table as a whole is neither matched nor "
        "contradicted.")
    wide = pd.DataFrame({"reading": ["a"], "rows": [2], "with_interval": [0], "inside": [0]})
    assert readings._reproduces(wide, 3.0) == (
        "Whether a reading is consistent with the table cannot be said: no configuration has "
        "the 2 runs a prediction interval needs, or every interval is wider than ±3 points "
        "(see Published result for how many seeds would narrow it).")


def test_seeds_to_narrow_a_prediction_interval() -> None:
    from hpo.reporting.published import seeds_to_narrow

    # 95% PI half-width t(n-1)·s·sqrt(1 + 1/n) <= 3 with s = 1: n = 3 gives 4.30·1.155 = 4.97,
    # n = 4 gives 3.18·1.118 = 3.56, n = 5 gives 2.78·1.095 = 3.04, n = 6: 2.57·1.080 = 2.78.
    assert seeds_to_narrow(1.0, 3.0) == 6
    assert seeds_to_narrow(0.0, 3.0) == 2
    assert seeds_to_narrow(1.6, 3.0) is None  # 1.96·1.6 > 3: no number of seeds does


@pytest.mark.parametrize(("change", "reason"), [
    ({"seed_dataset": "mnist"},
     "the published numbers are for mnist; this study ran on digits"),
    ({"compare_reference": False},
     "the published numbers come from another setting than this study's (its description "
     "says how), so they are listed for context only"),
])
def test_published_numbers_of_another_setting_are_listed_never_compared(
        summary: tables.Summary, change: dict, reason: str) -> None:
    from hpo.reporting import figures

    other = dataclasses.replace(summary, study=dataclasses.replace(
        summary.study, config={**summary.study.config, **change}))
    text = write.readme(other, [], ["md"])
    assert f"Not compared: {reason}." in text
    assert "| model.dropout_location=none | 90 |" in " ".join(text.split())
    assert "prediction interval" not in text.split("## Published result")[1]
    assert figures.accuracy_data(other, "test_acc").reference.empty
    assert readings.closest_reading(other) is None
    assert not figures.accuracy_data(summary, "test_acc").reference.empty


def test_one_closest_reading_across_a_seeds_studies(summary: tables.Summary) -> None:
    """Two studies of one seed: sgd lands 1 point from the published values on average, adam
    5; a study that does not vary the reading key counts for every value of it."""
    from hpo.reporting import seed_readings

    # A second study of the seed, without readings: it counts for sgd and adam alike.
    plain = dataclasses.replace(summary, name="other", study=dataclasses.replace(
        summary.study, config={**summary.study.config, "readings": []}))
    ranked = seed_readings.seed_readings([summary, plain])
    assert [seed_readings.label(s) for s in ranked] == ["optimizer=sgd", "optimizer=adam"]
    sgd, adam = ranked
    # sgd: none 88 vs 90 (-2), before_pool 92 vs 92 (0): mean |difference| 1.
    assert [round(c.diff, 6) for c in sgd.comparisons] == [-2.0, 0.0]
    assert sgd.mean_abs == pytest.approx(1.0) and adam.mean_abs == pytest.approx(5.0)
    # The study without readings is not a seed reading of its own: it adds no rows.
    assert {c.study for c in sgd.comparisons} == {"r4"}
    text = seed_readings.markdown("R4", ranked)
    # sgd at none ran 88 twice: an interval of width 0 tells, and 90 lies outside it.
    # |differences| 2 and 0: mean 1, t-interval 1 ± 12.7 (two rows), clipped at 0.
    assert "| optimizer=sgd | 2 | 1.0 [0.0, 13.7] | 1.0 | 0 / 1 | r4: optimizer=sgd, " \
           "dropout_location=none: test_acc 88.0 vs 90 (-2.0) |" in text
    assert text.rstrip().endswith(
        "Closest to R4: **optimizer=sgd**, 1.0 points from the published accuracies on "
        "average over 2 rows (next: optimizer=adam, 5.0); its interval overlaps another "
        "reading's, so the data do not single it out; it fails worst at r4: optimizer=sgd, "
        "dropout_location=none (test_acc 88.0% measured against 90%); 1 of the 1 published "
        "values whose interval can tell lie outside it. Descriptive only: the rows are not "
        "independent (a reading's rows share its runs, and each published value is one run), "
        "and the closest reading is the one whose numbers sit nearest the seed's, not evidence "
        "of what the seed ran.")
    assert "no study of this seed" in seed_readings.markdown("R3", []).lower()
    # A reading far off on one row (a collapse) but nearest on the others: the median says so.
    def reading(name: str, diffs: list[float]) -> seed_readings.SeedReading:
        rows = [seed_readings.Comparison("s", f"c{i}", "test_acc", 90.0 + d, 90.0, None)
                for i, d in enumerate(diffs)]
        return seed_readings.SeedReading(((name, "x"),), rows)

    steady, collapsing = reading("steady", [3.0, 3.0, 3.0]), reading("collapsing", [0.5, 0.5, 80])
    assert seed_readings.markdown("R9", [steady, collapsing]).split("\n")[-2].startswith(
        "No single reading is closest to R9: by the mean difference it is **steady=x** (3.0 "
        "points over 3 rows), by the median **collapsing=x** (0.5 points, against 3.0), so a "
        "few rows decide the ranking. By the mean, steady=x (next: collapsing=x, 27.0)")


def test_a_run_the_seed_prints_in_two_tables_counts_once() -> None:
    """R4 prints its dropout-before-pooling run again as its rate-0.2 row; R3 prints 60.0%
    train in two rows whose test accuracies differ (two runs): only the first is dropped."""
    from hpo.reporting.seed_readings import Comparison, drop_reprinted

    def row(study: str, metric: str, value: float, printed: dict[str, float]) -> Comparison:
        return Comparison(study, "c", metric, value + 1, value, None,
                          frozenset(printed.items()))

    location = {"train_acc": 92.11, "test_acc": 93.17}
    earlier = [row("dropout_location", m, v, location) for m, v in location.items()]
    rate = [row("dropout_rate", m, v, location) for m, v in location.items()]
    assert drop_reprinted(earlier, rate) == []
    batch = {"train_acc": 60.0, "test_acc": 61.5}
    l2 = {"train_acc": 60.0, "test_acc": 58.2}
    kept = [row("l2", m, v, l2) for m, v in l2.items()]
    assert drop_reprinted([row("batch_size_lr", m, v, batch) for m, v in batch.items()],
                          kept) == kept


def test_seed_readings_needs_its_folders_and_a_plain_title(capsys: pytest.CaptureFixture[str]
                                                            ) -> None:
    from hpo.cli import main

    assert main(["report", "--seed-readings", "R3"]) == 1
    assert capsys.readouterr().err == ("hpo: error: --seed-readings goes with --across-trials "
                                       "DIR... (the seed's report folders)\n")
    assert main(["report", "--seed-readings", "../R3", "--across-trials", "reports"]) == 1
    assert capsys.readouterr().err == ("hpo: error: --seed-readings must be a plain title such "
                                       "as R3 (letters, digits, _), got '../R3'\n")
    assert main(["report", "--seed-readings", "R4", "--across-trials", "reports/mnist/none"]) == 1
    assert capsys.readouterr().err == (
        "hpo: error: reports/mnist/none does not exist; name report folders that hold "
        "trials.journal (or a folder with such folders below it)\n")


def test_the_narrowing_line_counts_only_rows_that_seeds_can_narrow() -> None:
    """batch_norm_r1_cifar10 said "nan seeds per configuration would narrow 6 of the 6": a
    table column of counts and Nones reads back as floats and NaN."""
    from hpo.reporting.published import narrowing_text, seeds_count

    needs = [seeds_count(v) for v in (float("nan"), 4.0, float("nan"), None)]
    assert needs == [None, 4, None, None]
    assert narrowing_text(6, [11.4, 3.9, 28.6, 14.9], needs, 3.0) == (
        "2 of 6 comparisons have an interval narrow enough to tell (±3 points or less); the "
        "widest is ±28.6. At the spread measured, 4 seeds per configuration would narrow 1 of "
        "the 4 wide ones enough; for the rest no number would: the runs themselves spread "
        "more than ±3 points (the interval never falls below ±1.96 standard deviations).")
    assert narrowing_text(2, [5.0], [None], 3.0) == (
        "1 of 2 comparisons have an interval narrow enough to tell (±3 points or less); the "
        "widest is ±5.0. No number of seeds would narrow them enough: the runs themselves "
        "spread more than ±3 points (the interval never falls below ±1.96 standard "
        "deviations).")
    assert narrowing_text(2, [3.5, 4.0], [5, 6], 3.0).endswith(
        "6 seeds per configuration would narrow 2 of the 2 wide ones enough.")
    assert narrowing_text(3, [], [], 3.0) == (
        "All 3 comparisons have an interval narrow enough to tell (±3 points or less).")


def _summary_of(measured: dict) -> tables.Summary:
    """RAW's study with optimizer readings, these runs stored in memory."""
    raw = copy.deepcopy(RAW)
    raw["readings"] = ["train.optimizer"]
    study = spec.validate(raw, "test")
    study_obj = synthetic.create_study(optuna.storages.InMemoryStorage(), study)
    synthetic.add(study_obj, [
        synthetic.trial(study, {"train.optimizer": opt, "model.dropout_location": loc},
                        synthetic.record(seed, test_acc=acc))
        for (opt, loc), accs in measured.items() for seed, acc in enumerate(accs)])
    return tables.summarize(study_obj)


def test_the_only_reading_no_published_value_contradicts_is_singled_out() -> None:
    """R4's dropout table: with momentum and Adam all 9 published values lie outside their
    intervals, with plain SGD none does, though the mean distances overlap."""
    # Published: none 90, before_pool 92. sgd: 86/90/88 (88 ± 9.9 holds 90), 91/93/92; adam:
    # 95/95/95 (no spread: 90 lies outside at any level), 95/99/97 (97 ± 9.9 holds 92).
    measured = {("sgd", "none"): (86.0, 90.0, 88.0), ("sgd", "before_pool"): (91.0, 93.0, 92.0),
                ("adam", "none"): (95.0, 95.0, 95.0), ("adam", "before_pool"): (95.0, 99.0, 97.0)}
    summary = _summary_of(measured)
    frame = readings.reading_distances(summary)
    assert list(frame["outside"]) == [0, 1]
    assert not readings.clearly_closest(frame)  # sgd's distance [0, 13.7] overlaps adam's 5
    assert readings.closest_reading(summary) == (("train.optimizer", "sgd"),)
    assert ("but **optimizer=sgd** is the only reading that no published value contradicts"
            in readings.readings_markdown(summary))


def test_a_value_outside_one_row_s_interval_but_inside_the_joint_one_contradicts_nothing(
        ) -> None:
    """With k published rows a reading is contradicted only outside its intervals at 95%
    jointly (each at 1 - 0.05/k): nine rows would rule the seed's own setting out by chance in a
    third of studies."""
    from hpo.reporting.published import prediction_interval

    # adam/before_pool 95.5/96/96.5 (s = 0.5): 93 lies outside the per-row 95% interval but
    # inside the joint one of two rows (97.5%); 92 lies outside both.
    low95, _ = prediction_interval(96.0, 0.5, 3)
    low_joint, _ = prediction_interval(96.0, 0.5, 3, 0.975)
    assert low_joint < 93.0 < low95 and 92.0 < low_joint
    measured = {("sgd", "none"): (86.0, 90.0, 88.0), ("sgd", "before_pool"): (91.0, 93.0, 92.0),
                ("adam", "none"): (86.0, 94.0, 90.0), ("adam", "before_pool"): (95.5, 96.0, 96.5)}
    far = _summary_of(measured)
    assert list(readings.reading_distances(far)["outside"]) == [0, 1]
    raw = copy.deepcopy(RAW)
    raw["reference"]["rows"][1]["value"] = 93.0
    near = dataclasses.replace(far, study=dataclasses.replace(
        far.study, reference=spec.validate(raw, "test").reference))
    assert list(readings.reading_distances(near)["outside"]) == [0, 0]
    assert readings.closest_reading(near) is None


def test_the_narrowing_line_counts_wide_intervals_that_the_published_value_lies_outside(
        ) -> None:
    from hpo.reporting.published import narrowing_text

    assert narrowing_text(4, [22.5, 20.0], [None, None], 3.0, outside=2) == (
        "0 of 4 comparisons have an interval narrow enough to tell (±3 points or less); 2 "
        "more, wider, tell as they are: the published value lies outside; the widest of the "
        "rest is ±22.5. No number of seeds would narrow them enough: the runs themselves "
        "spread more than ±3 points (the interval never falls below ±1.96 standard "
        "deviations).")
    assert narrowing_text(3, [], [], 3.0, outside=1) == (
        "2 of 3 comparisons have an interval narrow enough to tell (±3 points or less); 1 "
        "more, wider, tell as they are: the published value lies outside.")
