"""Seeds until decided: which configurations get seeds, when it stops, exactly once, resume."""

from __future__ import annotations

import copy
import json
import math
import os
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import optuna
import pytest

from hpo import decide, runner, spec, store
from hpo.benchmarks import synthetic
from hpo.errors import SpecError
from hpo.reporting import claims, claims_section, tables, verdicts, write
from tests.conftest import cached_store, completed_runs, run_hpo, start_hpo, trials, wait_for

optuna.logging.set_verbosity(optuna.logging.WARNING)

LOC = "model.dropout_location"
RAW: dict[str, Any] = {
    "name": "ud", "dataset": "digits", "epochs": 2, "repeats": 2, "metric": "test_acc",
    "until_decided": True, "max_repeats": 4,
    "min_seeds": 2,  # these looks decide on 2 seeds, by design (the default needs 3)
    "model": {"channels": [4, 4], "padding": 1, "dropout": 0.2},
    "space": {LOC: ["none", "before_pool", "before_fc"]},
    "claims": [
        {"text": "before_pool beats none", "kind": "better", "config": {LOC: "before_pool"},
         "than": {LOC: "none"}},
        {"text": "before_fc is as good as before_pool", "kind": "similar",
         "config": {LOC: "before_fc"}, "than": {LOC: "before_pool"}, "margin": 8},
    ],
}
# Seeds 0, 1: claim 1 is decided at once (Welch p 0.005, x 2 by Holm = 0.01 < 0.031, look 1 of
# 2's share of alpha); claim 2 is not (90.5 vs 90.5, sd 2.5 pooled: TOST p 0.091 within ±8)
# but 4 seeds would decide it at the next look's 0.019: it gets seeds 2, 3.
FIRST = {"none": (80.0, 81.0), "before_pool": (90.0, 91.0), "before_fc": (88.0, 93.0)}
# Seeds 2, 3: claim 2 is decided too (TOST p 0.0015, Holm x 2 = 0.003 < 0.019).
SECOND = {"before_pool": {2: 90.0, 3: 91.0}, "before_fc": {2: 90.0, 3: 91.0}}


def study_of(**changes: Any) -> spec.Study:
    raw = copy.deepcopy(RAW)
    raw.update(changes)
    return spec.validate(raw, "ud.toml")


def _store(tmp_path: Path, study: spec.Study) -> tuple[store.StoreURL, Any]:
    def build(url: store.StoreURL) -> None:
        study_obj = synthetic.create_study(store.open_storage(url, create=True), study)
        synthetic.add(study_obj, [
            synthetic.trial(study, {LOC: loc}, synthetic.record(seed, test_acc=acc))
            for loc, values in FIRST.items() for seed, acc in enumerate(values)])

    url = cached_store(tmp_path / "ud.db", ["until_decided", study.to_dict()], build)
    return url, store.load_study(store.open_storage(url, create=True), study.name)


def _finish_waiting(study_obj: Any, acc: dict[str, dict[int, float]]) -> list[tuple[str, int]]:
    """Run every queued trial 'synthetically': give it the record of its cell's value."""
    ran = []
    while (trial := runner.pop_waiting(study_obj)) is not None:
        attrs = study_obj._storage.get_trial(trial._trial_id).user_attrs
        cell = spec_cell(attrs["cell"])
        record = synthetic.record(attrs["seed"], test_acc=acc[cell][attrs["seed"]])
        for key, value in record.items():
            trial.set_user_attr(key, value)
        study_obj.tell(trial, record["test_acc"])
        ran.append((cell, attrs["seed"]))
    return sorted(ran)


def spec_cell(cell_key: str) -> str:
    import json

    return json.loads(cell_key)[LOC]


def test_looks_planned_and_alpha_spent() -> None:
    import math

    assert decide.planned_looks({"repeats": 2, "max_repeats": 4}) == 2
    assert decide.planned_looks({"repeats": 3, "max_repeats": 10}) == 4  # 3, 6, 9, 10
    assert decide.planned_looks({"repeats": 3, "max_repeats": 3}) == 1
    # The first look spends alpha ln(1 + (e - 1) t) alone; later looks test at exact
    # group-sequential levels, above the spending function's increments (0.0131, 0.0104,
    # 0.0086), because the looks share data.
    levels = [decide.look_alpha(0.05, k, 4) for k in (1, 2, 3, 4)]
    assert levels[0] == pytest.approx(0.05 * math.log(1 + (math.e - 1) / 4))
    assert levels == pytest.approx([0.017869, 0.017908, 0.018365, 0.018772], abs=1e-6)
    assert decide.look_alpha(0.05, 1, 1) == pytest.approx(0.05)
    assert decide.look_alpha(0.05, 9, 4) == levels[3]  # past the plan: the last look's


