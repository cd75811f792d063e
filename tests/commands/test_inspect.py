"""`hpo list`, `show`, `export`, `delete`: exact outputs and one-line errors on a made-up store.

The store is written with Optuna directly (fixed values and timestamps), so every line printed
is known in advance and no training runs.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import optuna
import pytest
from optuna.distributions import CategoricalDistribution
from optuna.trial import FrozenTrial, TrialState

from hpo import spec
from hpo.cli import main
from tests.conftest import cached_store

T0 = dt.datetime(2026, 11, 22, 9, 0, 0)
SECRET = "s3cr3t-pw"


def history(accs: list[float]) -> list[dict]:
    return [{"epoch": i + 1, "train_loss": 1.0 / (i + 1), "train_acc": a - 1, "val_loss": 0.5,
             "val_acc": a, "lr": 0.001, "seconds": 0.1} for i, a in enumerate(accs)]


def create_trial(*, state: TrialState, value: float | None = None, params: dict | None = None,
                 distributions: dict | None = None, user_attrs: dict | None = None,
                 intermediate_values: dict | None = None, datetime_start=None,
                 datetime_complete=None) -> FrozenTrial:
    """optuna.trial.create_trial with timestamps (which it does not take)."""
    return FrozenTrial(
        number=0, trial_id=0, state=state, value=value, params=params or {},
        distributions=distributions or {}, user_attrs=user_attrs or {}, system_attrs={},
        intermediate_values=intermediate_values or {}, datetime_start=datetime_start,
        datetime_complete=datetime_complete)


def make_store(path: Path, write_study) -> str:
    """Study 'tiny' (2 complete, 1 failed, 1 waiting) and a foreign study 'other'."""
    url = f"sqlite:///{path}"
    study = spec.load(str(write_study()))
    s = optuna.create_study(study_name="tiny", storage=url, direction="maximize")
    s.set_user_attr("hpo.spec", study.to_dict())
    s.set_user_attr("hpo.command",
                    f"hpo run --study tiny --storage postgresql://me:{SECRET}@db/x")
    s.set_metric_names(["val_acc"])
    dist = {"model.dropout_location": CategoricalDistribution(["none", "before_fc"])}
    for n, (loc, seed, acc) in enumerate([("none", 0, 80.0), ("before_fc", 0, 85.5)]):
        s.add_trial(create_trial(
            state=TrialState.COMPLETE, value=acc, params={"model.dropout_location": loc},
            distributions=dist, intermediate_values={1: acc - 5, 2: acc},
            user_attrs={"seed": seed, "cell": json.dumps({"model.dropout_location": loc}),
                        "val_acc": acc, "test_acc": acc - 1, "test_loss": 0.25 + n,
                        "epochs_run": 2, "diverged": False, "wall_time": 1.25,
                        "history": history([acc - 5, acc])},
            datetime_start=T0 + dt.timedelta(minutes=n),
            datetime_complete=T0 + dt.timedelta(minutes=n, seconds=30),
        ))
    s.add_trial(create_trial(
        state=TrialState.FAIL, params={"model.dropout_location": "none"}, distributions=dist,
        user_attrs={"seed": 1}, datetime_start=T0 + dt.timedelta(minutes=5),
        datetime_complete=T0 + dt.timedelta(minutes=5)))
    s.enqueue_trial({"model.dropout_location": "before_fc"}, user_attrs={"seed": 1})
    other = optuna.create_study(study_name="other", storage=url, direction="minimize")
    other.add_trial(create_trial(
        state=TrialState.COMPLETE, value=0.5, params={"x": 1.0},
        distributions={"x": optuna.distributions.FloatDistribution(0, 2)},
        datetime_start=T0, datetime_complete=T0 + dt.timedelta(hours=1)))
    return url


@pytest.fixture
def url(tmp_path, write_study) -> str:
    """The store's URL as `--storage` takes it."""
    return str(cached_store(tmp_path / "store.db", "inspect",
                            lambda url: make_store(url.path, write_study)))


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_counts_states_best_and_last_activity(url, capsys):
    code, out, err = run(capsys, "list", "--storage", url)
    assert code == 0 and err == ""
    assert out.splitlines() == [
        "STUDY  TRIALS  COMPLETE  PRUNED  FAIL  RUNNING  WAITING  BEST                LAST ACTIVITY",  # noqa: E501
        "tiny        4         2       0     1        0        1  val_acc 85.50 (#1)  2026-11-22 09:05:00",  # noqa: E501
        "other       1         1       0     0        0        0  value 0.50 (#0)     2026-11-22 10:00:00",  # noqa: E501
    ]


