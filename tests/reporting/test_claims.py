"""[[claims]] in study files: validation messages, verdicts on constructed stores, README."""

from __future__ import annotations

import copy
import dataclasses
import math
from pathlib import Path

import numpy as np
import optuna
import pytest
from scipy import stats

from hpo import spec, store
from hpo.benchmarks import synthetic
from hpo.errors import SpecError
from hpo.reporting import claim_kinds, claims, claims_section, render, tables, verdicts, write
from hpo.reporting import stats as stats_mod
from hpo.schema import SPEC_ATTR

optuna.logging.set_verbosity(optuna.logging.WARNING)

LOC = "model.dropout_location"
RAW = {
    "name": "cl", "dataset": "digits", "epochs": 2, "repeats": 3, "metric": "test_acc",
    "model": {"channels": [4, 4], "padding": 1, "dropout": 0.2},
    "space": {LOC: ["none", "before_pool", "before_conv", "before_fc", "input"]},
}
# test_acc per seed: none 80/82/84, before_pool 90/91/92, before_conv 88/90/92,
# before_fc 9/10/11 (chance on 10 classes), input a single run.
ACC = {"none": (80.0, 82.0, 84.0), "before_pool": (90.0, 91.0, 92.0),
       "before_conv": (88.0, 90.0, 92.0), "before_fc": (9.0, 10.0, 11.0), "input": (85.0,)}


def claim(kind: str, config: str, than: str | None = None, **extra: object) -> dict:
    out = {"text": f"{kind} {config}", "kind": kind, "config": {LOC: config}, **extra}
    if than is not None:
        out["than"] = {LOC: than}
    return out


def study_with(*claim_dicts: dict) -> spec.Study:
    raw = copy.deepcopy(RAW)
    raw["claims"] = list(claim_dicts)
    return spec.validate(raw, "s.toml")


def summary_for(tmp_path: Path, study: spec.Study,
                acc: dict[str, tuple[float, ...]] | None = None, **extra: object
                ) -> tables.Summary:
    """The report's summary of a store holding ``study`` and these runs: the study stored
    without claims, then its file with them, as `hpo run` does. In memory: through SQLite each
    made-up trial costs ~0.05-0.1 CPU s, which was most of these tests' time."""
    acc = acc or ACC
    unclaimed = dataclasses.replace(study, claims=())
    study_obj = synthetic.create_study(optuna.storages.InMemoryStorage(), unclaimed)
    synthetic.add(study_obj, [
        synthetic.trial(study, {LOC: loc}, synthetic.record(seed, test_acc=value, **extra))
        for loc, values in acc.items() for seed, value in enumerate(values)])
    study_obj.set_user_attr(SPEC_ATTR, study.to_dict())
    return tables.summarize(study_obj)


def welch(a: str, b: str) -> float:
    return float(stats.ttest_ind(ACC[a], ACC[b], equal_var=False).pvalue)


def one(tmp_path: Path, raw: dict, acc: dict | None = None, **extra: object) -> claims.Verdict:
    """The verdict of a report with this one claim (no correction across claims)."""
    summary = summary_for(tmp_path, study_with(raw), acc, **extra)
    (verdict,) = verdicts.evaluate_all(summary)
    return verdict


BP = "dropout_location=before_pool: test_acc 91 ± 1 (n=3)"
BC = "dropout_location=before_conv: test_acc 90 ± 2 (n=3)"
NONE = "dropout_location=none: test_acc 82 ± 2 (n=3)"
# Seed advice past SEED_CAP (30) says why more seeds will not decide it, not a number to run.
CAPPED = ("at the observed spread, more than the 30 a study would run): the seed-to-seed "
          "spread is large against the difference at stake; a larger stated meaningful difference "
          "(the claim's margin), a longer run or a setting closer to the seed's would "
          "decide it")


# Verdict rules, changed from the old engine: "best" within noise of the runner-up was
# "supported" (now inconclusive, naming the ties); "similar" was supported by p >= 0.05 (now a
# TOST with a margin); at_chance compared the mean alone (now the 90% CI, TOST).
@pytest.mark.parametrize("raw, verdict, evidence", [
    (claim("best", "before_pool"), "inconclusive",
     f"best by mean: {BP}; not significantly different from dropout_location=before_conv, "
     "dropout_location=input (Holm over 4 Welch tests, adjusted p ≥ 0.05 or no test; not a "
     "tie); inconclusive: more seeds would not "
     "detect the observed 1-point difference to dropout_location=before_conv in practice (≈ 41 "
     "per configuration " + CAPPED),
    # Behind the best by mean: the seeds that decide it are those that would show the leader
    # really ahead (not the closest rival's).
    (claim("best", "before_conv"), "inconclusive",
     f"{BC}; best by mean: {BP}; not significantly different from {BP.split(':')[0]}, "
     "dropout_location=input (Holm over 4 Welch tests, adjusted p ≥ 0.05 or no test; not a "
     "tie); inconclusive: more seeds would not show whether dropout_location=before_pool is "
     "really ahead (the observed 1-point difference; that would make it not supported) in "
     "practice (≈ 41 per configuration " + CAPPED),
    (claim("best", "none"), "not supported",
     f"{NONE}; significantly worse than dropout_location=before_pool, "
     f"dropout_location=before_conv (best: {BP}; Holm over 4 Welch tests, adjusted p = 0.0129)"),
    (claim("better", "before_pool", "none"), "supported",
     f"{BP} vs {NONE}; Welch p = 0.00646 (significantly better)"),
    (claim("better", "none", "before_pool"), "not supported",
     f"{NONE} vs {BP}; Welch p = 0.00646 (significantly worse)"),
    (claim("better", "before_pool", "before_conv"), "inconclusive",
     f"{BP} vs {BC}; Welch p = 0.496 (not significant); difference +1 [90% CI -2.06, +4.06], "
     "smallest that matters ±1 point; TOST p = 0.5; inconclusive: more seeds would not detect "
     "the observed 1-point difference in practice (≈ 41 per configuration " + CAPPED),
    (claim("better", "before_pool", "before_conv", margin=5), "not supported",
     f"{BP} vs {BC}; Welch p = 0.496 (not significant); difference +1 [90% CI -2.06, +4.06], "
     "smallest that matters ±5 points; TOST p = 0.0274 (no meaningful difference: the interval "
     "lies inside the margin)"),
    (claim("better", "before_pool", "before_conv", margin=3), "inconclusive",
     f"{BP} vs {BC}; Welch p = 0.496 (not significant); difference +1 [90% CI -2.06, +4.06], "
     "smallest that matters ±3 points; TOST p = 0.11; inconclusive: ≈ 9 seeds per "
     "configuration would show the observed 1-point difference is below the margin (80% "
     "power, α = 0.05)"),
    (claim("better", "input", "none"), "inconclusive",
     f"dropout_location=input: test_acc 85 (n=1) vs {NONE}; no test (n < 2); inconclusive: at "
     "least 2 seeds per configuration are needed for a test"),
    (claim("similar", "before_pool", "before_conv", margin=3), "inconclusive",
     f"{BP} vs {BC}; Welch p = 0.496; difference +1 [90% CI -2.06, +4.06], margin ±3 points; "
     "TOST p = 0.11; inconclusive: ≈ 9 seeds per configuration would show equivalence within "
     "±3 at the observed 1-point difference (80% power, α = 0.05)"),
    (claim("similar", "before_pool", "before_conv", margin=8), "supported",
     f"{BP} vs {BC}; Welch p = 0.496; difference +1 [90% CI -2.06, +4.06], margin ±8 points; "
     "TOST p = 0.00648 (equivalent within ±8)"),
    (claim("similar", "none", "before_pool"), "not supported",
     f"{NONE} vs {BP}; Welch p = 0.00646; difference -9 [90% CI -12.1, -5.94], margin ±1 "
     "point; one-sided p = 0.00449 (differs by more than the margin)"),
    (claim("similar", "before_conv", "none", margin=7), "inconclusive",
     f"{BC} vs {NONE}; Welch p = 0.00805; difference +8 [90% CI +4.52, +11.5], margin ±7 "
     "points; TOST p = 0.713; inconclusive: no number of seeds would show equivalence (the "
     "observed 8-point difference exceeds the margin); more seeds would not show it exceeds the "
     "margin in practice (≈ 51 per configuration " + CAPPED),
    (claim("at_chance", "before_fc"), "supported",
     "dropout_location=before_fc: test_acc 10 ± 1 (n=3); chance 10% ± 5 points; difference +0 "
     "[90% CI -1.69, +1.69], margin ±5 points; TOST p = 0.00654 (equivalent within ±5)"),
    (claim("at_chance", "none"), "not supported",
     f"{NONE}; chance 10% ± 5 points; difference +72 [90% CI +68.6, +75.4], margin ±5 points; "
     "one-sided p < 0.001 (differs by more than the margin)"),
    (claim("at_chance", "before_fc", tolerance=0.5, metric="val_acc"), "inconclusive",
     "dropout_location=before_fc: val_acc 10 ± 1 (n=3); chance 10% ± 0.5 points; difference +0 "
     "[90% CI -1.69, +1.69], margin ±0.5 points; TOST p = 0.239; inconclusive: more seeds "
     "would not show equivalence within ±0.5 at the observed 0-point difference in practice "
     "(≈ 36 " + CAPPED),
])
def test_each_rule_on_a_constructed_table(tmp_path: Path, raw: dict, verdict: str,
                                          evidence: str) -> None:
    v = one(tmp_path, raw)
    assert (v.verdict, v.evidence) == (verdict, evidence)