def test_exact_levels_cross_at_the_spending_functions_rate() -> None:
    """With no effect, a Brownian score observed at the planned shares first crosses each
    look's boundary at that look's share of alpha (simulated: 400,000 paths, 4 looks)."""
    import numpy as np
    from scipy import stats

    looks = 4
    bounds = stats.norm.isf(np.array([decide.look_alpha(0.05, k, looks)
                                      for k in range(1, looks + 1)]) / 2)
    rng = np.random.default_rng(7)
    score = np.cumsum(rng.standard_normal((400_000, looks)) / math.sqrt(looks), axis=1)
    crossed = np.abs(score / np.sqrt(np.arange(1, looks + 1) / looks)) >= bounds
    first = np.where(crossed.any(axis=1), crossed.argmax(axis=1), -1)
    shares = [decide.spent(0.05, k / looks) - decide.spent(0.05, (k - 1) / looks)
              for k in range(1, looks + 1)]
    for k, share in enumerate(shares):  # each within 4 standard errors of its share
        assert abs((first == k).mean() - share) < 4 * math.sqrt(share / 400_000)
    assert abs((first >= 0).mean() - 0.05) < 4 * math.sqrt(0.05 / 400_000)


def test_seeds_go_only_to_undecided_claims_until_decided(tmp_path: Path) -> None:
    study = study_of()
    url, study_obj = _store(tmp_path, study)
    judged = verdicts.evaluate_all(tables.summarize(study_obj))
    assert [v.verdict for v in judged] == ["supported", "inconclusive"]

    assert decide.add_seeds(study_obj, study, url) == 4  # seeds 2, 3 of the two configs
    waiting = sorted((spec_cell(t.user_attrs["cell"]), t.user_attrs["seed"])
                     for t in study_obj.get_trials(deepcopy=False) if t.state.name == "WAITING")
    assert waiting == [("before_fc", 2), ("before_fc", 3), ("before_pool", 2),
                       ("before_pool", 3)]
    assert decide.targets(study_obj) == {'{"model.dropout_location": "before_fc"}': 4,
                                         '{"model.dropout_location": "before_pool"}': 4}
    # A second worker looking now finds the batch pending: it must not raise the targets again.
    assert decide.add_seeds(study_obj, study, url) == 4
    assert len(study_obj.user_attrs[decide.LOOKS_ATTR]) == 1

    assert _finish_waiting(study_obj, SECOND) == waiting
    assert decide.add_seeds(study_obj, study, url) == 0  # decided: finished
    assert study_obj.user_attrs[decide.END_ATTR] == "all 2 claims decided"
    done = Counter(spec_cell(t.user_attrs["cell"]) for t in study_obj.get_trials()
                   if t.state.name == "COMPLETE")
    assert done == {"none": 2, "before_pool": 4, "before_fc": 4}
    assert max(completed_runs(str(url), "ud").values()) == 1

    summary = tables.summarize(study_obj)
    assert write.headline(summary) == (  # not "2 seeds per configuration" alone
        "*Ran on digits: 2 epochs × 2 seeds per configuration, then seeds until decided (at "
        "most 4): 2–4 complete runs per configuration, 3 configurations with complete runs.*")
    assert write.seeds_line(summary) == (
        "Seeds until decided (batches of 2, at most 4 per configuration, 1 batch added): "
        "complete seeds per configuration dropout_location=none 2, "
        "dropout_location=before_pool 4, dropout_location=before_fc 4. Seeds were added for "
        "the undecided claims, numbered as the study file had them when each batch was added "
        "(dropout_location=before_fc: claims 2; "
        "dropout_location=before_pool: claims 2). Stopped: all 2 claims decided.")
    second = decide.look_alpha(0.05, 2, 2)  # exact: 0.0277, the increment alone 0.0190
    assert claims.report_alpha(summary) == pytest.approx(second)
    # Both claims' data changed at the one look (before_pool, which claim 1 compares too, got
    # seeds 2, 3): each is on its second data, claim 1 at 3 of its 4 planned runs a side,
    # claim 2 at all of them.
    first_level = decide.level_at(0.05, [0.5, 0.75])
    assert verdicts.claim_level(study.claims[0], summary) == (
        pytest.approx(first_level), 2, 0.75)
    assert verdicts.claim_level(study.claims[1], summary) == (pytest.approx(second), 2, 1.0)
    assert ("claim 1 look 2 at 75% of its planned runs, α = 0.0208; claim 2 look 2 at 100% of "
            "its planned runs, α = 0.0277. Holm over the "
            "claims runs on p × 0.05 / α") in claims_section.claims_intro(summary)


