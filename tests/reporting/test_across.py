"""`hpo report --across-datasets`: claims × datasets from one hand-made store."""

from __future__ import annotations

import copy
from pathlib import Path

import optuna
import pytest

from hpo import cli, spec, store
from hpo.benchmarks import synthetic
from hpo.reporting import across
from hpo.store import StoreURL
from tests.conftest import cached_store

optuna.logging.set_verbosity(optuna.logging.WARNING)

LR = {
    "name": "lr", "dataset": "digits", "epochs": 2, "repeats": 3, "sampler": "grid",
    "model": {"channels": [4, 4], "padding": 1},
    "space": {"train.lr": [0.001, 0.1]},
    "claims": [{"text": "lr 0.001 beats 0.1", "kind": "better", "config": {"train.lr": 0.001},
                "than": {"train.lr": 0.1}}],
}
WD = {
    "name": "wd", "dataset": "digits", "epochs": 2, "repeats": 3, "sampler": "grid",
    "model": {"channels": [4, 4], "padding": 1},
    "space": {"train.weight_decay": [0.0, 0.5]},
    "claims": [{"text": "no weight decay beats 0.5", "kind": "better",
                "config": {"train.weight_decay": 0.0}, "than": {"train.weight_decay": 0.5}}],
}


def _add(storage: object, raw: dict, dataset: str, name: str, command: str,
         accs: dict[float, tuple[float, ...]]) -> None:
    raw = copy.deepcopy(raw)
    raw["dataset"] = dataset
    study = spec.validate(raw, "test")
    key = study.space[0].key
    study_obj = synthetic.create_study(storage, study, name=name, command=command)
    synthetic.add(study_obj, [synthetic.trial(study, {key: value}, synthetic.record(s, test_acc=a))
                              for value, values in accs.items() for s, a in enumerate(values)])


@pytest.fixture
def url(tmp_path: Path) -> StoreURL:
    """lr on digits (stored as `lr`) and on mnist (stored as `lr_on_mnist`, found through its
    command; seeds until decided); wd on digits only (stored as `wd_digits`); an unrelated
    study `other`."""
    return cached_store(tmp_path / "a.db", "across", _build)


def _build(url: StoreURL) -> None:
    storage = store.open_storage(url, create=True)
    good, bad = (95.0, 96.0, 97.0), (60.0, 61.0, 62.0)  # both train (not at chance)
    _add(storage, LR, "digits", "lr", "hpo run --study lr", {0.001: good, 0.1: bad})
    _add(storage, {**LR, "until_decided": True, "max_repeats": 6}, "mnist", "lr_on_mnist",
         "hpo run --study studies/lr.toml --dataset mnist --name lr_on_mnist",
         {0.001: bad, 0.1: good})
    _add(storage, WD, "digits", "wd_digits", "synthetic", {0.0: good, 0.5: bad})
    _add(storage, WD, "mnist", "other", "synthetic", {0.0: good, 0.5: bad})


def test_which_stored_study_is_a_run_of_which_file() -> None:
    wanted = ["lr", "wd"]
    assert across.study_of("lr", {"hpo.dataset": "mnist"}, wanted) == "lr"
    assert across.study_of("lr_mnist", {"hpo.dataset": "mnist"}, wanted) == "lr"
    assert across.study_of("lr_mnist", {"hpo.dataset": "digits"}, wanted) is None
    assert across.study_of("x", {"hpo.command": "hpo run --study=wd.toml --name x"},
                           wanted) == "wd"
    assert across.study_of("x", {"hpo.command": "hpo run --study lr2"}, wanted) is None


def test_table_rows_claims_columns_datasets(url: StoreURL) -> None:
    result = across.across_datasets(store.open_storage(url, create=False), ["lr", "wd"])
    assert result.datasets == ["digits", "mnist"]
    assert result.table.to_dict("index") == {
        "lr: lr 0.001 beats 0.1": {"digits": "supported", "mnist": "not supported"},
        "wd: no weight decay beats 0.5": {"digits": "supported", "mnist": "–"},
    }
    assert result.sources[("lr", "mnist")] == [
        "`lr_on_mnist`: 2 epochs × 3 seeds then seeds until decided (at most 6), 6 complete "
        "trials"]


def test_cli_writes_the_table(url: StoreURL, tmp_path: Path,
                              capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "reports"
    code = cli.main(["report", "--across-datasets", "lr,wd", "--storage", str(url),
                     "--out", str(out)])
    assert code == 0
    text = (out / "across_datasets" / "README.md").read_text()
    assert "| lr: lr 0.001 beats 0.1        | supported | not supported |" in text
    assert "| wd: no weight decay beats 0.5 | supported | –             |" in text
    assert "- wd on digits: `wd_digits`: 2 epochs × 3 seeds, 6 complete trials" in text
    assert "| lr: lr 0.001 beats 0.1        | supported | not supported |" in \
        capsys.readouterr().out


def test_cli_names_a_study_without_runs(url: StoreURL, tmp_path: Path,
                                        capsys: pytest.CaptureFixture) -> None:
    code = cli.main(["report", "--across-datasets", "lr,dropout_rate", "--storage", str(url),
                     "--out", str(tmp_path)])
    assert code == 1
    assert capsys.readouterr().err == (
        "hpo: error: no stored run of dropout_rate in this store; run e.g. `hpo run --study "
        "dropout_rate --dataset mnist --name dropout_rate_mnist` first\n")


def test_a_cell_lists_each_reading_where_readings_disagree() -> None:
    from hpo.reporting import claims

    claim = spec.Claim("a beats b", "better", (("model.dropout", 0.2),), (("model.dropout", 0.5),),
                       "test_acc")
    plain = claims.Verdict(claim, "test_acc", "supported", "evidence")
    assert across.cell_text(plain) == "supported"
    split = claims.Verdict(claim, "test_acc", "inconclusive", "evidence", by_reading=(
        ("optimizer=sgd", "supported"), ("optimizer=adam", "inconclusive")))
    assert across.cell_text(split) == (
        "inconclusive (optimizer=sgd: supported; optimizer=adam: inconclusive)")
    left_out = claims.Verdict(claim, "test_acc", "supported", "evidence", untrained=(
        "optimizer=sgd (a=1, optimizer=sgd did not train: training loss 2.31, accuracy 9.2%)",))
    assert across.cell_text(left_out) == "supported (optimizer=sgd: did not train)"