def test_the_p_values_are_welchs(tmp_path: Path) -> None:
    v = one(tmp_path, claim("better", "before_pool", "none"))
    assert v.p_value == pytest.approx(welch("before_pool", "none"))
    assert welch("before_pool", "before_conv") > 0.05 > welch("none", "before_pool")


def test_a_significantly_best_configuration_is_supported(tmp_path: Path) -> None:
    acc = {**ACC, "before_pool": (95.0, 96.0, 97.0), "input": (50.0, 51.0, 52.0)}
    v = one(tmp_path, claim("best", "before_pool"), acc)
    assert v.verdict == "supported"
    assert v.evidence == (
        "best by mean: dropout_location=before_pool: test_acc 96 ± 1 (n=3); runner-up "
        f"{BC}; significantly better than all 4 others (Holm over 4 Welch tests, largest "
        "adjusted p = 0.0196)")
    raw = [float(stats.ttest_ind(acc["before_pool"], acc[k], equal_var=False).pvalue)
           for k in ("before_conv", "none", "before_fc", "input")]
    assert v.p_value == pytest.approx(max(min(1, (4 - i) * p)
                                          for i, p in enumerate(sorted(raw))))


def test_a_best_shown_tied_with_another_is_not_the_best(tmp_path: Path) -> None:
    """mnist/l2: lambda 0.1 "is best" ties lambda 0 within a point: no number of seeds makes it
    the best, so the claim is decided, not left inconclusive for a million seeds."""
    acc = {**ACC, "before_pool": (95.0, 95.1, 95.2), "before_conv": (95.05, 95.15, 95.25),
           "input": (50.0, 51.0, 52.0)}
    v = one(tmp_path, claim("best", "before_conv"), acc)
    assert v.verdict == "not supported"
    assert v.evidence.endswith(
        "no meaningful difference from dropout_location=before_pool: within ±1 point (TOST, "
        "Holm over the 1 tied, adjusted p < 0.001), so it is not the best")
    # 2 points behind at the same spread: beaten, not tied; spread wide: neither shown.
    acc["before_conv"] = (93.0, 93.1, 93.2)
    (tmp_path / "apart").mkdir()
    assert one(tmp_path / "apart", claim("best", "before_conv"), acc).verdict == "not supported"
    acc["before_conv"] = (94.0, 95.5, 97.0)
    (tmp_path / "wide").mkdir()
    assert one(tmp_path / "wide", claim("best", "before_conv"), acc).verdict == "inconclusive"


def test_holm_across_the_claims_of_a_report(tmp_path: Path) -> None:
    # Alone each is decided (p 0.00646, 0.0129); together Holm multiplies the smaller by 2:
    # 0.0129 stays below 0.05; adding a third (an inconclusive claim, p 0.496) keeps both.
    study = study_with(claim("better", "before_pool", "none"), claim("best", "none"),
                       claim("better", "before_pool", "before_conv"))
    judged = verdicts.evaluate_all(summary_for(tmp_path, study))
    assert [v.verdict for v in judged] == ["supported", "not supported", "inconclusive"]
    assert [round(v.p_adjusted, 4) for v in judged] == [0.0194, 0.0258, 0.4961]
    assert judged[0].evidence.endswith("(significantly better); Holm-adjusted p = 0.0194")
    (tmp_path / "b").mkdir()
    # Seven copies of one claim (Welch p 0.00805): 7 x 0.00805 = 0.0563 is not below 0.05.
    study = study_with(*[claim("better", "before_conv", "none")] * 7)
    judged = verdicts.evaluate_all(summary_for(tmp_path / "b", study))
    assert {v.verdict for v in judged} == {"inconclusive"}
    assert judged[0].evidence == (
        f"{BC} vs {NONE}; Welch p = 0.00805 (significantly better); supported alone, but not "
        "after Holm over the report's 7 tests (adjusted p = 0.0563); inconclusive: ≈ 4 seeds "
        "per configuration would decide it at α/7 (80% power, α = 0.00714)")


def test_holm_on_a_hand_made_set() -> None:
    from hpo.reporting import stats as st

    assert st.holm([0.01, 0.04, 0.03, float("nan")]) == pytest.approx(
        [0.03, 0.06, 0.06, float("nan")], nan_ok=True)
    assert st.holm([0.5, 0.001]) == pytest.approx([0.5, 0.002])
    assert st.holm([]) == []


def test_seed_counts_match_the_textbook_power_values() -> None:
    from hpo.reporting import stats as st

    # Two-sided two-sample t-test, alpha 0.05, 80% power (G*Power, R's power.t.test).
    assert st.seeds_to_detect(1.0, 1.0, 0.05) == 17
    assert st.seeds_to_detect(0.5, 1.0, 0.05) == 64
    assert st.seeds_to_detect(2.4, 2.4, 0.05) == 17  # d is the difference over the sd
    assert st.seeds_to_detect(0.0, 1.0, 0.05) is None
    assert st.power_difference(1.0, 17, 0.05) == pytest.approx(0.807, abs=0.001)
    assert st.power_difference(1.0, 16, 0.05) < 0.8
    assert st.seeds_for_equivalence(2.0, 1.0, 1.0, 0.05) is None  # outside the margin


