"""Readings in which the compared networks did not train are left out of a claim's verdict,
named, and counted; runs at chance are counted per configuration (issue 24, item 1)."""

from __future__ import annotations

import copy
import dataclasses

import optuna
import pytest

from hpo import spec
from hpo.benchmarks import synthetic
from hpo.reporting import claims, readings, render, tables, verdicts, write

optuna.logging.set_verbosity(optuna.logging.WARNING)

RAW = {
    "name": "mom", "dataset": "digits", "epochs": 2, "repeats": 3, "sampler": "grid",
    "readings": ["train.lr"],
    "model": {"channels": [4, 4], "padding": 1},
    "space": {"train.optimizer": ["sgd", "momentum"], "train.lr": [0.001, 0.01]},
    "claims": [{"text": "momentum beats plain SGD", "kind": "better",
                "config": {"train.optimizer": "momentum"},
                "than": {"train.optimizer": "sgd"}}],
}


def build_summary(tmp_path, measured, key):
    """The summary of these runs, stored in memory (through SQLite each made-up trial costs
    ~0.05-0.1 CPU s; what is read back is the same)."""
    study = spec.validate(copy.deepcopy(RAW), "test")
    study_obj = synthetic.create_study(optuna.storages.InMemoryStorage(), study)
    synthetic.add(study_obj, [
        synthetic.trial(study, {"train.optimizer": opt, "train.lr": lr},
                        synthetic.record(seed, test_acc=acc, train_acc=acc))
        for (opt, lr), accs in measured.items() for seed, acc in enumerate(accs)])
    return tables.summarize(study_obj)


# lr 1e-3: plain SGD stays at chance (10%: digits has 10 classes) in every seed, so momentum
# "wins" by 50 points; lr 1e-2: both train and plain SGD is significantly better.
SGD_STUCK = {("sgd", 0.001): (10.0, 11.0, 9.5), ("momentum", 0.001): (60.0, 62.0, 61.0),
             ("sgd", 0.01): (70.0, 71.0, 72.0), ("momentum", 0.01): (50.0, 51.0, 49.0)}


# lr 1e-3: momentum, the side the claim favours, stays at chance: that reading cannot speak to
# the claim and is left out; lr 1e-2 decides it.
MOMENTUM_STUCK = {("sgd", 0.001): (60.0, 62.0, 61.0), ("momentum", 0.001): (10.0, 11.0, 9.5),
                  ("sgd", 0.01): (70.0, 71.0, 72.0), ("momentum", 0.01): (50.0, 51.0, 49.0)}


def test_a_reading_where_the_favoured_side_did_not_train_is_left_out_and_named(tmp_path):
    summary = build_summary(tmp_path, MOMENTUM_STUCK, "momentum-stuck")
    [verdict] = verdicts.evaluate_all(summary)
    assert verdict.verdict == claims.NOT_SUPPORTED  # lr 1e-2 alone decides it
    stuck = ("lr=0.001 (optimizer=momentum, lr=0.001 did not train: training loss 0.5, "
             "accuracy 10.2%)")
    assert verdict.untrained == (stuck,)
    assert verdict.evidence.endswith(
        "(judged within lr=0.01, the one reading that trains); left out, as they did not "
        f"train: {stuck}")


def test_a_reading_where_the_expected_loser_did_not_train_is_left_out_too(tmp_path):
    """R1's sigmoid that never leaves chance agrees with "ReLU is faster" but does not measure
    it: the reading is left out like any other in which a compared network did not train."""
    summary = build_summary(tmp_path, SGD_STUCK, "sgd-stuck")
    [verdict] = verdicts.evaluate_all(summary)
    assert verdict.verdict == claims.NOT_SUPPORTED  # lr 1e-2 alone: plain SGD is better
    stuck = "lr=0.001 (optimizer=sgd, lr=0.001 did not train: training loss 0.5, accuracy 10.2%)"
    assert verdict.untrained == (stuck,)
    assert verdict.evidence.endswith(
        "(judged within lr=0.01, the one reading that trains); left out, as they did not "
        f"train: {stuck}")


