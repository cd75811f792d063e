"""[[claims]] in study files: validation messages, verdicts on constructed stores, README."""

from __future__ import annotations

import copy
from pathlib import Path

import optuna
import pytest
from scipy import stats

from hpo import spec, store
from hpo.benchmarks import synthetic
from hpo.errors import SpecError
from hpo.report import claims, render, tables, write

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


def summary_for(tmp_path: Path, study: spec.Study) -> tables.Summary:
    url = f"sqlite:///{tmp_path}/c.db"
    study_obj = synthetic.create_study(store.open_storage(url, create=True), study)
    synthetic.add(study_obj, [
        synthetic.trial(study, {LOC: loc}, synthetic.record(seed, test_acc=acc))
        for loc, values in ACC.items() for seed, acc in enumerate(values)])
    return tables.summarize(store.load_study(store.open_storage(url, create=False), "cl"))


def welch(a: str, b: str) -> float:
    return float(stats.ttest_ind(ACC[a], ACC[b], equal_var=False).pvalue)


def test_verdicts_on_constructed_cases(tmp_path: Path) -> None:
    cases = [
        (claim("best", "before_pool"), "supported", welch("before_pool", "before_conv")),
        (claim("best", "before_conv"), "supported", welch("before_conv", "before_pool")),
        (claim("best", "none"), "not supported", welch("none", "before_pool")),
        (claim("better", "before_pool", "none"), "supported", welch("before_pool", "none")),
        (claim("better", "none", "before_pool"), "not supported", welch("none", "before_pool")),
        (claim("better", "before_pool", "before_conv"), "inconclusive",
         welch("before_pool", "before_conv")),
        (claim("better", "input", "none"), "inconclusive", float("nan")),
        (claim("similar", "before_pool", "before_conv"), "supported",
         welch("before_pool", "before_conv")),
        (claim("similar", "none", "before_pool"), "not supported", welch("none", "before_pool")),
        (claim("at_chance", "before_fc"), "supported", float("nan")),
        (claim("at_chance", "none"), "not supported", float("nan")),
        (claim("at_chance", "before_fc", tolerance=0.5, metric="val_acc"), "supported",
         float("nan")),
    ]
    summary = summary_for(tmp_path, study_with(*(c for c, _, _ in cases)))
    verdicts = claims.evaluate_all(summary)
    for (raw, expected, p), v in zip(cases, verdicts):
        assert v.verdict == expected, (raw, v.evidence)
        assert v.p_value == pytest.approx(p, nan_ok=True), raw
    assert welch("before_pool", "before_conv") > 0.05 > welch("none", "before_pool")
    assert verdicts[1].evidence.endswith("(not the best by mean, but within noise of it)")
    assert verdicts[2].evidence.endswith("(significantly worse)")
    assert verdicts[6].evidence.endswith("no test (n < 2)")
    assert verdicts[9].evidence == (
        "dropout_location=before_fc: test_acc 10 ± 1 (n=3), 95% CI [7.52, 12.5]; chance 10% "
        "± 5 points: mean inside")
    assert verdicts[10].evidence.startswith("dropout_location=none: test_acc 82 ± 2 (n=3)")


def test_readme_has_a_claims_section(tmp_path: Path) -> None:
    study = study_with(claim("best", "before_pool"), claim("at_chance", "before_fc"))
    summary = summary_for(tmp_path, study)
    text = write.readme(summary, [], ("md",))
    assert "## Claims" in text
    assert "| best before_pool | best | test_acc | **supported** | best by mean:" in text
    assert "| at_chance before_fc | at_chance | test_acc | **supported** |" in text
    (tmp_path / "b").mkdir()
    assert "## Claims" not in write.readme(summary_for(tmp_path / "b", study_with()), [],
                                           ("md",))


def test_claims_survive_the_store_and_the_note() -> None:
    study = study_with(claim("better", "before_pool", "none", metric="val_acc"),
                       claim("at_chance", "before_fc"))
    back = spec.from_dict(study.to_dict())
    assert back.claims == study.claims
    assert back.claims[1].tolerance == 5.0 and back.claims[0].metric == "val_acc"
    import tomllib

    from hpo import annotate

    raw = tomllib.loads(annotate.spec_toml(study.to_dict()))
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
     "got 'worst'"),
    ({"text": "x", "kind": "best", "config": {LOC: "none"}, "why": 1},
     "s.toml: claims[0]: unknown field 'why'; allowed: config, kind, metric, text, than, "
     "tolerance"),
    ({"text": "x", "kind": "best", "config": {LOC: "none"}, "metric": "acc"},
     "s.toml: claims[0].metric must be one of val_acc, val_loss, test_acc, test_loss, "
     "train_acc, train_loss, got 'acc'"),
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
    url = f"sqlite:///{tmp_path}/t.db"
    study_obj = synthetic.create_study(store.open_storage(url, create=True), study)
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
    summary = tables.summarize(store.load_study(store.open_storage(url, create=False), "cm"))
    t = summary.table.set_index("config")
    assert t.loc["lr=0.01", "epochs_to_target_mean"] == pytest.approx(6.5)
    assert t.loc["lr=0.01", "reached_target"] == 2
    assert t.loc["lr=0.1", "epochs_to_target_mean"] == pytest.approx(5.0)
    assert t.loc["lr=0.1", "reached_target"] == 1
    assert t.loc["lr=0.01", "epoch_seconds_mean"] == pytest.approx(0.5)
    shown = render.display_table(summary)
    assert list(shown["epochs to 50% val"]) == ["6.5 (2 of 2)", "5 (1 of 2)"]
    assert list(shown["time/epoch (s)"]) == ["0.5", "0.5"]
    assert tables.epochs_to_target([{"epoch": 1, "val_acc": 49.9}], 50) != 1
    assert tables.epoch_seconds([{"seconds": 1.0}, {"seconds": None}, {"seconds": 2.0}]) == 1.5


def test_no_target_no_column(tmp_path: Path) -> None:
    study = study_with()
    summary = summary_for(tmp_path, study)
    assert "epochs_to_target_mean" not in summary.table
    assert not any(c.startswith("epochs to") for c in render.display_table(summary).columns)