def test_not_exercised_and_not_applicable(tmp_path: Path) -> None:
    v = one(tmp_path, claim("better", "before_pool", "none", requires_stop="loss_threshold"))
    assert v.verdict == "not exercised"
    assert v.evidence == ("no run of dropout_location=before_pool or dropout_location=none "
                          "stopped for loss_threshold (6 runs stopped: completed ×6)")
    (tmp_path / "b").mkdir()
    v = one(tmp_path / "b", claim("better", "before_pool", "none", requires_stop="completed"))
    assert v.verdict == "supported"
    (tmp_path / "c").mkdir()
    same = {**ACC, "before_conv": ACC["before_pool"]}
    v = one(tmp_path / "c", claim("similar", "before_pool", "before_conv"), same)
    assert v.verdict == "not exercised"
    assert v.evidence == ("both sides are the same runs: dropout_location=before_pool and "
                          "dropout_location=before_conv have identical test_acc and losses and "
                          "accuracies on every seed (3 seeds)")
    (tmp_path / "d").mkdir()
    v = one(tmp_path / "d", claim("best", "before_pool",
                                  applies_if={"model.pretrained": "imagenet"}))
    assert v.verdict == "not applicable"
    assert v.evidence == ("the claim needs model.pretrained = imagenet; this study ran "
                          "dropout_location=before_pool with model.pretrained = none")
    assert math.isnan(v.p_value)


def test_time_and_epoch_metrics(tmp_path: Path) -> None:
    # wall_time: lower is better; 5 s everywhere -> zero variance, equal means, p = 1.
    v = one(tmp_path, claim("better", "before_pool", "none", metric="wall_time"))
    assert v.verdict == "inconclusive"
    assert v.evidence.startswith(
        "dropout_location=before_pool: wall_time 5 ± 0 (n=3, every run the same) vs ")
    assert v.evidence.endswith("Welch p = 1 (not significant); inconclusive: more seeds would "
                               "not detect the observed 0 s difference in practice (more than "
                               "1,000,000 " + CAPPED)
    assert claims.lower_is_better("epochs_to_target") and not claims.lower_is_better("val_acc")
    # Read 0.05 either side of theta_final; the far points (0.5, 1.5) do not count.
    flat = {"alpha": [0.5, 0.95, 1.0, 1.05, 1.5], "train_loss": [9.0, 0.5, 0.1, 0.9, 9.0]}
    assert claims.sharpness(flat) == pytest.approx(0.6)
    assert math.isnan(claims.sharpness({"alpha": [1.0], "train_loss": [0.1]}))
    # Relative to the depth it ends at: the same shape at a 100x higher loss reads the same.
    from hpo.reporting.claim_sides import relative_sharpness

    deep = {"alpha": [0.95, 1.0, 1.05], "train_loss": [50.0, 10.0, 90.0]}
    assert claims.sharpness(deep) == pytest.approx(60.0)
    assert relative_sharpness(flat) == pytest.approx(6.0)
    assert relative_sharpness(deep) == pytest.approx(6.0)
    assert math.isnan(relative_sharpness({"alpha": [0.95, 1.0, 1.05], "train_loss": [1, 0, 1]}))


def test_sharpness_is_compared_as_a_ratio() -> None:
    """mnist/flatness: every shuffled-label seed 6-130x sharper than every real-label one,
    yet Welch on the raw values (one wild seed's spread) gave p = 0.37. On the logarithms the
    ratio of geometric means is tested; a value that is not positive falls back to the raw
    difference."""
    import numpy as np

    from hpo.reporting.claim_sides import Side

    c = spec.Claim("real labels flatter", "better", ((LOC, "a"),), ((LOC, "b"),), "sharpness",
                   5.0, None, None, ())
    real = [5.0e-5, 5.2e-5, 4.9e-5, 5.1e-5]
    shuffled = [3.0e-4, 6.5e-3, 9.0e-4, 2.0e-3]
    def side(name, xs):
        return Side({"config": name, "n": len(xs)}, np.array(xs), list(range(4)))
    v = claims._better(c, side("a", real), side("b", shuffled), "sharpness", 0.05)
    assert v.verdict == "supported"
    assert v.evidence == (
        "a: sharpness 5.05e-05 ± 1.29e-06 (n=4) vs b: sharpness 0.002425 ± 0.00281 (n=4); "
        "compared as a ratio (on the log scale): geometric means 5.049e-05 vs 0.001369, "
        "a / b = 0.0369× [95% CI 0.00468×, 0.291×]; Welch p on logs = 0.0147 "
        "(significantly better)")  # scipy.stats.ttest_ind(log a, log b, equal_var=False)
    raw = claims._better(c, side("a", real), side("b", [*shuffled[:3], -1e-6]), "sharpness",
                         0.05)
    assert raw.verdict == "inconclusive" and "Welch p = " in raw.evidence


def fresh(tmp_path: Path, name: str) -> Path:
    (tmp_path / name).mkdir()
    return tmp_path / name


def test_loss_fall_is_the_per_step_curve_s_first_point_against_its_last() -> None:
    from hpo.reporting.claim_sides import loss_fall

    assert loss_fall({"step": [10, 20, 30], "loss": [2.0, 1.9, 1.5]}) == pytest.approx(25.0)
    assert loss_fall({"step": [10, 20], "loss": [2.0, 2.2]}) == pytest.approx(-10.0)
    for no_curve in (None, {"step": [10], "loss": [2.0]}, {"loss": [0.0, 1.0]},
                     {"loss": [2.0, float("nan")]}):
        assert math.isnan(loss_fall(no_curve))


def test_val_loss_rise_is_the_last_validation_loss_over_the_lowest() -> None:
    from hpo.reporting.claim_sides import val_loss_rise

    assert val_loss_rise([{"val_loss": x} for x in (1.0, 0.7, 0.9, 1.1)]) == pytest.approx(0.4)
    assert val_loss_rise([{"val_loss": 1.0}, {"val_loss": 0.5}]) == 0.0
    assert math.isnan(val_loss_rise([{"val_loss": None}]))


def test_val_acc_drop_is_the_highest_validation_accuracy_over_the_last() -> None:
    from hpo.reporting.claim_sides import val_acc_drop
    from hpo.schema import lower_is_better

    assert val_acc_drop([{"val_acc": x} for x in (60.0, 74.9, 73.5, 73.8)]) == pytest.approx(1.1)
    assert val_acc_drop([{"val_acc": 60.0}, {"val_acc": 70.0}]) == 0.0  # still rising
    assert math.isnan(val_acc_drop([{"val_acc": None}]))
    assert lower_is_better("val_acc_drop") and lower_is_better("val_loss_rise")


# test_acc per seed for none: 80, 82, 84 (mean 82, sd 2); p from scipy.stats.ttest_1samp.
@pytest.mark.parametrize("kind, beyond, short, near, p, other", [
    ("above", 70, 90, 80, "0.00913", "below"),
    ("below", 90, 70, 84, "0.0202", "above"),  # below mirrors above
])
def test_above_and_below_test_the_mean_against_a_value(tmp_path: Path, kind: str, beyond: int,
                                                       short: int, near: int, p: str,
                                                       other: str) -> None:
    v = one(fresh(tmp_path, "0"), claim(kind, "none", metric="test_acc", value=beyond))
    # The mean's 95% CI, 82 ± 4.303 · 2 / √3: which thresholds would give the same verdict.
    interval = ("the mean's 95% CI [77.03, 86.97]: significantly above any threshold below "
                "77.03, below any above 86.97")
    assert (v.verdict, v.evidence) == (
        "supported", f"dropout_location=none: test_acc 82 ± 2 (n=3) against {beyond}; t-test "
        f"p = {p} (significantly {kind}); {interval}")
    v = one(fresh(tmp_path, "1"), claim(kind, "none", metric="test_acc", value=short))
    assert v.verdict == "not supported"
    assert v.evidence.endswith(f"(significantly {other}); {interval}")
    v = one(fresh(tmp_path, "2"), claim(kind, "none", metric="test_acc", value=near))
    assert v.verdict == "inconclusive"
    assert v.evidence.endswith(f"t-test p = 0.225 (not significant); {interval}; inconclusive: "
                               f"≈ 10 seeds would show the mean is {kind} {near} (80% power, "
                               "α = 0.05)")