def test_without_readings_a_compared_network_that_did_not_train_leaves_it_unexercised(
        tmp_path):
    summary = build_summary(tmp_path, SGD_STUCK, "sgd-stuck")
    claim = spec.Claim("momentum beats sgd at 1e-3", "better",
                       (("train.lr", 0.001), ("train.optimizer", "momentum")),
                       (("train.lr", 0.001), ("train.optimizer", "sgd")))
    summary.study = dataclasses.replace(summary.study, claims=(claim,))
    [verdict] = verdicts.evaluate_all(summary)
    assert (verdict.verdict, verdict.evidence) == (
        claims.NOT_EXERCISED, "optimizer=sgd, lr=0.001 did not train: a network that never "
        "leaves chance does not measure the claim")


def test_the_report_counts_runs_at_chance_and_says_what_was_left_out(tmp_path):
    summary = build_summary(tmp_path, SGD_STUCK, "sgd-stuck")
    table = summary.table.set_index("config")
    assert table.loc["optimizer=sgd, lr=0.001", "collapsed"] == 3
    assert table["collapsed"].sum() == 3
    shown = render.display_table(summary, None)
    assert list(shown["diverged / at chance"]) == ["0 / 3", "0 / 0", "0 / 0", "0 / 0"]
    text = write.readme(summary, [], ["md"])
    assert ("*Did not train, so left out of the claims they would decide: optimizer=sgd, "
            "lr=0.001 (training loss 0.5, accuracy 10.2%).*") in text
    assert ("3 complete runs in 1 configurations ended at chance (training "
            "accuracy or loss at guessing's and validation accuracy not well above it: they did "
            "not train; column \"at chance\").") in text


def test_bimodal_configurations_are_said_to_be(tmp_path):
    measured = dict(SGD_STUCK)
    measured[("sgd", 0.001)] = (10.0, 80.0, 9.0)
    summary = build_summary(tmp_path, measured, "bimodal")
    text = write.readme(summary, [], ["md"])
    assert ("2 complete runs in 1 configurations ended at chance (training accuracy or loss at "
            "guessing's and validation accuracy not well above it: they did not train; column "
            "\"at chance\"), 1 of those configurations "
            "only in some seeds (bimodal: its mean and std describe two outcomes, not one)."
            ) in text
    [verdict] = verdicts.evaluate_all(summary)
    assert verdict.untrained == ()  # mean 33%: it trains, if in one seed only; the reading counts


def test_a_configuration_whose_mean_is_at_chance_did_not_train(tmp_path):
    measured = dict(MOMENTUM_STUCK)
    measured[("momentum", 0.001)] = (20.0, 10.0, 10.0)  # one seed barely moved: mean 13.3%
    summary = build_summary(tmp_path, measured, "barely")
    [verdict] = verdicts.evaluate_all(summary)
    assert verdict.untrained == ("lr=0.001 (optimizer=momentum, lr=0.001 did not train: "
                                 "training loss 0.5, accuracy 13.3%)",)


def test_no_reading_trains_means_not_exercised(tmp_path):
    measured = {k: ((10.0, 9.0, 11.0) if k[0] == "momentum" else v)
                for k, v in SGD_STUCK.items()}
    summary = build_summary(tmp_path, measured, "never")
    [verdict] = verdicts.evaluate_all(summary)
    assert verdict.verdict == claims.NOT_EXERCISED
    assert verdict.evidence == (
        "no reading the seed leaves open trains the networks it compares: lr=0.001 "
        "(optimizer=momentum, lr=0.001 did not train: training loss 0.5, accuracy 10.0%; "
        "optimizer=sgd, lr=0.001 did not train: training loss 0.5, accuracy 10.2%); lr=0.01 "
        "(optimizer=momentum, lr=0.01 did not train: training loss 0.5, accuracy 10.0%)")