def test_a_claim_whose_data_a_look_left_alone_keeps_its_look(tmp_path: Path) -> None:
    """Looks count per claim, by the data it was tested on: a look that added seeds only to
    other configurations re-tests the same data and spends nothing more of its alpha; each
    look is taken at its information share, so other claims' seeds never use a claim's
    looks up before the cap."""
    study = study_of(max_repeats=6)  # 2 seeds, then batches of 2 up to 6
    _url, study_obj = _store(tmp_path, study)
    looks = [{"seeds": {"dropout_location=before_fc": 4}},
             {"seeds": {"dropout_location=before_fc": 6}}]
    study_obj.set_user_attr(decide.LOOKS_ATTR, looks)
    summary = tables.summarize(study_obj)
    better, similar = study.claims
    assert verdicts.claim_shares(better, summary) == [pytest.approx(2 / 6)]  # never raised
    # before_fc raised twice (its 2 complete runs are judged as the looks planned them).
    assert verdicts.claim_shares(similar, summary) == pytest.approx([4 / 12, 6 / 12, 8 / 12])
    assert verdicts.claim_level(better, summary) == (
        pytest.approx(decide.level_at(0.05, [2 / 6])), 1, pytest.approx(2 / 6))
    # Three more looks on the better claim's data (other claims' seeds moved it too): four
    # looks, at shares 1/3 … 5/6, and alpha is still left for the next.
    study_obj.set_user_attr(decide.LOOKS_ATTR, looks + [
        {"seeds": {"dropout_location=before_pool": 4}},
        {"seeds": {"dropout_location=before_pool": 6}},
        {"seeds": {"dropout_location=none": 4}}])
    summary = tables.summarize(study_obj)
    shares = [2 / 6, 6 / 12, 8 / 12, 10 / 12]
    assert verdicts.claim_shares(better, summary) == pytest.approx(shares)
    assert verdicts.claim_level(better, summary) == (
        pytest.approx(decide.level_at(0.05, shares)), 4, pytest.approx(10 / 12))
    assert decide.level_at(0.05, shares) == pytest.approx(0.01592, abs=1e-5)


def test_a_look_below_min_seeds_spends_no_alpha(tmp_path: Path) -> None:
    """With min_seeds 3, the first look (2 seeds a configuration) cannot decide, so it is not
    counted: the look at 4 seeds tests at alpha(4/4) = 0.05 alone, not at what is left after
    spending alpha(2/4) on a look that could reject nothing."""
    study = study_of(min_seeds=3)
    _url, study_obj = _store(tmp_path, study)
    summary = tables.summarize(study_obj)
    similar = study.claims[1]
    assert verdicts.claim_shares(similar, summary) == [0.5]  # the only data: shown, not counted
    study_obj.set_user_attr(decide.LOOKS_ATTR, [
        {"seeds": {"dropout_location=before_pool": 4, "dropout_location=before_fc": 4}}])
    summary = tables.summarize(study_obj)
    assert verdicts.claim_shares(similar, summary) == [1.0]
    assert verdicts.claim_level(similar, summary) == (pytest.approx(0.05), 1, 1.0)


def test_levels_at_information_shares() -> None:
    """Equally spaced shares give the planned looks' levels; the full share at once is alpha;
    data no larger than the last look's has no alpha left."""
    assert decide.level_at(0.05, [1.0]) == pytest.approx(0.05)
    assert decide.level_at(0.05, [0.25, 0.5, 0.75, 1.0]) == pytest.approx(
        decide.look_alpha(0.05, 4, 4))
    assert decide.level_at(0.05, [0.5, 0.5]) == 0.0


def test_a_claim_the_cap_cannot_decide_gets_no_seeds(tmp_path: Path) -> None:
    raw_claims = copy.deepcopy(RAW["claims"])
    raw_claims[1]["margin"] = 1  # at sd 2.5, showing ±1 would take ~150 seeds: futile at 4
    study = study_of(claims=raw_claims)
    url, study_obj = _store(tmp_path, study)
    assert decide.add_seeds(study_obj, study, url) == 0
    assert study_obj.user_attrs[decide.END_ATTR] == (
        "claims 2 stopped for futility (at the observed difference more than the cap of 4 "
        "seeds would be needed)")
    assert decide.targets(study_obj) == {}
    unchecked = study_of(claims=raw_claims, futility=False)
    (tmp_path / "b").mkdir()
    url, study_obj = _store(tmp_path / "b", unchecked)
    assert decide.add_seeds(study_obj, unchecked, url) == 4  # futility off: up to the cap


def test_a_claim_a_little_past_the_cap_still_gets_seeds(tmp_path: Path) -> None:
    """Futility waits for futility_factor × the cap: on digits, weight_decay looked to need 23
    seeds against a cap of 10 after 3 seeds, and 10 fixed seeds decided it."""
    raw_claims = copy.deepcopy(RAW["claims"])
    raw_claims[1]["margin"] = 4  # at sd 2.5 and a difference of 0, ±4 takes 10 seeds: 2.5 × 4
    study = study_of(claims=raw_claims)
    assert study.config["futility_factor"] == 3.0
    url, study_obj = _store(tmp_path, study)
    assert decide.add_seeds(study_obj, study, url) == 4
    assert study_obj.user_attrs[decide.LOOKS_ATTR][0]["futile"] == []
    strict = study_of(claims=raw_claims, futility_factor=2.4)  # 10 > 2.4 × 4: futile
    (tmp_path / "b").mkdir()
    url, study_obj = _store(tmp_path / "b", strict)
    assert decide.add_seeds(study_obj, strict, url) == 0