def test_spread_compares_two_metrics_between_seed_spreads() -> None:
    import numpy as np

    from hpo.reporting.claim_sides import Side

    def verdict(a: list[float], b: list[float], seeds: list[int] | None = None) -> claims.Verdict:
        seeds = seeds or list(range(len(a)))
        spread = spec.Claim("x", "spread", (), metric="early_train_loss",
                            than_metric="test_acc")
        row = {"config": "base configuration"}
        return claim_kinds.judge_spread(spread, Side(row, np.array(a), seeds),
                                        Side(row, np.array(b), list(range(len(b)))),
                                        "early_train_loss", 0.05)

    wide = [1.0, 2.0, 1.5, 0.5, 2.5, 1.2, 1.8, 0.8]  # CV ~0.45
    narrow = [97.0, 97.5, 96.5, 97.2, 96.8, 97.1, 96.9, 97.3]  # CV ~0.003
    v = verdict(wide, narrow)
    assert v.verdict == "supported"
    assert v.evidence == (
        "base configuration: between-seed spread (std / |mean|) of early_train_loss against "
        "test_acc over 8 seeds: 147 times as large [95% bootstrap interval 70.2, 339]; "
        "bootstrap p < 0.001")
    assert verdict(narrow, wide).verdict == "not supported"
    same = verdict(wide, [2 * x for x in wide])  # the same CV: the ratio is exactly 1
    assert same.verdict == "inconclusive" and " 1 times as large" in same.evidence
    assert verdict(wide[:2], narrow[:2]).evidence.endswith(
        "over 2 seeds; inconclusive: at least 3 seeds with both metrics are needed")
    # Paired by seed: seeds missing from one metric do not count.
    assert "over 3 seeds" in verdict(wide[:3], narrow, seeds=[0, 1, 2]).evidence
    assert verdict(wide, [97.0] * 8).evidence.endswith("inconclusive: a spread is zero or a "
                                                      "mean is 0")


def test_an_absolute_spread_compares_plain_standard_deviations() -> None:
    """R0's early loss (~0.54) varies 3x more than its final loss (~0.1) between seeds, yet
    relative to each level (std / mean) less: the absolute scale reads R0's std band."""
    import numpy as np

    from hpo.reporting.claim_sides import Side

    early = [0.50, 0.60, 0.45, 0.58, 0.52, 0.62, 0.48, 0.55]  # std 0.060, CV 0.11
    final = [0.09, 0.11, 0.08, 0.12, 0.10, 0.10, 0.09, 0.11]  # std 0.013, CV 0.13
    row = {"config": "base configuration"}
    seeds = list(range(8))

    def verdict(scale: str) -> claims.Verdict:
        claim = spec.Claim("x", "spread", (), metric="early_train_loss",
                           than_metric="train_loss", scale=scale)
        return claim_kinds.judge_spread(claim, Side(row, np.array(early), seeds),
                                        Side(row, np.array(final), seeds),
                                        "early_train_loss", 0.05)

    absolute = verdict("absolute")
    assert absolute.verdict == "supported"
    assert absolute.evidence == (
        "base configuration: between-seed spread (std) of early_train_loss against train_loss "
        "over 8 seeds: 4.6 times as large [95% bootstrap interval 3.12, 7.81] (std 0.0602 "
        "against 0.0131); bootstrap p < 0.001")
    assert verdict("relative").verdict == "inconclusive"  # 0.855 times, interval 0.597-1.38


def test_the_curve_metrics_read_the_start_and_the_end_of_a_run() -> None:
    from hpo.reporting.claim_sides import early_mean, late_loss_fall, trial_value

    steps = {"step": [10, 20, 30, 40], "loss": [2.0, 1.0, 0.5, None], "acc": [10, 30, 50, 70]}
    assert early_mean(steps, "loss", 20) == pytest.approx(1.5)
    assert early_mean(steps, "acc", 1000) == pytest.approx(40.0)
    assert math.isnan(early_mean(None, "loss", 100))
    record = {"steps": steps, "history": [{"train_loss": x} for x in (2.0, 1.0, 0.8, 0.6)]}
    assert trial_value(record, "early_train_acc", 0, early_steps=30) == pytest.approx(30.0)
    # The last epoch (0.6) against the one two before it (1.0): the loss still fell 40%.
    assert trial_value(record, "late_loss_fall", 0) == pytest.approx(40.0)
    assert late_loss_fall([{"train_loss": 1.0}, {"train_loss": 1.0}, {"train_loss": 1.0}]) == 0
    assert math.isnan(late_loss_fall([{"train_loss": 1.0}, {"train_loss": 0.5}]))
    assert math.isnan(late_loss_fall([{"train_loss": None}] + [{"train_loss": 1.0}] * 2))
    assert claims.lower_is_better("late_loss_fall") and claims.lower_is_better("early_train_loss")


def test_readme_has_a_claims_section(tmp_path: Path) -> None:
    study = study_with(claim("best", "before_pool"), claim("at_chance", "before_fc"))
    summary = summary_for(tmp_path, study)
    text = write.readme(summary, [], ("md",))
    assert "## Claims" in text
    assert "| best before_pool | best | test_acc | **inconclusive** | best by mean:" in text
    assert "| at_chance before_fc | at_chance | test_acc | **supported** |" in text
    (tmp_path / "b").mkdir()
    assert "## Claims" not in write.readme(summary_for(tmp_path / "b", study_with()), [],
                                           ("md",))


def test_claims_survive_the_store_and_the_note() -> None:
    study = study_with(claim("better", "before_pool", "none", metric="val_acc"),
                       claim("at_chance", "before_fc"))
    back = spec.from_dict(study.to_dict())
    assert back.claims == study.claims
    rich = study_with(claim("similar", "none", "input", margin=2.5, requires_stop="patience",
                            applies_if={"model.pretrained": "none"}))
    assert spec.from_dict(rich.to_dict()).claims == rich.claims
    assert rich.claims[0].margin == 2.5 and rich.claims[0].requires_stop == "patience"
    assert back.claims[1].tolerance == 5.0 and back.claims[0].metric == "val_acc"
    import tomllib

    from hpo import dashboard

    raw = tomllib.loads(dashboard.spec_toml(study.to_dict()))
    assert raw["claims"][0]["than"] == {LOC: "none"}
    # Claims are read-off settings: they do not change what a trial computes.
    assert "claims" not in study.identity()