def test_list_json(url, capsys):
    code, out, _ = run(capsys, "list", "--storage", url, "--format", "json")
    rows = json.loads(out)
    assert rows[0] == {
        "name": "tiny", "direction": "maximize", "metric": "val_acc", "trials": 4,
        "states": {"COMPLETE": 2, "PRUNED": 0, "FAIL": 1, "RUNNING": 0, "WAITING": 1},
        "best_value": 85.5, "best_trial": 1, "last_activity": "2026-11-22 09:05:00",
    }
    assert rows[1]["direction"] == "minimize" and rows[1]["best_value"] == 0.5


def test_list_empty_store_says_so_on_stderr(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    optuna.storages.RDBStorage(url)  # creates the schema, no study
    code, out, err = run(capsys, "list", "--storage", url)
    assert (code, out) == (0, "")
    assert err == f"hpo: no studies in {url}; create one with `hpo run --study NAME`\n"
    assert run(capsys, "list", "--storage", url, "--format", "json")[1] == "[]\n"


def test_show_prints_one_line_per_trial(url, capsys):
    code, out, err = run(capsys, "show", "tiny", "--storage", url)
    assert code == 0 and err == ""
    assert out.splitlines() == [
        "#  STATE     CONFIGURATION               SEED  VAL_ACC  TEST_ACC  TEST_LOSS  EPOCHS  SECONDS",  # noqa: E501
        "0  COMPLETE  dropout_location=none          0    80.00     79.00     0.2500       2      1.2",  # noqa: E501
        "1  COMPLETE  dropout_location=before_fc     0    85.50     84.50     1.2500       2      1.2",  # noqa: E501
        "2  FAIL      dropout_location=none          1        -         -          -       -        -",  # noqa: E501
        "3  WAITING   dropout_location=before_fc     1        -         -          -       -        -",  # noqa: E501
    ]


def test_show_json_and_a_study_not_made_by_hpo(url, capsys):
    rows = json.loads(run(capsys, "show", "tiny", "--storage", url, "--format", "json")[1])
    assert rows[1]["params"] == {"model.dropout_location": "before_fc"}
    assert rows[1]["value"] == 85.5 and rows[1]["datetime_start"] == "2026-11-22 09:01:00"
    code, out, _ = run(capsys, "show", "other", "--storage", url)
    assert out.splitlines() == [
        "#  STATE     CONFIGURATION  SEED  VALUE  EPOCHS  SECONDS",
        "0  COMPLETE  x=1.0             -   0.50       -        -",
    ]


@pytest.mark.parametrize("command", ["show", "export", "delete"])
def test_missing_study_is_one_line_listing_the_studies(url, capsys, command):
    code, out, err = run(capsys, command, "nope", "--storage", url, *(["--yes"] * (
        command == "delete")))
    assert (code, out) == (1, "")
    assert err == "hpo: error: no study 'nope' in the store (studies there: tiny, other)\n"


@pytest.mark.parametrize("command", [["list"], ["show", "x"], ["export", "x"],
                                     ["delete", "x", "--yes"]])
def test_missing_store_is_one_line(tmp_path, capsys, command):
    missing = tmp_path / "missing.db"
    code, out, err = run(capsys, *command, "--storage", f"sqlite:///{missing}")
    assert (code, out) == (1, "")
    assert err == f"hpo: error: no store at {missing}; run `hpo run` first or pass --storage URL\n"
    assert not missing.exists()


def test_export_csv_one_row_per_trial(url, capsys):
    code, out, err = run(capsys, "export", "tiny", "--storage", url)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == (
        "number,state,model.dropout_location,seed,train_loss,train_acc,val_loss,val_acc,"
        "test_loss,test_acc,wall_time,n_params,epochs_run,diverged,stopped,n_classes,value,"
        "datetime_start,datetime_complete")
    assert lines[2] == ("1,COMPLETE,before_fc,0,,,,85.5,1.25,84.5,1.25,,2,False,,,85.5,"
                        "2026-11-22 09:01:00,2026-11-22 09:01:30")
    assert len(lines) == 5
    assert SECRET not in out


def test_export_json_has_history_and_masks_passwords(url, capsys, tmp_path):
    code, out, _ = run(capsys, "export", "tiny", "--storage", url, "--format", "json")
    data = json.loads(out)
    assert data["study"] == "tiny" and data["storage"] == url
    assert data["metric_names"] == ["val_acc"]
    assert data["trials"][0]["user_attrs"]["history"][1]["val_acc"] == 80.0
    assert data["trials"][0]["intermediate_values"] == {"1": 75.0, "2": 80.0}
    assert data["user_attrs"]["hpo.command"] == (
        "hpo run --study tiny --storage postgresql://me:***@db/x")
    assert SECRET not in out
    # --output writes the same text to a file and says so on stderr.
    target = tmp_path / "tiny.json"
    code, out2, err = run(capsys, "export", "tiny", "--storage", url, "--format", "json",
                          "-o", str(target))
    assert (code, out2) == (0, "")
    assert err == f"hpo: wrote 4 trials of 'tiny' to {target}\n"
    assert target.read_text() == out


def test_delete_with_yes_removes_study_and_its_artifact_files(url, tmp_path, capsys):
    from hpo.artifacts import artifact_store, upload_report_figures

    study_obj = optuna.load_study(study_name="tiny", storage=url)
    artifacts = artifact_store(tmp_path / "store-artifacts")
    figure = tmp_path / "fig.png"
    figure.write_bytes(b"png")
    upload_report_figures(study_obj, [figure], artifacts)
    kept = upload_report_figures(optuna.load_study(study_name="other", storage=url),
                                          [figure], artifacts)
    code, out, err = run(capsys, "delete", "tiny", "--storage", url, "--yes")
    assert (code, out) == (0, "")
    assert err == f"hpo: deleted study 'tiny' (4 trials, 1 artifact files) from {url}\n"
    assert [p.name for p in (tmp_path / "store-artifacts").iterdir()] == kept
    assert run(capsys, "list", "--storage", url, "--format", "json")[1].count('"name"') == 1


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("answer, deleted", [("y\n", True), ("yes\n", True), ("n\n", False),
                                             ("\n", False), ("", False)])
def test_delete_asks_on_a_terminal(url, capsys, monkeypatch, answer, deleted):
    monkeypatch.setattr("sys.stdin", FakeTty(answer))
    code, out, err = run(capsys, "delete", "tiny", "--storage", url)
    question = f"delete study 'tiny' (4 trials, 0 artifacts) from {url}? [y/N] "
    assert err.startswith(question)
    assert code == (0 if deleted else 1)
    if not deleted:
        assert err == question + "hpo: nothing deleted\n"
    names = optuna.get_all_study_names(storage=url)
    assert ("tiny" in names) is not deleted


def test_delete_without_terminal_or_yes_refuses(url, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    code, out, err = run(capsys, "delete", "tiny", "--storage", url)
    assert (code, out) == (1, "")
    assert err == ("hpo: error: refusing to delete without confirmation: stdin is not a "
                   "terminal; pass --yes to delete anyway\n")
    assert "tiny" in optuna.get_all_study_names(storage=url)