def test_a_loss_still_at_guessing_s_did_not_train(tmp_path):
    """R1's plain SGD at lr 1e-3: 16-20% accuracy, but a training loss of ln 10."""
    import math

    import pandas as pd

    from hpo.reporting import tables as t

    acc = pd.Series([20.0, 20.0, 25.0, 25.01])
    loss = pd.Series([2.29, 0.95 * math.log(10) - 0.01, 2.29, 2.29])
    # 25.01%: more than 3 tolerances (5 points) above guessing's 10% learned something,
    # whatever its loss (mnist/batch_size_lr's x13 output layer: 44% at a loss of 2.2).
    assert t.at_chance(acc, "digits", loss).tolist() == [True, False, True, False]
    assert t.at_chance(acc, "digits", loss, "sum").tolist() == [False] * 4
    # Each run's own reduction where a study varies it (mnist/batch_size_lr: a summed loss is a
    # batch's worth of per-image losses).
    each = pd.Series(["mean", "mean", "sum", "mean"])
    assert t.at_chance(acc, "digits", loss, each).tolist() == [True, False, False, False]


def test_weights_that_score_well_above_chance_trained():
    """learning_rate_r0 at lr 1e-5, one epoch: the running-mean training accuracy read 15% at a
    loss of ln 10 while the final weights scored 44.8%: that run learned (late). 20% does not
    clear three tolerances above guessing (R1's plain SGD at lr 1e-3 stays untrained)."""
    import pandas as pd

    from hpo.reporting import tables as t

    acc, loss = pd.Series([15.0, 15.0, 15.0]), pd.Series([2.29, 2.29, 2.29])
    val = pd.Series([44.8, 20.0, float("nan")])
    assert t.at_chance(acc, "digits", loss, "mean", val).tolist() == [False, True, True]


@pytest.mark.parametrize(("acc", "expected"), [(15.0, True), (15.01, False), (None, True)])
def test_at_chance_is_within_the_tolerance_of_guessing(acc, expected):
    import pandas as pd

    assert bool(tables.at_chance(pd.Series([acc], dtype=float), "digits").iloc[0]) is expected


def test_identical_arms_are_named(tmp_path):
    measured = dict(SGD_STUCK)
    measured[("momentum", 0.01)] = measured[("sgd", 0.01)]  # the same runs, seed for seed
    summary = build_summary(tmp_path, measured, "identical")
    assert tables.identical_groups(summary) == [["optimizer=sgd, lr=0.01",
                                                 "optimizer=momentum, lr=0.01"]]
    assert ("Identical runs, seed for seed (one run under several names: what differs between "
            "them had no effect here): optimizer=sgd, lr=0.01 ≡ optimizer=momentum, lr=0.01."
            ) in write.readme(summary, [], ["md"])
    (tmp_path / "x").mkdir()
    assert tables.identical_groups(build_summary(tmp_path / "x", SGD_STUCK, "sgd-stuck")) == []


def test_a_collapse_reading_counts_its_runs_at_chance_and_names_zero_variance() -> None:
    claim = spec.Claim("lr 0.1 collapses to chance", "at_chance", (("train.lr", 0.1),), None,
                       "test_acc")
    same = claims.Verdict(claim, "test_acc", "supported", "lr=0.1: test_acc 11.35 ± 0 (n=4, "
                          "every run the same); ...", 0.0, configs=({"n": 4, "collapsed": 4},))
    mixed = claims.Verdict(claim, "test_acc", "not supported", "lr=0.1: test_acc 79 ± 33 (n=6)",
                           0.00264, configs=({"n": 6, "collapsed": 1},))
    assert verdicts.reading_gist(same) == " (every run the same, 4 of 4 runs at chance)"
    assert verdicts.reading_gist(mixed) == " (p = 0.00264, 1 of 6 runs at chance)"