@pytest.mark.parametrize("bad, message", [
    ({"text": "x", "kind": "best"}, "s.toml: claims[0]: config is required"),
    ({"kind": "best", "config": {LOC: "none"}}, "s.toml: claims[0]: text is required"),
    ({"text": " ", "kind": "best", "config": {LOC: "none"}},
     "s.toml: claims[0].text must be a non-empty string, got ' '"),
    ({"text": "x", "kind": "worst", "config": {LOC: "none"}},
     "s.toml: claims[0].kind must be one of 'best', 'better', 'similar', 'at_chance', "
     "'above', 'below', 'spread', got 'worst'"),
    ({"text": "x", "kind": "best", "config": {LOC: "none"}, "why": 1},
     "s.toml: claims[0]: unknown field 'why'; allowed: applies_if, config, kind, margin, "
     "metric, requires_stop, scale, text, than, than_metric, tolerance, value"),
    ({"text": "x", "kind": "best", "config": {LOC: "none"}, "metric": "acc"},
     "s.toml: claims[0].metric must be one of val_acc, val_loss, test_acc, test_loss, "
     "train_acc, train_loss, wall_time, cpu_time, epoch_seconds, epochs_run, epochs_to_target, "
     "sharpness, relative_sharpness, early_train_loss, early_train_acc, loss_fall, "
     "late_loss_fall, val_loss_rise, val_acc_drop, got 'acc'"),
    ({"text": "x", "kind": "at_chance", "config": {LOC: "none"}, "metric": "val_loss"},
     "s.toml: claims[0].metric must be an accuracy (train_acc, val_acc, test_acc) for kind "
     "'at_chance', got 'val_loss'"),
    ({"text": "x", "kind": "better", "config": {LOC: "none"}},
     "s.toml: claims[0]: kind 'better' needs than (the configuration compared with)"),
    ({"text": "x", "kind": "best", "config": {LOC: "none"}, "than": {LOC: "input"}},
     "s.toml: claims[0].than is only for kinds 'better' and 'similar', got kind 'best'"),
    ({"text": "x", "kind": "best", "config": {LOC: "none"}, "tolerance": 2},
     "s.toml: claims[0].tolerance is only for kind 'at_chance', got kind 'best'"),
    ({"text": "x", "kind": "at_chance", "config": {LOC: "none"}, "tolerance": 0},
     "s.toml: claims[0].tolerance must be a number > 0 and <= 100 (percentage points), got 0"),
    ({"text": "x", "kind": "best", "config": {}},
     "s.toml: claims[0].config must be a non-empty table of space keys and values, got {}"),
    ({"text": "x", "kind": "best", "config": {"train.lr": 0.1}},
     "s.toml: claims[0].config: 'train.lr' is not a key of [space]; use one of "
     "model.dropout_location"),
    ({"text": "x", "kind": "best", "config": {LOC: "middle"}},
     "s.toml: claims[0].config.model.dropout_location must be one of 'none', 'input', "
     "'before_conv', 'after_conv', 'before_pool', 'before_fc', 'between_fc', got 'middle'"),
    ({"text": "x", "kind": "best", "config": {LOC: "after_conv"}},
     "s.toml: claims[0].config must select exactly one configuration of the grid, got 0 for "
     "{'model.dropout_location': 'after_conv'}; name more keys of [space]"),
    ({"text": "x", "kind": "similar", "config": {LOC: "none"}, "than": {LOC: "none"}},
     "s.toml: claims[0]: than must differ from config, got {'model.dropout_location': "
     "'none'} twice"),
    ("best", "s.toml: claims[0] must be a table with text, kind and config, got 'best'"),
    ({"text": "x", "kind": "best", "config": {LOC: "none"}, "margin": 1},
     "s.toml: claims[0].margin is only for kinds 'similar' and 'better', got kind 'best'"),
    ({"text": "x", "kind": "similar", "config": {LOC: "none"}, "than": {LOC: "input"},
      "margin": 0}, "s.toml: claims[0].margin must be a number > 0, got 0"),
    ({"text": "x", "kind": "similar", "config": {LOC: "none"}, "than": {LOC: "input"},
      "metric": "val_loss"},
     "s.toml: claims[0]: kind 'similar' on 'val_loss' needs margin (the largest difference in "
     "val_loss that counts as the same)"),
    ({"text": "x", "kind": "best", "config": {LOC: "none"}, "requires_stop": "early"},
     "s.toml: claims[0].requires_stop must be one of 'completed', 'patience', "
     "'loss_threshold', 'diverged', 'pruned', got 'early'"),
    ({"text": "x", "kind": "best", "config": {LOC: "none"},
      "applies_if": {"model.pretrain": "imagenet"}},
     "s.toml: claims[0].applies_if: unknown key 'model.pretrain'; did you mean "
     "'model.pretrained'? (`hpo keys` lists every key)"),
    ({"text": "x", "kind": "best", "config": {LOC: "none"}, "applies_if": {"model.pretrained":
                                                                             "x"}},
     "s.toml: claims[0].applies_if.model.pretrained must be one of 'none', 'imagenet', got 'x'"),
    ({"text": "x", "kind": "best", "config": {LOC: "none"}, "applies_if": 3},
     "s.toml: claims[0].applies_if must be a table of key = value, got 3"),
    ({"text": "x", "kind": "best", "config": {LOC: "none"}, "metric": "epochs_to_target"},
     "s.toml: claims[0].metric 'epochs_to_target' needs target_acc > 0 (the validation "
     "accuracy to reach), got target_acc = 0"),
    ({"text": "x", "kind": "best", "config": {LOC: "none"}, "metric": "sharpness"},
     "s.toml: claims[0].metric 'sharpness' needs analysis = 'flatness', got 'table'"),
    ({"text": "x", "kind": "best", "config": {LOC: "none"}, "metric": "early_train_loss"},
     "s.toml: claims[0].metric 'early_train_loss' reads the per-step training curve: set "
     "train.log_every (minibatches per point), got 0"),
    ({"text": "x", "kind": "below", "config": {LOC: "none"}, "metric": "loss_fall",
      "value": 10},
     "s.toml: claims[0].metric 'loss_fall' reads the per-step training curve: set "
     "train.log_every (minibatches per point), got 0"),
    ({"text": "x", "kind": "above", "config": {LOC: "none"}},
     "s.toml: claims[0]: kind 'above' needs value, a finite number (the threshold the mean "
     "must exceed), got None"),
    ({"text": "x", "kind": "below", "config": {LOC: "none"}, "value": "2"},
     "s.toml: claims[0]: kind 'below' needs value, a finite number (the threshold the mean "
     "must stay under), got '2'"),
    ({"text": "x", "kind": "spread", "config": {LOC: "none"}, "metric": "test_acc"},
     "s.toml: claims[0]: kind 'spread' needs metric and than_metric, two different metrics of "
     + ", ".join(spec.CLAIM_METRICS) + "; got 'test_acc' and None"),
    ({"text": "x", "kind": "best", "config": {LOC: "none"}, "than_metric": "test_acc"},
     "s.toml: claims[0].than_metric is only for kind 'spread', got kind 'best'"),
    ({"text": "x", "kind": "best", "config": {LOC: "none"}, "value": 3},
     "s.toml: claims[0].value is only for kinds 'above' and 'below', got kind 'best'"),
    ({"text": "x", "kind": "best", "config": {LOC: "none"}, "scale": "absolute"},
     "s.toml: claims[0].scale is only for kind 'spread', got kind 'best'"),
    ({"text": "x", "kind": "spread", "config": {LOC: "none"}, "metric": "train_loss",
      "than_metric": "val_loss", "scale": "log"},
     "s.toml: claims[0].scale must be one of 'relative', 'absolute', got 'log'"),
    ({"text": "x", "kind": "spread", "config": {LOC: "none"}, "metric": "train_loss",
      "than_metric": "test_acc", "scale": "absolute"},
     "s.toml: claims[0]: scale 'absolute' compares two standard deviations, so both metrics "
     "need the same units (two losses or two accuracies); got 'train_loss' and 'test_acc'"),
    ({"text": "x", "kind": "best", "config": {LOC: "none"}, "metric": "late_loss_fall"},
     "s.toml: claims[0].metric 'late_loss_fall' compares the last epoch with the one two "
     "before it: needs epochs >= 3, got 2"),
])
def test_every_bad_claim_field_is_one_line(bad: object, message: str) -> None:
    with pytest.raises(SpecError) as info:
        study_with(bad)  # type: ignore[arg-type]
    assert str(info.value) == message


def test_claims_must_be_an_array() -> None:
    raw = copy.deepcopy(RAW)
    raw["claims"] = {"text": "x"}
    with pytest.raises(SpecError, match=r"^s.toml: claims must be an array of tables"):
        spec.validate(raw, "s.toml")