def test_a_futility_stop_the_factor_would_not_make_is_not_the_end(tmp_path: Path) -> None:
    """A study that stopped for futility under the old rule (any claim needing more than the
    cap) is reopened when today's factor gives its claim seeds: the campaign runs it again."""
    raw_claims = copy.deepcopy(RAW["claims"])
    raw_claims[1]["margin"] = 4  # needs 10 seeds: 2.5 × the cap of 4
    ended = ("claims 2 stopped for futility (at the observed difference more than the cap "
             "of 4 seeds would be needed)")
    for factor, reopened in ((3.0, True), (2.4, False)):
        study = study_of(claims=raw_claims, futility_factor=factor)
        (tmp_path / str(factor)).mkdir()
        _url, study_obj = _store(tmp_path / str(factor), study)
        study_obj.set_user_attr(decide.END_ATTR, ended)
        assert verdicts.looks_would_go_on(tables.summarize(study_obj)) is reopened


def test_advice_beyond_the_cap_says_the_study_stops_short_of_it(tmp_path: Path) -> None:
    raw_claims = copy.deepcopy(RAW["claims"])
    raw_claims[1]["margin"] = 4  # at sd 2.5 and a difference of 0, ±4 takes 10 seeds: over 4
    study = study_of(claims=raw_claims, futility_factor=1.0)
    url, study_obj = _store(tmp_path, study)
    assert decide.add_seeds(study_obj, study, url) == 0
    assert study_obj.user_attrs[decide.END_ATTR].startswith("claims 2 stopped for futility")
    v = verdicts.evaluate_all(tables.summarize(study_obj))[1]
    assert v.verdict == "inconclusive"
    assert v.evidence.endswith(
        "inconclusive: ≈ 10 seeds per configuration would show equivalence within ±4 at the "
        "observed 0-point difference (80% power, α = 0.031); more than this study's plan "
        "allows (at most 4 seeds a configuration, max_repeats): deciding it takes a study "
        "planned for 10; Holm-adjusted p = 0.28"), v.evidence


def _optimizer_readings_store(tmp_path: Path, study: spec.Study,
                              acc: dict[tuple[str, str], tuple[float, ...]]
                              ) -> tuple[store.StoreURL, Any]:
    """A store of dropout location x optimizer runs (test accuracy per seed) of ``study``."""
    opt = "train.optimizer"

    def build(url: store.StoreURL) -> None:
        study_obj = synthetic.create_study(store.open_storage(url, create=True), study)
        synthetic.add(study_obj, [
            synthetic.trial(study, {LOC: loc, opt: o}, synthetic.record(seed, test_acc=a))
            for (loc, o), values in acc.items() for seed, a in enumerate(values)])

    key = ["readings", study.to_dict(), sorted((list(k), list(v)) for k, v in acc.items())]
    url = cached_store(tmp_path / "readings.db", key, build)
    return url, store.load_study(store.open_storage(url, create=True), study.name)


def test_a_claim_whose_readings_disagree_stops_saying_so(tmp_path: Path) -> None:
    """Plain SGD says before_pool wins, Adam says it loses, each at p < 0.001: more seeds
    would settle the readings apart, so the look names that, not futility."""
    opt = "train.optimizer"
    study = study_of(space={LOC: ["none", "before_pool"], opt: ["sgd", "adam"]},
                     readings=[opt], repeats=3, min_seeds=3, max_repeats=6,
                     claims=RAW["claims"][:1])
    acc = {("before_pool", "sgd"): (90.0, 91.0, 92.0), ("none", "sgd"): (80.0, 81.0, 82.0),
           ("before_pool", "adam"): (80.0, 81.0, 82.0), ("none", "adam"): (90.0, 91.0, 92.0)}
    url, study_obj = _optimizer_readings_store(tmp_path, study, acc)
    assert decide.add_seeds(study_obj, study, url) == 0
    assert study_obj.user_attrs[decide.END_ATTR] == (
        "claims 1 stopped: their readings disagree (more seeds would settle the readings "
        "apart, not decide the claim)")