def test_each_configuration_left_out_is_named_once_and_cost_claims_keep_it(tmp_path):
    """Two claims leave out the same stuck configuration: the report's first lines name it once
    (mnist/full_batch listed its readings twice, rows in another order). A claim on what a run
    costs keeps that reading: seconds need no training."""
    summary = build_summary(tmp_path, SGD_STUCK, "sgd-stuck")
    beats = summary.study.claims[0]
    cost = spec.Claim("momentum costs more than plain SGD", "better",
                      (("train.optimizer", "momentum"),), (("train.optimizer", "sgd"),),
                      "wall_time")
    summary.study = dataclasses.replace(
        summary.study, claims=(beats, dataclasses.replace(beats, text="again"), cost))
    judged = verdicts.evaluate_all(summary)
    assert [v.untrained_rows for v in judged] == [
        ("optimizer=sgd, lr=0.001 (training loss 0.5, accuracy 10.2%)",)] * 2 + [()]
    text = write.readme(summary, [], ["md"])
    assert text.count("optimizer=sgd, lr=0.001 (training loss 0.5, accuracy 10.2%)") == 1


def test_failed_runs_that_were_run_again_are_said_to_be(tmp_path):
    """mnist/full_batch: 4 failed trials, each a run cut short by an interrupt and run again."""
    study = spec.validate(copy.deepcopy(RAW), "test")
    study_obj = synthetic.create_study(optuna.storages.InMemoryStorage(), study)
    params = {"train.optimizer": "sgd", "train.lr": 0.01}
    synthetic.add(study_obj, [
        synthetic.trial(study, params, synthetic.record(0, test_acc=70.0), state="FAIL"),
        synthetic.trial(study, params, synthetic.record(0, test_acc=70.0)),
        synthetic.trial(study, params, synthetic.record(1, test_acc=71.0), state="FAIL")])
    summary = tables.summarize(study_obj)
    assert tables.redone_failures(summary) == 1  # seed 1 never completed
    assert ("3 trials: 1 complete, 2 failed. Only complete trials enter the means; the others "
            "are counted per configuration in the table. 1 of the failed runs was cut short (an "
            "interrupt or a lost worker) and run again to completion: each configuration and "
            "seed counts once.") in write.readme(summary, [], ["md"])


# lr 1e-3: neither optimizer trains; lr 1e-2: both do, and plain SGD stays at chance in none.
NOTHING_TRAINS = {("sgd", 0.001): (10.0, 11.0, 9.5), ("momentum", 0.001): (9.8, 10.4, 10.1),
                  ("sgd", 0.01): (70.0, 71.0, 72.0), ("momentum", 0.01): (50.0, 51.0, 49.0)}


def test_an_at_chance_claim_leaves_out_a_reading_in_which_nothing_trains(tmp_path):
    """"Plain SGD leaves the network at chance" holds trivially where momentum does not train
    either: that reading is left out, and lr 1e-2 (where SGD trains) decides it."""
    summary = build_summary(tmp_path, NOTHING_TRAINS, "nothing-trains")
    claim = spec.Claim("plain SGD stays at chance", "at_chance", (("train.optimizer", "sgd"),),
                       (), "test_acc", 10.0)
    summary.study = dataclasses.replace(summary.study, claims=(claim,))
    [verdict] = verdicts.evaluate_all(summary)
    assert verdict.verdict == claims.NOT_SUPPORTED
    assert verdict.untrained == (
        "lr=0.001 (optimizer=sgd, lr=0.001 did not train: training loss 0.5, accuracy 10.2%; "
        "optimizer=momentum, lr=0.001 did not train: training loss 0.5, accuracy 10.1%)",)
    everything = build_summary(tmp_path, {k: v for k, v in NOTHING_TRAINS.items()
                                          if k[1] == 0.001}, "all-stuck")
    everything.study = dataclasses.replace(everything.study, claims=(claim,), config={
        **everything.study.config, "readings": []})
    [verdict] = verdicts.evaluate_all(everything)
    assert (verdict.verdict, verdict.evidence) == (
        claims.NOT_EXERCISED, "no configuration of this study trains, so none can show that it "
        "leaves the network at chance")