def test_every_shipped_claim_selects_its_configurations() -> None:
    with_claims = {name for name, path in spec.shipped_studies().items()
                   if spec.load(str(path)).claims}
    assert {"dropout_location", "dropout_rate", "learning_rate", "weight_decay", "activation",
            "batch_norm", "momentum", "optimizer", "full_batch", "l2", "kernel", "cnn_vs_mlp",
            "extra_fc", "early_stopping", "label_shuffle", "flatness"} <= with_claims


# ---------------------------------------------------------------------------------------------
# Time per epoch and epochs to a target accuracy


def test_time_per_epoch_and_epochs_to_target(tmp_path: Path) -> None:
    raw = {"name": "cm", "repeats": 2, "target_acc": 50, "model": {"channels": [4, 4],
                                                                   "padding": 1},
           "space": {"train.lr": [0.01, 0.1]}}
    study = spec.validate(raw, "t")
    memory = optuna.storages.InMemoryStorage()
    study_obj = synthetic.create_study(memory, study)
    # synthetic histories climb linearly from 10% to the final val_acc over 10 epochs:
    # final 90 -> epoch e has 10 + 8e: >= 50 first at e = 5; final 60 -> 10 + 5e: e = 8;
    # final 40 never reaches 50.
    rec = synthetic.record
    synthetic.add(study_obj, [
        synthetic.trial(study, {"train.lr": 0.01}, rec(0, test_acc=90.0)),
        synthetic.trial(study, {"train.lr": 0.01}, rec(1, test_acc=60.0)),
        synthetic.trial(study, {"train.lr": 0.1}, rec(0, test_acc=40.0)),
        synthetic.trial(study, {"train.lr": 0.1}, rec(1, test_acc=90.0)),
    ])
    summary = tables.summarize(store.load_study(memory, "cm"))
    t = summary.table.set_index("config")
    assert t.loc["lr=0.01", "epochs_to_target_mean"] == pytest.approx(6.5)
    assert t.loc["lr=0.01", "reached_target"] == 2
    assert t.loc["lr=0.1", "epochs_to_target_mean"] == pytest.approx(5.0)
    assert t.loc["lr=0.1", "reached_target"] == 1
    assert t.loc["lr=0.01", "epoch_seconds_mean"] == pytest.approx(0.5)
    shown = render.display_table(summary)
    assert list(shown["epochs to 50% val"]) == ["6.5 (2 of 2)", "5 (1 of 2)"]
    assert list(shown["wall time/epoch (s)"]) == ["0.5", "0.5"]
    assert tables.epochs_to_target([{"epoch": 1, "val_acc": 49.9}], 50) != 1
    assert tables.epoch_seconds([{"seconds": 1.0}, {"seconds": None}, {"seconds": 2.0}]) == 1.5


def test_no_target_no_column(tmp_path: Path) -> None:
    study = study_with()
    summary = summary_for(tmp_path, study)
    assert "epochs_to_target_mean" not in summary.table
    assert not any(c.startswith("epochs to") for c in render.display_table(summary).columns)