def test_seeds_go_to_every_undecided_reading_of_a_claim(tmp_path: Path) -> None:
    """mnist/weight_decay: the claim stood undecided in every reading, shown in the weakest,
    and only the weakest's configurations got seeds: the others stayed at 2 runs, below
    min_seeds, where no verdict in every reading could ever be reached."""
    opt = "train.optimizer"
    study = study_of(space={LOC: ["none", "before_pool"], opt: ["sgd", "adam"]},
                     readings=[opt], min_seeds=3, max_repeats=6, claims=RAW["claims"][:1])
    acc = {("before_pool", "sgd"): (90.0, 92.0), ("none", "sgd"): (89.0, 91.5),
           ("before_pool", "adam"): (95.0, 95.5), ("none", "adam"): (93.0, 93.5)}
    url, study_obj = _optimizer_readings_store(tmp_path, study, acc)
    (v,) = verdicts.evaluate_all(tables.summarize(study_obj))
    assert v.verdict == "inconclusive"
    assert sorted(row["config"] for row in v.configs) == [
        "dropout_location=before_pool, optimizer=adam", "dropout_location=before_pool, "
        "optimizer=sgd", "dropout_location=none, optimizer=adam",
        "dropout_location=none, optimizer=sgd"]
    # It had ended under the old rule: the look that reopens it clears the old reason.
    study_obj.set_user_attr(decide.END_ATTR, "claims 1 stopped for futility")
    assert decide.add_seeds(study_obj, study, url) == 8  # seeds 2, 3 in both readings
    assert study_obj.user_attrs[decide.END_ATTR] is None


def test_futility_waits_for_min_seeds(tmp_path: Path) -> None:
    """mnist/weight_decay stopped a claim for futility on 2 seeds a configuration, its spread
    from two runs: below min_seeds the claim's configurations get a batch first."""
    raw_claims = copy.deepcopy(RAW["claims"])
    raw_claims[1]["margin"] = 1  # futile at the cap of 4 (the test above), once judged
    study = study_of(claims=raw_claims, min_seeds=3)
    url, study_obj = _store(tmp_path, study)
    # Seeds 2, 3 of every configuration: claim 1 (decided on 2 seeds with min_seeds 2) needs
    # 3 now, and claim 2 is not called futile on 2.
    assert decide.add_seeds(study_obj, study, url) == 6
    assert decide.targets(study_obj) == {'{"model.dropout_location": "none"}': 4,
                                         '{"model.dropout_location": "before_fc"}': 4,
                                         '{"model.dropout_location": "before_pool"}': 4}
    assert study_obj.user_attrs[decide.LOOKS_ATTR][0]["futile"] == []


def test_all_decided_means_no_seeds(tmp_path: Path) -> None:
    raw_claims = RAW["claims"][:1]
    study = study_of(claims=raw_claims)
    url, study_obj = _store(tmp_path, study)
    assert decide.add_seeds(study_obj, study, url) == 0
    assert study_obj.user_attrs[decide.END_ATTR] == "all 1 claims decided"
    assert decide.targets(study_obj) == {}


def test_a_failed_trial_of_a_batch_is_queued_again_not_a_new_look(tmp_path: Path) -> None:
    study = study_of()
    url, study_obj = _store(tmp_path, study)
    decide.add_seeds(study_obj, study, url)
    trial = runner.pop_waiting(study_obj)
    study_obj.tell(trial, state=optuna.trial.TrialState.FAIL)
    assert decide.add_seeds(study_obj, study, url) == 3  # the three still waiting
    _finish_waiting(study_obj, SECOND)
    assert decide.add_seeds(study_obj, study, url) == 1  # the failed one, queued again
    assert len(study_obj.user_attrs[decide.LOOKS_ATTR]) == 1


@pytest.mark.parametrize("changes, message", [
    ({"sampler": "tpe", "space": {"train.lr": {"type": "float", "low": 1e-4, "high": 1e-1}},
      "claims": []},
     "ud.toml: until_decided needs sampler = 'grid' (seeds are added to configurations of the "
     "grid), got 'tpe'"),
    ({"claims": []}, "ud.toml: until_decided needs [[claims]] to decide; add claims or drop "
     "--until-decided"),
    ({"max_repeats": 1}, "ud.toml: max_repeats must be >= repeats (2) with until_decided, got 1"),
])
def test_bad_until_decided_settings(changes: dict, message: str) -> None:
    with pytest.raises(SpecError) as info:
        study_of(**changes)
    assert str(info.value) == message


# ---------------------------------------------------------------------------------------------
# The real CLI: training on the digits, two workers, a killed run.

CLI_STUDY = """
name = "ud"
dataset = "digits"
epochs = 5
batch_size = 32
repeats = 2
max_repeats = 4
train_subset = 150
metric = "test_acc"
sampler = "grid"

[model]
family = "mlp"
fc_layers = 1
fc_width = 16

[space]
"train.lr" = [0.01, 0.011, 0.5]

[[claims]]
text = "lr 0.011 is the same as 0.01 within a hundredth of a point"
kind = "similar"
config = { "train.lr" = 0.011 }
than = { "train.lr" = 0.01 }
margin = 0.01
"""
# futility = false (the default is true): without it the claim below would get no seeds at all.
CLI_STUDY = CLI_STUDY.replace('max_repeats = 4\n', 'max_repeats = 4\nfutility = false\n')
# A margin of 0.01 points (test accuracy moves in steps of 0.28 points on the digits) cannot be
# shown with 4 seeds: the claim stays inconclusive and gets every seed up to the cap; lr 0.5 is
# in no claim and keeps its 2 seeds. 5 epochs, so that both compared networks train (a claim
# on networks that never leave chance is not exercised, and would get no seeds).