def test_a_claim_whose_readings_disagree_counts_in_holm():
    """Its combined p is undefined, but it was tested: Holm corrects the others for it (m = 2,
    p = 1 for it), so a p of 0.03 alone no longer decides."""
    claim = spec.Claim("a beats b", "better", (("train.lr", 0.001),), (("train.lr", 0.01),))
    decided = claims.Verdict(claim, "test_acc", claims.SUPPORTED, "evidence", p_value=0.03)
    split = claims.Verdict(claim, "test_acc", claims.INCONCLUSIVE, "readings disagree")
    first, second = verdicts.holm_over_claims([decided, split], 0.05)
    assert first.verdict == claims.INCONCLUSIVE
    assert first.evidence.startswith(
        "evidence; supported alone, but not after Holm over the report's 2 tests (adjusted "
        "p = 0.06)")
    assert (second.verdict, second.p_adjusted) == (claims.INCONCLUSIVE, 1.0)
    [alone] = verdicts.holm_over_claims([decided], 0.05)
    assert alone.verdict == claims.SUPPORTED


def test_the_next_look_counts_the_same_readings_as_the_last(tmp_path):
    """lr 1e-3 is left out (plain SGD did not train), so the claim's share counts lr 1e-2's
    two configurations only, now (3 of 6 seeds) and after one more batch (6 of 6): the next
    look tests at the level for shares 0.5 then 1, not a share diluted by the left-out
    reading's configurations that get no seeds."""
    from hpo.spec import level_at

    summary = build_summary(tmp_path, SGD_STUCK, "sgd-stuck")
    summary.study = dataclasses.replace(summary.study, config={
        **summary.study.config, "until_decided": True, "max_repeats": 6})
    [verdict] = verdicts.evaluate_all(summary)
    assert verdicts.claim_shares(verdict.claim, summary) == [0.5]
    assert verdicts.next_level(verdict, summary) == pytest.approx(level_at(0.05, [0.5, 1.0]))


def test_a_flat_loss_that_never_left_chance_is_not_convergence(tmp_path):
    """An above / below claim on a curve's shape (R4: the CNN's loss still falls) leaves out a
    reading where the network did not train: its loss is flat without having converged. On an
    accuracy it keeps it: "the training accuracy climbs above 15%" is about training itself."""
    study = spec.validate(copy.deepcopy(RAW), "test")
    falls = {("sgd", 0.001): (5.0, 6.0, 7.0), ("momentum", 0.001): (0.1, 0.2, 0.15),
             ("sgd", 0.01): (5.0, 6.0, 7.0), ("momentum", 0.01): (5.0, 5.5, 6.0)}
    study_obj = synthetic.create_study(optuna.storages.InMemoryStorage(), study)
    trials = []
    for (opt, lr), accs in MOMENTUM_STUCK.items():
        for seed, acc in enumerate(accs):
            attrs = synthetic.record(seed, test_acc=acc, train_acc=acc)
            last = attrs["history"][-1]["train_loss"]
            attrs["history"][-3]["train_loss"] = last / (1 - falls[opt, lr][seed] / 100)
            trials.append(synthetic.trial(study, {"train.optimizer": opt, "train.lr": lr},
                                          attrs))
    synthetic.add(study_obj, trials)
    summary = tables.summarize(study_obj)
    momentum = (("train.optimizer", "momentum"),)
    still_falls = spec.Claim("momentum's loss has not flattened", "above", momentum,
                             metric="late_loss_fall", value=2.0)
    memorises = spec.Claim("momentum's training accuracy climbs above 15%", "above", momentum,
                           metric="train_acc", value=15.0)
    summary.study = dataclasses.replace(summary.study, claims=(still_falls, memorises))
    falls_v, acc_v = verdicts.evaluate_all(summary)
    assert falls_v.verdict == claims.SUPPORTED, falls_v.evidence
    assert falls_v.untrained == ("lr=0.001 (optimizer=momentum, lr=0.001 did not train: "
                                 "training loss 0.5, accuracy 10.2%)",)
    assert (acc_v.verdict, acc_v.untrained) == (claims.INCONCLUSIVE, ())
    assert acc_v.evidence.startswith("the readings the seed leaves open disagree")