def test_a_claim_is_judged_within_the_closest_reading(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from hpo.reporting import readings

    raw = copy.deepcopy(RAW)
    raw["space"] = {LOC: ["none", "before_pool"], "train.lr": [0.01, 0.1]}
    study = spec.validate(raw, "s.toml")
    memory = optuna.storages.InMemoryStorage()
    study_obj = synthetic.create_study(memory, study)
    acc = {("before_pool", 0.01): (90.0, 91.0, 92.0), ("none", 0.01): (80.0, 82.0, 84.0),
           ("before_pool", 0.1): (80.0, 81.0, 82.0), ("none", 0.1): (80.0, 82.0, 84.0)}
    synthetic.add(study_obj, [
        synthetic.trial(study, {LOC: loc, "train.lr": lr}, synthetic.record(seed, test_acc=a))
        for (loc, lr), values in acc.items() for seed, a in enumerate(values)])
    summary = tables.summarize(store.load_study(memory, "cl"))
    # The claim names the dropout location only: train.lr is the reading left open.
    summary.study = dataclasses.replace(summary.study, claims=(spec.Claim(
        "before_pool beats none", "better", ((LOC, "before_pool"),), ((LOC, "none"),),
        "test_acc"),))
    monkeypatch.setattr(readings, "readings_of",
                        lambda s: [(("train.lr", 0.01),), (("train.lr", 0.1),)])
    monkeypatch.setattr(readings, "closest_reading", lambda s: (("train.lr", 0.01),))
    (v,) = verdicts.evaluate_all(summary)
    assert v.verdict == "supported"
    assert v.evidence == (
        "dropout_location=before_pool, lr=0.01: test_acc 91 ± 1 (n=3) vs dropout_location=none, "
        "lr=0.01: test_acc 82 ± 2 (n=3); Welch p = 0.00646 (significantly better) (judged "
        "within lr=0.01, the reading the published numbers single out; other readings differ "
        "(uncorrected): lr=0.1: inconclusive)")
    monkeypatch.setattr(readings, "closest_reading", lambda s: None)
    monkeypatch.setattr(readings, "readings_of", lambda s: [(("train.lr", 0.1),),
                                                            (("train.lr", 0.01),)])
    # No reading singled out: supported in one, inconclusive in the other -> inconclusive.
    (v,) = verdicts.evaluate_all(summary)
    assert v.verdict == "inconclusive"
    assert v.evidence == (
        "the readings the seed leaves open disagree (no published numbers single one out; "
        "uncorrected): lr=0.1: inconclusive (p = 0.496); lr=0.01: supported (p = 0.00646); "
        "inconclusive: in lr=0.1 the observed difference points to another verdict than the "
        "decided readings', so more seeds would more likely confirm the disagreement than "
        "decide it; a closer reproduction of the seed's setting would")
    assert math.isnan(v.p_value)
    assert v.by_reading == (("lr=0.1", "inconclusive"), ("lr=0.01", "supported"))
    # The same verdict in every reading: it stands, at the weakest reading's p-value.
    memory2 = optuna.storages.InMemoryStorage()
    study_obj = synthetic.create_study(memory2, study)
    acc[("before_pool", 0.1)] = (89.0, 91.0, 93.0)
    synthetic.add(study_obj, [
        synthetic.trial(study, {LOC: loc, "train.lr": lr}, synthetic.record(seed, test_acc=a))
        for (loc, lr), values in acc.items() for seed, a in enumerate(values)])
    summary2 = tables.summarize(store.load_study(memory2, "cl"))
    summary2.study = summary.study
    (v,) = verdicts.evaluate_all(summary2)
    assert v.verdict == "supported"
    assert v.evidence.endswith(
        "(the same verdict in every reading the seed leaves open, 2; shown: lr=0.01, the "
        "weakest)")
    assert v.p_value == pytest.approx(max(
        claims.evaluate(v.claim, summary2, 0.05, (("train.lr", r),)).p_value
        for r in (0.01, 0.1)))
    # Inconclusive in every reading, pointing to different verdicts (lr=0.01 +0: no meaningful
    # difference; lr=0.1 +3: better): more seeds would settle them apart, so no advice.
    summary3 = lr_readings_summary(tmp_path, "r3", {
        ("before_pool", 0.01): (80.0, 81.0, 85.0), ("none", 0.01): (80.0, 82.0, 84.0),
        ("before_pool", 0.1): (80.0, 86.0, 89.0), ("none", 0.1): (80.0, 82.0, 84.0)})
    (v,) = verdicts.evaluate_all(summary3)
    per = [claims.evaluate(v.claim, summary3, 0.05, (("train.lr", r),)) for r in (0.01, 0.1)]
    assert [p.verdict for p in per] == ["inconclusive", "inconclusive"]
    assert v.verdict == "inconclusive" and v.seeds_needed is None
    assert ("; inconclusive: the readings point to different verdicts (their observed "
            "differences fall on both sides of the smallest that matters), so more seeds would "
            "more likely settle them apart than decide it") in v.evidence
    # Both pointing the same way (+1.5, +3: better): the advice is the seeds that decide every
    # reading (the weakest by p is not the one that needs the most).
    summary4 = lr_readings_summary(tmp_path, "r4", {
        ("before_pool", 0.01): (81.5, 83.5, 85.5), ("none", 0.01): (80.0, 82.0, 84.0),
        ("before_pool", 0.1): (80.0, 86.0, 89.0), ("none", 0.1): (80.0, 82.0, 84.0)})
    (v,) = verdicts.evaluate_all(summary4)
    per = [claims.evaluate(v.claim, summary4, 0.05, (("train.lr", r),)) for r in (0.01, 0.1)]
    assert [p.verdict for p in per] == ["inconclusive", "inconclusive"]
    needs = [p.seeds_needed(0.05) for p in per]
    # Welch's advice per reading: 80% power at the pooled sd (2 both sides at lr=0.01).
    assert needs[0] == stats_mod.seeds_to_detect(1.5, 2.0, 0.05)
    assert v.seeds_needed(0.05) == max(needs)
    from hpo.reporting.claim_sides import seeds_text

    assert ("; inconclusive: " + seeds_text(max(needs), "decide it in every reading", 0.05)
            + " (the same verdict in every reading") in v.evidence


def test_a_claim_may_leave_a_reading_key_open() -> None:
    raw = copy.deepcopy(RAW)
    raw["space"] = {LOC: ["none", "before_pool"], "train.lr": [0.01, 0.1],
                    "model.dropout": [0.1, 0.2]}
    raw["readings"] = ["train.lr"]
    raw["claims"] = [claim("better", "before_pool", "none")]
    with pytest.raises(SpecError) as info:
        spec.validate(raw, "s.toml")
    assert str(info.value) == (
        "s.toml: claims[0].config must select exactly one configuration of the grid per reading "
        "(train.lr), got 2 for {'model.dropout_location': 'before_pool'}; name more keys of "
        "[space]")
    del raw["space"]["model.dropout"]
    assert spec.validate(raw, "s.toml").claims[0].config == ((LOC, "before_pool"),)


def test_the_seeds_estimate_is_never_the_seeds_already_run(tmp_path: Path) -> None:
    """Unequal spreads: the pooled-t power formula says 2 seeds would do, Welch's test (df ~ 1)
    did not decide with 2; the estimate says more than the seeds that were run."""
    study = study_with(claim("better", "before_pool", "none"))
    summary = summary_for(tmp_path, study, {"before_pool": (98.57, 98.60),
                                            "none": (93.9, 95.1)})
    (v,) = verdicts.evaluate_all(summary)
    assert v.verdict == "inconclusive"
    sd = stats_mod.pooled_std(np.array([98.57, 98.60]), np.array([93.9, 95.1]))
    assert stats_mod.seeds_to_detect(98.585 - 94.5, sd, 0.05) == 2
    assert v.seeds_needed(0.05) == 3
    assert "inconclusive: ≈ 3 seeds per configuration would detect the observed" in v.evidence


def test_disagreeing_readings_show_each_equivalence_difference_and_margin() -> None:
    from hpo.reporting.claims import Verdict
    from hpo.reporting.verdicts import reading_gist

    claim = spec.Claim(text="end close", kind="similar", config={"a": 1}, than={"a": 0},
                       margin=3.0)
    evidence = ("a=1: test_acc 84.7 ± 0.46 (n=2) vs a=0: test_acc 86.4 ± 1.84 (n=2); Welch p = "
                "0.4; difference -1.62 [90% CI -6.4, +3.2], margin ±3 points; one-sided p = 0.24")
    verdict = Verdict(claim, "test_acc", "inconclusive", evidence, p_value=0.238)
    assert reading_gist(verdict) == (
        " (p = 0.238, difference -1.62 [90% CI -6.4, +3.2], margin ±3 points)")
    better = dataclasses.replace(verdict, claim=dataclasses.replace(claim, kind="better"))
    assert reading_gist(better) == " (p = 0.238)"


def test_a_significant_difference_shown_below_the_margin_is_no_meaningful_difference(tmp_path):
    acc = {"none": (80.0, 80.1, 80.2), "before_pool": (80.5, 80.6, 80.7)}
    v = one(tmp_path, claim("better", "before_pool", "none"), acc)
    assert v.verdict == "not supported"  # real, but shown under the point that matters
    assert v.evidence.endswith("(significantly better, but by 0.5, less than the 1 point that "
                               "matters, shown smaller (TOST p = 0.0018): no meaningful "
                               "difference)")
    # Significant, below the margin by its estimate, but its interval reaches the margin.
    acc = {"none": (80.0, 80.3, 80.6), "before_pool": (80.8, 81.1, 81.4)}
    (tmp_path / "wide").mkdir()
    v = one(tmp_path / "wide", claim("better", "before_pool", "none"), acc)
    assert v.verdict == "supported"
    assert v.evidence.endswith("(significantly better, but by 0.8, less than the 1 point that "
                               "matters, not shown smaller: its 90% CI [+0.278, +1.32] "
                               "reaches the margin)")


def test_a_significant_difference_below_the_claims_own_margin_does_not_support_it(tmp_path):
    # "far worse" names its own smallest difference: a real 0.5-point gap is not that.
    acc = {"none": (80.0, 80.1, 80.2), "before_pool": (80.5, 80.6, 80.7)}
    far = claim("better", "before_pool", "none", margin=1.0)
    v = one(tmp_path, far, acc)
    assert v.verdict == "not supported"
    assert v.evidence.endswith("(significantly better, but by 0.5, less than the 1 point that "
                               "matters, shown smaller (TOST p = 0.0018): no meaningful "
                               "difference)")
    assert verdicts.reading_gist(v) == " (no meaningful difference, TOST p = 0.0018)"
    assert v.p_value == pytest.approx(0.0018, abs=5e-5)
    rule = ("shown smaller than the smallest that matters (the claim's margin, default 1 point; "
            "TOST), significant or not: no meaningful difference.")
    assert rule in claims_section.claims_intro(summary_for(tmp_path / "own", study_with(far), acc))


def no_reading_singled_out(monkeypatch: pytest.MonkeyPatch) -> None:
    """The readings lr=0.01 and lr=0.1, and no published numbers to single one out."""
    from hpo.reporting import readings

    monkeypatch.setattr(readings, "readings_of",
                        lambda s: [(("train.lr", 0.01),), (("train.lr", 0.1),)])
    monkeypatch.setattr(readings, "closest_reading", lambda s: None)


def lr_readings_summary(tmp_path: Path, name: str,
                        acc: dict[tuple[str, float], tuple[float, ...]]) -> tables.Summary:
    """A store of dropout location x lr runs (test accuracy per seed) and its summary, with one
    claim, before_pool beats none, that leaves train.lr open as the reading."""
    raw = copy.deepcopy(RAW)
    raw["space"] = {LOC: ["none", "before_pool"], "train.lr": [0.01, 0.1]}
    study = spec.validate(raw, "s.toml")
    memory = optuna.storages.InMemoryStorage()
    study_obj = synthetic.create_study(memory, study)
    synthetic.add(study_obj, [
        synthetic.trial(study, {LOC: loc, "train.lr": lr}, synthetic.record(seed, test_acc=a))
        for (loc, lr), values in acc.items() for seed, a in enumerate(values)])
    summary = tables.summarize(store.load_study(memory, "cl"))
    summary.study = dataclasses.replace(summary.study, claims=(spec.Claim(
        "before_pool beats none", "better", ((LOC, "before_pool"),), ((LOC, "none"),),
        "test_acc"),))
    return summary


def test_readings_pointing_opposite_ways_get_no_seed_advice(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Inconclusive in both readings, +2 in one and -2 in the other (margin 1): more seeds
    would settle the readings apart, so no number of seeds is advised."""

    acc = {("before_pool", 0.01): (82.0, 84.0, 86.0), ("none", 0.01): (80.0, 82.0, 84.0),
           ("before_pool", 0.1): (78.0, 80.0, 82.0), ("none", 0.1): (80.0, 82.0, 84.0)}
    summary = lr_readings_summary(tmp_path, "split", acc)
    no_reading_singled_out(monkeypatch)
    (v,) = verdicts.evaluate_all(summary)
    assert v.verdict == "inconclusive" and v.seeds_needed is None
    assert ("; inconclusive: the readings point to different verdicts (their observed "
            "differences fall on both sides of the smallest that matters), so more seeds would "
            "more likely settle them apart than decide it; a closer reproduction of the seed's "
            "setting would (the same verdict in every reading the "
            "seed leaves open, 2;") in v.evidence
    assert v.evidence.endswith("the observed difference per reading: lr=0.01 +2, lr=0.1 -2)")


def test_a_reading_short_of_the_margin_points_against_a_supported_claim(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """mnist/weight_decay: momentum and Adam find 5e-3 better; plain SGD is 0.38 points ahead,
    undecided. More seeds would more likely show it inside the 1-point margin (no meaningful
    difference: not supported), so it points against them and no seed advice is given."""

    acc = {("before_pool", 0.01): (93.0, 93.1, 93.2), ("none", 0.01): (90.0, 90.1, 90.2),
           ("before_pool", 0.1): (79.4, 80.4, 81.4), ("none", 0.1): (79.0, 80.0, 81.0)}
    summary = lr_readings_summary(tmp_path, "short", acc)
    no_reading_singled_out(monkeypatch)
    (v,) = verdicts.evaluate_all(summary)
    assert v.by_reading == (("lr=0.01", "supported"), ("lr=0.1", "inconclusive"))
    assert v.verdict == "inconclusive" and v.seeds_needed is None
    assert ("in lr=0.1 the observed difference points to another verdict than the decided "
            "readings'") in v.evidence


@pytest.mark.parametrize("ahead, sd, against", [(0.2, 0.5, False), (2.0, 3.0, True)])
def test_a_reading_ahead_by_less_than_the_margin_points_to_no_meaningful_difference(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ahead: float, sd: float,
        against: bool) -> None:
    """mnist/dropout_rate: momentum and Adam show no meaningful difference (not supported);
    plain SGD is 0.55 points ahead, undecided. More seeds would more likely show it inside the
    1-point margin too (not supported, agreeing), so that reading does not point against the
    others, and the advice names that way; 2 points ahead it would (it could only become
    'supported')."""

    spread = (-0.1, 0.0, 0.1)
    wide = (-sd, 0.0, sd)
    acc = {("before_pool", 0.01): tuple(90.05 + d for d in spread),
           ("none", 0.01): tuple(90.0 + d for d in spread),
           ("before_pool", 0.1): tuple(80.0 + ahead + d for d in wide),
           ("none", 0.1): tuple(80.0 + d for d in wide)}
    summary = lr_readings_summary(tmp_path, f"ahead{ahead}", acc)
    no_reading_singled_out(monkeypatch)
    (v,) = verdicts.evaluate_all(summary)
    assert v.verdict == "inconclusive"
    assert v.by_reading == (("lr=0.01", "not supported"), ("lr=0.1", "inconclusive"))
    assert ("in lr=0.1 the observed difference points to another verdict" in v.evidence) \
        is against
    assert (v.seeds_needed is None) is against
    lead = ("the readings the seed leaves open disagree" if against
            else "not every reading the seed leaves open decides it")
    assert v.evidence.startswith(f"{lead} (no published numbers single one out; uncorrected)")
    assert ("≈ 6 seeds per configuration would decide it in every reading, as not supported "
            "(where the decided readings point)" in v.evidence) is not against


def test_a_decision_needs_min_seeds_a_side(tmp_path):
    """Two seeds with a tiny spread make a difference 'significant': by default (min_seeds 3)
    it stays inconclusive and says what it would have been; min_seeds = 2 decides it."""
    acc = {"none": (80.0, 80.01), "before_pool": (90.0, 90.01)}
    v = one(fresh(tmp_path, "3"), claim("better", "before_pool", "none"), acc)
    assert v.verdict == "inconclusive" and v.seeds_needed(0.05) == 3
    assert v.evidence.endswith(
        "(significantly better); inconclusive: it would be supported on 2 seeds, but a decision "
        "needs at least 3 per configuration (min_seeds: two runs' spread is too unreliable to "
        "decide on)")
    summary = summary_for(fresh(tmp_path, "2"), study_with(claim("better", "before_pool",
                                                                "none")), acc)
    summary.study = dataclasses.replace(summary.study,
                                        config={**summary.study.config, "min_seeds": 2})
    (v,) = verdicts.evaluate_all(summary)
    assert v.verdict == "supported"


def test_a_reading_short_of_min_seeds_whose_test_gives_the_other_verdict_points_against(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """mnist/batch_size_lr: lr 1e-5 stays at chance in a reading with 2 runs (its test would
    say supported) and trains in another with 3 (not supported). That is a disagreement, not
    a claim a few more seeds would decide 'as not supported'."""

    # (before_pool trains at lr 0.01: a reading in which nothing trains would be left out.)
    acc = {("before_pool", 0.01): (60.1, 61.2, 59.9), ("none", 0.01): (9.8, 10.3),
           ("before_pool", 0.1): (60.0, 62.0, 61.0), ("none", 0.1): (80.0, 82.0, 84.0)}
    summary = lr_readings_summary(tmp_path, "chance", acc)
    summary.study = dataclasses.replace(summary.study, claims=(spec.Claim(
        "none barely trains", "at_chance", ((LOC, "none"),), (), "test_acc", 5.0),))
    no_reading_singled_out(monkeypatch)
    (v,) = verdicts.evaluate_all(summary)
    assert v.verdict == "inconclusive" and v.seeds_needed is None
    assert v.evidence.startswith("the readings the seed leaves open disagree")
    assert v.evidence.endswith(
        "inconclusive: in lr=0.01 the test on fewer than min_seeds runs points to another "
        "verdict than the decided readings', so more seeds would more likely confirm the "
        "disagreement than decide it; a closer reproduction of the seed's setting would")


def test_claim_measures_the_results_table_lacks_are_listed_per_configuration(
        tmp_path: Path) -> None:
    """cnn_vs_mlp's index quoted late_loss_fall values that its report did not print."""
    from hpo.reporting.claims_section import measures_markdown

    study = study_with(claim("better", "none", "before_pool", metric="val_loss_rise"),
                       claim("best", "none", metric="test_acc"))
    text = measures_markdown(summary_for(tmp_path, study))
    # Each synthetic validation loss falls steadily to its last epoch: no rise.
    assert text.splitlines()[2:5] == [
        "| configuration | val_loss_rise |", "|---|---|",
        "| dropout_location=none | 0 ± 0 (n=3; 0 to 0) |"]
    assert "| dropout_location=input | 0 (n=1) |" in text
    assert measures_markdown(summary_for(tmp_path, study_with(claim("best", "none")))) == ""
