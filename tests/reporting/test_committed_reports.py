"""Every committed report that ships its trials re-renders from them byte for byte (issue 22):
a report can never outlive the trials behind it. Runs from the repository root, as
`hpo report --trials reports --check` does."""

from __future__ import annotations

import os

import pytest

from hpo.reporting import committed
from tests.conftest import ROOT

ALL_TRIALS = sorted(p.parent.relative_to(ROOT)
                    for p in (ROOT / "reports").rglob("trials.journal"))
# A folder whose campaign entry is still running ships its trials so far, and no report yet.
FOLDERS = [f for f in ALL_TRIALS if (ROOT / f / "README.md").exists()]


@pytest.mark.slow
def test_a_folder_has_a_report_exactly_when_its_runs_are_complete():
    from hpo import campaign

    plan = ROOT / "reports" / "campaign.toml"
    done = {e.folder.resolve(): campaign.progress(e).left == 0
            for e in campaign.load_plan(plan)}
    for folder in ALL_TRIALS:
        has_report = (ROOT / folder / "README.md").exists()
        assert has_report == done[(ROOT / folder).resolve()], folder


@pytest.mark.slow
@pytest.mark.parametrize("folder", FOLDERS, ids=[str(f) for f in FOLDERS])
def test_committed_report_rerenders_from_its_trials(folder, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    monkeypatch.chdir(ROOT)  # the README names its folder relative to the repository
    assert committed.check(folder, ["md", "csv", "tex"]) == []


@pytest.mark.slow
def test_a_planted_difference_is_named(tmp_path, monkeypatch):
    """The check itself, on a copy of the smallest committed report: one changed byte."""
    import shutil

    import matplotlib

    matplotlib.use("Agg")
    smallest = min(FOLDERS, key=lambda f: os.path.getsize(ROOT / f / "trials.journal"))
    copy = tmp_path / smallest
    shutil.copytree(ROOT / smallest, copy)
    monkeypatch.chdir(tmp_path)
    assert committed.check(smallest, ["md", "csv", "tex"]) == []
    csv = copy / "table.csv"
    csv.write_bytes(csv.read_bytes().replace(b",", b";", 1))
    assert committed.check(smallest, ["md", "csv", "tex"]) == [
        f"{smallest}/table.csv: differs from a fresh render of its trials"]


@pytest.mark.slow
def test_the_catalogue_is_current():
    """reports/CATALOGUE.md is what the plan and the committed trials give now."""
    from hpo import campaign

    plan = ROOT / "reports" / "campaign.toml"
    rows = [campaign.progress(e) for e in campaign.load_plan(plan)]
    fresh = campaign.summary_markdown(rows, plan.parent)
    assert (ROOT / "reports" / "CATALOGUE.md").read_text(encoding="utf-8") == fresh, (
        "run `hpo campaign --status --markdown > reports/CATALOGUE.md` and commit it")


# The seeds whose open choices run as readings in several MNIST studies (issue 24, item 7):
# reports/mnist/readings_<seed>.md ranks each reading over all the seed's published accuracies.
SEED_STUDIES = {"R3": ["batch_size_lr", "full_batch", "momentum", "l2"],
                "R4": ["learning_rate", "weight_decay", "dropout_location", "dropout_rate",
                       "cnn_vs_mlp"]}


@pytest.mark.slow
@pytest.mark.parametrize("seed", sorted(SEED_STUDIES))
def test_each_seeds_readings_table_is_current(seed, monkeypatch):
    """Over the seed's complete report folders: `hpo report --seed-readings SEED
    --across-trials <those folders> --out reports/mnist` gives the committed file."""
    from hpo.reporting import seed_readings, tables

    monkeypatch.chdir(ROOT)
    folders = [ROOT / "reports" / "mnist" / s for s in SEED_STUDIES[seed]]
    summaries = [tables.summarize(committed.load_folder_study(f)) for f in folders
                 if (f / "README.md").exists()]
    fresh = seed_readings.markdown(seed, seed_readings.seed_readings(summaries))
    path = ROOT / "reports" / "mnist" / f"readings_{seed}.md"
    assert path.read_text(encoding="utf-8") == fresh, (
        f"run `hpo report --seed-readings {seed} --across-trials <its complete folders> --out "
        "reports/mnist` and commit it")


ACROSS = ["learning_rate", "weight_decay", "dropout_location", "dropout_rate"]


@pytest.mark.slow
def test_the_across_datasets_table_is_current(monkeypatch):
    """`hpo report --across-datasets learning_rate,weight_decay,dropout_location,dropout_rate
    --across-trials reports/mnist reports/across_datasets/runs --out reports` gives the committed
    table. Only the folders of those studies are read: no other folder is a run of them."""
    from hpo.reporting import across

    monkeypatch.chdir(ROOT)
    runs = ROOT / "reports" / "across_datasets" / "runs"
    folders = [ROOT / "reports" / "mnist" / s for s in ACROSS] + sorted(
        p.parent for p in runs.rglob("trials.journal"))
    result = across.across_datasets(committed.merged_storage(folders), ACROSS)
    path = ROOT / "reports" / "across_datasets" / "README.md"
    assert path.read_text(encoding="utf-8") == across.markdown(result), (
        "run `hpo report --across-datasets learning_rate,weight_decay,dropout_location,"
        "dropout_rate --across-trials reports/mnist reports/across_datasets/runs --out reports`"
        " and commit it")