def test_a_configuration_without_the_reading_key_is_in_every_reading(tmp_path):
    """R1's Adadelta runs at its own lr while SGD's lr is the reading: one claim, judged in
    each SGD lr against the same Adadelta runs (optimizer_r1_cifar10 had one claim per lr)."""
    raw = copy.deepcopy(RAW)
    raw["space"] = {"train.optimizer": ["sgd", "adadelta"],
                    "train.lr": {"choices": [0.001, 0.01], "when": {"train.optimizer": ["sgd"]}}}
    raw["claims"] = [{"text": "Adadelta beats SGD", "kind": "better",
                      "config": {"train.optimizer": "adadelta"},
                      "than": {"train.optimizer": "sgd"}}]
    study = spec.validate(raw, "test")
    measured = {("sgd", 0.001): (10.0, 11.0, 9.5), ("sgd", 0.01): (50.0, 51.0, 49.0),
                ("adadelta", None): (60.0, 62.0, 61.0)}
    study_obj = synthetic.create_study(optuna.storages.InMemoryStorage(), study)
    synthetic.add(study_obj, [
        synthetic.trial(study, {"train.optimizer": opt} | ({"train.lr": lr} if lr else {}),
                        synthetic.record(seed, test_acc=acc, train_acc=acc))
        for (opt, lr), accs in measured.items() for seed, acc in enumerate(accs)])
    summary = tables.summarize(study_obj)
    assert readings.readings_of(summary) == [(("train.lr", 0.001),), (("train.lr", 0.01),)]
    [verdict] = verdicts.evaluate_all(summary)
    assert verdict.verdict == claims.SUPPORTED
    assert verdict.evidence.startswith(
        "optimizer=adadelta: val_acc 61 ± 1 (n=3) vs optimizer=sgd, lr=0.01: val_acc 50 ± 1 "
        "(n=3)")
    assert verdict.untrained == ("lr=0.001 (optimizer=sgd, lr=0.001 did not train: training "
                                 "loss 0.5, accuracy 10.2%)",)


def test_an_image_folder_study_reads_guessing_from_the_class_count_its_trials_recorded() -> None:
    """An image folder's classes are known only once it is read: each trial records them
    (n_classes), and the report divides by them; trials from before, which lack the count,
    give one line instead of a ZeroDivisionError (the transfer study's, 2026-12-08)."""
    import pandas as pd

    from hpo.errors import HpoError
    from hpo.reporting.chance import at_chance, chance_acc, recorded_classes

    frame = pd.DataFrame({"state": ["COMPLETE", "COMPLETE", "FAIL"],
                          "n_classes": [2, 2, None]})
    assert recorded_classes(frame) == 2
    assert chance_acc("imagefolder", recorded_classes(frame)) == 50.0
    assert chance_acc("mnist", 2) == 10.0  # a dataset's own count wins
    # 52% training accuracy on two classes is guessing; on ten it would not be.
    assert list(at_chance(pd.Series([52.0, 90.0]), "imagefolder", classes=2)) == [True, False]
    assert recorded_classes(pd.DataFrame({"state": ["COMPLETE"], "n_classes": [None]})) == 0
    # No complete run yet (every trial failed): nothing is at chance, and no count is needed.
    assert list(at_chance(pd.Series([], dtype=float), "imagefolder")) == []
    with pytest.raises(HpoError) as info:
        chance_acc("imagefolder", 0)
    assert str(info.value) == (
        "the trials of this imagefolder study do not record how many classes its data has "
        "(hpo records it from 2026-12-08 on), so guessing's accuracy is unknown; run the study "
        "again to report it")