def _check_once_and_targets(url: str) -> None:
    runs = completed_runs(url, "ud")
    assert max(runs.values()) == 1  # no (configuration, seed) ran twice
    per_cell = Counter(spec_lr(cell) for cell, _ in runs)
    assert per_cell == {0.01: 4, 0.011: 4, 0.5: 2}
    assert not [t for t in trials(url, "ud") if t.state.name in ("WAITING", "RUNNING")]


def spec_lr(cell_key: str) -> float:
    import json

    return json.loads(cell_key)["train.lr"]


@pytest.mark.slow
def test_cli_until_decided_with_two_workers(tmp_path: Path) -> None:
    path = tmp_path / "ud.toml"
    path.write_text(CLI_STUDY)
    url = f"sqlite:///{tmp_path / 'hpo.db'}"
    done = run_hpo("run", "--study", str(path), "--storage", url, "--no-progress", "--jobs", "2",
                   "--threads", "1", "--no-artifacts", "--until-decided", cwd=tmp_path,
                   timeout=300)
    assert done.returncode == 0, done.stderr
    _check_once_and_targets(url)
    assert ("until decided: 1 batches of seeds added; claims 1 still inconclusive at the cap of "
            "4 seeds per configuration (max_repeats)") in done.stdout
    again = run_hpo("run", "--study", str(path), "--storage", url, "--no-progress",
                    "--no-artifacts", "--until-decided", cwd=tmp_path, timeout=300)
    assert again.returncode == 0, again.stderr  # nothing more to do: nothing runs twice
    _check_once_and_targets(url)


@pytest.mark.slow
def test_cli_sigkill_mid_batch_then_rerun_finishes_exactly_once(tmp_path: Path) -> None:
    path = tmp_path / "ud.toml"
    path.write_text(CLI_STUDY.replace("epochs = 5", "epochs = 30"))
    url = f"sqlite:///{tmp_path / 'hpo.db'}"
    args = ["run", "--study", str(path), "--storage", url, "--no-progress", "--threads", "1",
            "--no-artifacts", "--until-decided"]
    proc = start_hpo(*args, cwd=tmp_path)

    def mid_batch() -> bool:  # the first look has raised the targets, a batch trial runs
        ts = trials(url, "ud")
        return any(t.state.name == "RUNNING" and t.user_attrs.get("seed", 0) >= 2 for t in ts)

    wait_for(mid_batch, timeout=240)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    started = time.monotonic()
    again = run_hpo(*args, cwd=tmp_path, timeout=300)
    assert again.returncode == 0, again.stderr
    assert time.monotonic() - started > 3  # it waited out the dead trial's grace period
    _check_once_and_targets(url)
    states = Counter(t.state.name for t in trials(url, "ud"))
    assert states["FAIL"] == 1 and states["COMPLETE"] == 10
    assert math.isfinite(len(trials(url, "ud")))


# ---------------------------------------------------------------------------------------------
# The sequential rule's error rates, simulated on the real decision code (no training).


def _sequential(rng: Any, effect: float, sd: float, repeats: int, cap: int) -> str:
    """One simulated until-decided run of a `better` claim (margin 1 point): seeds in batches
    of ``repeats`` until the verdict at the look's level is decided, or the cap."""
    import numpy as np

    from hpo.reporting.claim_sides import Side

    claim = spec.Claim("a beats b", "better", (("x", "a"),), (("x", "b"),), None, 5.0, 1.0,
                       None, ())
    looks = decide.planned_looks({"repeats": repeats, "max_repeats": cap})
    a, b = [], []
    for look in range(1, looks + 1):
        n = min(cap, repeats * look) - len(a)
        a += list(rng.normal(50 + effect, sd, n))
        b += list(rng.normal(50, sd, n))
        verdict = claims._better(claim, Side({"config": "a"}, np.array(a), list(range(len(a)))),
                                 Side({"config": "b"}, np.array(b), list(range(len(b)))),
                                 "test_acc",
                                 decide.look_alpha(0.05, look, looks))
        if verdict.decided:
            return verdict.verdict + (" (no difference)" if "no meaningful" in verdict.evidence
                                      else "")
    return "inconclusive"


def test_a_zero_effect_is_decided_as_no_meaningful_difference_at_the_stated_rates() -> None:
    import numpy as np

    rng = np.random.default_rng(20261206)
    outcomes = Counter(_sequential(rng, 0.0, 0.6, 3, 12) for _ in range(400))
    # A true difference of zero: claiming one is an error, at most alpha = 0.05 over all looks
    # (4 looks, Pocock-type spending; with 400 runs, 0.05 + 3 standard errors = 0.083).
    wrong = outcomes["supported"] + outcomes["not supported"]
    assert wrong / 400 <= 0.083, outcomes
    # And most runs end decided as "no meaningful difference" (sd 0.6 against a margin of 1).
    assert outcomes["not supported (no difference)"] / 400 >= 0.8, outcomes


def test_a_real_effect_is_found_and_stops_early() -> None:
    import numpy as np

    rng = np.random.default_rng(7)
    outcomes = Counter(_sequential(rng, 3.0, 1.0, 3, 12) for _ in range(200))
    assert outcomes["supported"] / 200 >= 0.9, outcomes


# ---------------------------------------------------------------------------------------------
# The benchmark rendered from the campaign's trials (python -m hpo.benchmarks.until_decided
# --from-trials DIR): journal-file report folders made of synthetic trials, no training.

# Fixed: 4 seeds of every configuration, both claims decided at alpha = 0.05 (12 runs).
FIXED = {"none": (80.0, 81.0, 80.0, 81.0), "before_pool": (90.0, 91.0, 90.0, 91.0),
         "before_fc": (90.2, 91.2, 90.2, 91.2)}
# Until decided, the same claims decided at look 1 of 2 from 2 seeds: 6 runs, half the fixed.
EARLY = {"none": (80.0, 81.0), "before_pool": (90.0, 91.0), "before_fc": (90.2, 91.2)}
# Seeds 2, 3 added as in FIRST then SECOND above: both decided, but in 10 runs.
LATE = {"none": FIRST["none"], "before_pool": FIRST["before_pool"] + (90.0, 91.0),
        "before_fc": FIRST["before_fc"] + (90.0, 91.0)}


def _bench_folder(folder: Path, study: spec.Study, accs: dict[str, tuple[float, ...]],
                  complete: bool = True, end: str | None = None) -> None:
    """A campaign report folder: trials.journal with one run per (location, seed), each 36
    CPU-s (the first run of before_fc stores only its wall time, 5 s); README.md once complete."""
    folder.mkdir(parents=True)
    storage = store.open_storage(store.parse(f"journal:{folder / 'trials.journal'}"), create=True)
    study_obj = synthetic.create_study(storage, study, name=folder.name)
    runs = []
    for loc, values in accs.items():
        for seed, acc in enumerate(values):
            record = synthetic.record(seed, test_acc=acc)
            if (loc, seed) != ("before_fc", 0):
                record["cpu_time"] = 36.0
            runs.append(synthetic.trial(study, {LOC: loc}, record))
    synthetic.add(study_obj, runs)
    if end:
        study_obj.set_user_attr(decide.END_ATTR, end)
    if complete:
        (folder / "README.md").write_text("# the report\n")


def _render(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, decided: dict | None,
            **kwargs: Any) -> tuple[list[str], dict[str, Any]]:
    from hpo.benchmarks import until_decided

    monkeypatch.chdir(tmp_path)
    root = Path("digits")
    _bench_folder(root / "fixed" / "ud", study_of(until_decided=False, repeats=4), FIXED)
    if decided is not None:
        _bench_folder(root / "decided" / "ud", study_of(), decided, **kwargs)
    assert until_decided.main(["--from-trials", "digits", "--studies", "ud"]) == 0
    result = json.loads((root / "result.json").read_text())
    return (root / "README.md").read_text().splitlines(), result


TABLE_HEAD = ["| study | run | complete runs | seeds per configuration | CPU-hours | test level α "
              "| claims decided | verdicts |", "|---|---|---|---|---|---|---|---|"]
# 11 runs x 36 CPU-s + one run's 5 s of wall time.
FIXED_ROW = "| ud | fixed | 12 | 4 | 0.111* | 0.05 | 2 of 2 | supported, supported |"
TARGET = "until decided reaches every decision the fixed run reaches in at most half its runs: "


def _after(lines: list[str], first: str, count: int) -> list[str]:
    return lines[lines.index(first):lines.index(first) + count]


def test_from_trials_target_met(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lines, result = _render(tmp_path, monkeypatch, EARLY, end="all 2 claims decided")
    assert lines[0] == "# Seeds until decided vs fixed seeds (digits), from the campaign's trials"
    assert lines[2].endswith("Written by `python -m hpo.benchmarks.until_decided --from-trials "
                             "digits --studies ud`.")
    assert _after(lines, TABLE_HEAD[0], 4) == TABLE_HEAD + [
        FIXED_ROW,
        # 5 runs x 36 CPU-s + 5 s; look 1 of 2 tests at 0.05 ln(1 + (e - 1)/2) = 0.031.
        "| ud | until decided | 6 | 2 | 0.051* | 0.031 | 2 of 2 | supported, supported |"]
    assert lines[lines.index(TABLE_HEAD[0]) + 4:] == [
        "", "Why until decided stopped:", "", "- ud: all 2 claims decided", "",
        "Totals over the 1 study complete both ways: fixed 12 runs, 0.11 CPU-hours, 2 of 2 "
        "claims decided; until decided 6 runs (50% of fixed), 0.05 CPU-hours, 2 of 2 claims "
        "decided.", "",
        TARGET + "yes", "", "Verdicts that differ between the two runs:", "", "- none"]
    assert result["target"] == {"met": True, "at_most_half_the_runs": True,
                                "fixed_decisions_lost": 0}
    assert result["totals"]["decided"]["runs"] == 6
    assert result["studies"][0]["decided"]["wall_time_for_cpu"] == 1


def test_from_trials_target_missed_by_a_decision(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    lines, result = _render(tmp_path, monkeypatch, FIRST)  # claim 2 undecided at 2 seeds
    assert "| ud | until decided | 6 | 2 | 0.051* | 0.031 | 1 of 2 | supported, inconclusive |" \
        in lines
    assert _after(lines, TARGET + "no", 9) == [
        TARGET + "no", "", "- runs: 6 until decided against 12 fixed, at most half",
        "- decisions of the fixed run that until decided does not reach: 1", "",
        "Verdicts that differ between the two runs:", "",
        '- ud: "before_fc is as good as before_pool": fixed supported, until decided '
        'inconclusive']
    assert result["differ"] == [{"study": "ud", "claim": "before_fc is as good as before_pool",
                                 "fixed": "supported", "decided": "inconclusive"}]


def test_from_trials_target_missed_by_the_runs(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    lines, result = _render(tmp_path, monkeypatch, LATE)  # the same decisions, 10 runs of 12
    # No looks stored: each claim's one look is at its share of the runs (6/8, 8/8).
    assert ("| ud | until decided | 10 | 2–4 | 0.091* | 0.0414–0.05 | 2 of 2 | supported, "
            "supported |") in lines
    assert _after(lines, TARGET + "no", 8) == [
        TARGET + "no", "", "- runs: 10 until decided against 12 fixed, more than half",
        "- decisions of the fixed run that until decided does not reach: 0", "",
        "Verdicts that differ between the two runs:", "", "- none"]
    assert result["target"]["met"] is False


@pytest.mark.parametrize("partial", [False, True], ids=["missing", "in progress"])
def test_from_trials_names_what_is_not_complete(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                partial: bool) -> None:
    lines, result = _render(tmp_path, monkeypatch, EARLY if partial else None, complete=False)
    assert _after(lines, TABLE_HEAD[0], 4) == TABLE_HEAD + [FIXED_ROW, (
        "| ud | until decided | 6 so far | – | 0.051* so far | – | – | in progress: no report "
        "yet |" if partial else
        "| ud | until decided | – | – | – | – | – | missing: no trials yet |")]
    assert lines[lines.index(TABLE_HEAD[0]) + 4:] == [
        "", "Totals over the 0 studies complete both ways: fixed 0 runs, 0.00 CPU-hours, 0 of 0 "
        "claims decided; until decided 0 runs, 0.00 CPU-hours, 0 of 0 claims decided.", "",
        TARGET + "not known yet (not complete: decided/ud)", "",
        "Verdicts that differ between the two runs:", "", "- none", "",
        "Not complete yet (the campaign continues them; nothing above stands in for them): "
        "decided/ud."]
    assert result["not_complete"] == ["decided/ud"] and result["target"]["met"] is None


def test_a_stop_reason_that_todays_rules_contradict_says_so() -> None:
    """The stop reason is the last look's; a claim decided since (a rule changed) or added
    since (a study file changed) is named after it."""
    from types import SimpleNamespace

    def verdicts_(*decided: bool) -> list[Any]:
        return [SimpleNamespace(decided=d) for d in decided]

    def summary_(end: str | None) -> Any:
        return SimpleNamespace(attrs={decide.END_ATTR: end})

    cap = ("claims 2 still inconclusive at the cap of 10 seeds per configuration (max_repeats); "
           "claims 1, 3 stopped for futility (at the observed difference …)")
    assert write.since_the_last_look(summary_(cap), verdicts_(False, True, False)) == (
        " That was the last look's judgement; under today's rules and study file claim 2 is "
        "decided.")
    assert write.since_the_last_look(summary_("all 2 claims decided"),
                                     verdicts_(True, True, False)) == (
        " That was the last look's judgement; under today's rules and study file claim 3 is "
        "inconclusive.")
    assert write.since_the_last_look(summary_(cap), verdicts_(False, False, False)) == ""
    assert write.since_the_last_look(summary_(None), verdicts_(True)) == ""
    retired = "claims 1 at their last planned look (no share of alpha left for more seeds)"
    assert write.since_the_last_look(summary_(retired), verdicts_(False)) == (
        " Looks are now taken at information shares and do not run out before the cap; a look "
        "now would add no seeds (its readings disagree, or the cap cannot decide it at the "
        "observed difference).")
