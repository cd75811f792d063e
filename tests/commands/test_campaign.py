"""Reports that ship with their trials (`hpo report --trials`, `--check`), journal files cut
or garbled, and `hpo campaign`: budget, resume, exactly once under SIGKILL."""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from hpo.cli import main
from hpo.commands import parse_duration
from hpo.errors import HpoError
from tests.conftest import completed_runs, make_grid_study, start_hpo, wait_for

CLAIM = """
[[claims]]
text = "{text}"
kind = "better"
config = {{ "train.lr" = 0.002 }}
than = {{ "train.lr" = 0.001 }}
"""


def tiny_plan(tmp_path: Path, *, epochs: int = 1, repeats: int = 2, cells: int = 2,
              subset: int = 100, claim: str | None = None) -> tuple[Path, Path]:
    """A plan with one entry (a digits MLP over ``cells`` learning rates); returns the plan
    and the entry's report folder."""
    study = make_grid_study(tmp_path, "tiny", epochs=epochs, repeats=repeats, cells=cells,
                            subset=subset)
    if claim is not None:
        study.write_text(study.read_text() + CLAIM.format(text=claim))
    reports = tmp_path / "reports"
    reports.mkdir()
    plan = reports / "campaign.toml"
    plan.write_text(f'[[entry]]\nstudy = "{study}"\nout = "group"\njobs = 1\n'
                    'epoch_cpu_s = 0.05\n')
    return plan, reports / "group" / "tiny"


def journal_url(folder: Path) -> str:
    return f"journal:{folder / 'trials.journal'}"


def _files(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _restore(root: Path, files: dict[Path, bytes]) -> None:
    """Put ``root`` back as ``files`` holds it: files added removed, files changed or removed
    written again (folders that only a test made go too)."""
    folders = {q for p in files for q in p.parents}
    for path in sorted(root.rglob("*"), reverse=True):  # a folder's files before the folder
        if path.is_dir() and not path.is_symlink():
            if path not in folders:
                path.rmdir()
        elif path not in files:
            path.unlink()
    for path, data in files.items():
        if not path.is_file() or path.read_bytes() != data:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)


@pytest.fixture(scope="module")
def _finished_once(tmp_path_factory):
    """One finished campaign (a study file, its plan, its report folder) for the module's tests,
    with every file it left: (plan, folder, the campaign's stdout, the files)."""
    root = tmp_path_factory.mktemp("finished")
    plan, folder = tiny_plan(root, claim="lr 2e-3 beats 1e-3")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["campaign", "--plan", str(plan)]) == 0
    return plan, folder, out.getvalue(), _files(root)


@pytest.fixture
def finished(_finished_once):
    """A finished campaign: (plan, report folder, its stdout); the study file is
    ``study_file(plan)``. Built once per module: whatever a test changes under it (the study
    file, the trials, the report) is put back after the test, so each test gets it as the
    campaign left it."""
    plan, folder, out, files = _finished_once
    yield plan, folder, out
    _restore(plan.parent.parent, files)


def study_file(plan: Path) -> Path:
    return plan.parent.parent / "tiny.toml"


@pytest.fixture
def quick_heartbeats(monkeypatch):
    """What cli_env gives a subprocess `hpo`, for one run in this process: a trial left RUNNING
    by a worker that is gone turns stale after 3 s, not 60."""
    from hpo import store

    monkeypatch.setattr(store, "HEARTBEAT_INTERVAL_S", 1)
    monkeypatch.setattr(store, "GRACE_PERIOD_S", 3)


def _one_core() -> None:
    """A subprocess's preexec_fn: run it on one core. hpo then trains with one torch thread
    (cores // jobs); with two, beside other busy processes, a run of this tiny network took
    up to 30 times longer, and so unpredictably that no budget could be sized for it."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})


def start_on_one_core(*args: str, cwd: Path) -> subprocess.Popen:
    return start_hpo(*args, cwd=cwd, preexec_fn=_one_core)


def run_on_one_core(*args: str, cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    proc = start_on_one_core(*args, cwd=cwd)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.mark.slow
def test_campaign_runs_every_entry_then_renders_its_report(finished, capsys):
    plan, folder, out = finished
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md", "figures", "table.csv", "table.tex", "trials.journal"]
    assert out.splitlines()[-1] == (
        "left: 0 runs, 0.0 CPU-hours (measured per-run costs where trials exist, else the "
        "plan's epoch_cpu_s)")
    assert sum(completed_runs(journal_url(folder), "tiny").values()) == 4
    readme = (folder / "README.md").read_text()
    assert f"hpo report --trials {folder}" in readme  # outside the working folder: absolute
    assert main(["report", "--trials", str(folder), "--check"]) == 0
    assert capsys.readouterr().out == "1 reports re-render identically from their trials\n"
    # Again: nothing left to run, nothing rewritten.
    before = (folder / "trials.journal").stat().st_size
    assert main(["campaign", "--plan", str(plan)]) == 0
    assert (folder / "trials.journal").stat().st_size == before


@pytest.mark.slow
def test_each_trial_records_its_provenance_and_the_study_its_source(finished):
    from tests.conftest import trials

    _, folder, _ = finished
    record = trials(journal_url(folder), "tiny")[0].user_attrs["provenance"]
    assert set(record) == {"hpo", "git_commit", "torch", "optuna", "python", "device",
                           "threads", "machine", "study_sha256"}
    assert record["device"] == "cpu" and record["threads"] >= 1
    assert len(record["study_sha256"]) == 64


@pytest.mark.slow
def test_check_names_each_file_that_differs(finished, capsys):
    _, folder, _ = finished
    with (folder / "table.csv").open("a") as fh:
        fh.write("planted\n")
    (folder / "figures" / "stray.png").write_bytes(b"x")
    (folder / "table.tex").unlink()
    assert main(["report", "--trials", str(folder), "--check"]) == 1
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [
        f"{folder}/figures/stray.png: not rendered from the trials (delete it)",
        f"{folder}/table.csv: differs from a fresh render of its trials",
        f"{folder}/table.tex: missing (the trials render it)",
    ]
    assert captured.err.splitlines()[-1] == (
        "hpo: error: 3 committed report files differ from what their trials render; run `hpo "
        "report --trials FOLDER` and commit the result, or revert the study file that changed")


@pytest.mark.slow
def test_a_changed_claim_text_reaches_the_report(finished, capsys):
    plan, folder, _ = finished
    study = study_file(plan)
    study.write_text(study.read_text().replace("lr 2e-3 beats 1e-3", "the faster lr wins"))
    assert main(["report", "--trials", str(folder), "--check"]) == 1
    assert capsys.readouterr().out == (
        f"{folder}/README.md: differs from a fresh render of its trials\n")
    assert main(["report", "--trials", str(folder)]) == 0
    readme = (folder / "README.md").read_text()
    assert "the faster lr wins" in readme and "lr 2e-3 beats 1e-3" not in readme


@pytest.mark.slow
def test_a_changed_run_defining_key_is_refused_naming_both_values(finished, capsys):
    plan, folder, _ = finished
    study = study_file(plan)
    study.write_text(study.read_text().replace("epochs = 1", "epochs = 3"))
    before = (folder / "README.md").read_bytes()
    assert main(["report", "--trials", str(folder)]) == 1
    assert capsys.readouterr().err == (
        f"hpo: error: study 'tiny': its trials were run with other settings than {study} now "
        f"gives (epochs 1 -> 3); revert the study file, or run the study again under its new "
        f"settings (`hpo run --study {study} --name NEW`, or delete its trials and run `hpo "
        "campaign`)\n")
    assert (folder / "README.md").read_bytes() == before


@pytest.mark.slow
def test_a_grid_that_gains_a_choice_keeps_its_runs_and_runs_only_the_new_cells(finished,
                                                                                 capsys):
    """Another learning rate joins the finished study (a reading the seed leaves open): the
    campaign widens the trials file, keeps the 4 stored runs as they were and adds the 2 new
    ones to the same study; a plain `hpo run` on the old store says what to do instead."""
    from hpo import store

    plan, folder, _ = finished
    url = store.parse(journal_url(folder))
    before = {t.number: (t.params, t.values, t.user_attrs["seed"], t.datetime_complete)
              for t in store.load_study(store.open_storage(url, create=False), "tiny").trials}
    study = study_file(plan)
    study.write_text(study.read_text().replace("[0.001, 0.002]", "[0.001, 0.002, 0.004]"))
    assert main(["campaign", "--plan", str(plan)]) == 0
    said = capsys.readouterr().err
    assert f"campaign: {folder}: grid widened (train.lr + 0.004); its 4 stored trials kept" in said
    trials = store.load_study(store.open_storage(url, create=False), "tiny").trials
    assert {t.number: (t.params, t.values, t.user_attrs["seed"], t.datetime_complete)
            for t in trials if t.number in before} == before
    assert sorted((t.params["train.lr"], t.user_attrs["seed"]) for t in trials
                  if t.number not in before) == [(0.004, 0), (0.004, 1)]
    # (Counted on a storage opened after the rewrite: one opened before it, such as the
    # tests' cached readers, reads the new file at the old file's offsets.)
    done = [(t.user_attrs["cell"], t.user_attrs["seed"]) for t in trials
            if t.state.name == "COMPLETE"]
    assert len(done) == len(set(done)) == 6
    assert "0.004" in (folder / "README.md").read_text()


@pytest.mark.slow
def test_a_run_on_a_smaller_stored_grid_says_how_to_widen_it(tmp_path, capsys):
    from tests.conftest import make_grid_study

    two = make_grid_study(tmp_path, "tiny", cells=2, repeats=1)
    url = f"sqlite:///{tmp_path / 'hpo.db'}"
    assert main(["run", "--study", str(two), "--storage", url, "--no-progress"]) == 0
    make_grid_study(tmp_path, "tiny", cells=3, repeats=1)
    capsys.readouterr()
    assert main(["run", "--study", str(two), "--storage", url, "--no-progress"]) == 1
    assert capsys.readouterr().err == (
        "hpo: error: study 'tiny' in the store was run on a smaller grid (now train.lr + "
        "0.004); Optuna keeps a stored parameter's choices, so its new cells cannot run next "
        "to the stored runs: `hpo campaign` widens a report folder's trials file in place, or "
        "run it under a new name with --name NEW\n")


def test_a_folder_without_trials_is_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["report", "--trials", str(tmp_path / "empty")]) == 1
    assert capsys.readouterr().err == (
        f"hpo: error: {tmp_path / 'empty'} holds no trials.journal (nor does any folder below "
        "it); name a report folder that ships its trials\n")
    assert main(["report", "--check", "--study", "x"]) == 1
    assert capsys.readouterr().err == (
        "hpo: error: --check goes with --trials DIR (the report folders to check)\n")


@pytest.mark.slow
def test_trials_of_another_study_are_refused(finished, tmp_path, capsys):
    _, folder, _ = finished
    other = tmp_path / "other"
    other.mkdir()
    (other / "trials.journal").write_bytes((folder / "trials.journal").read_bytes())
    assert main(["report", "--trials", str(other)]) == 1
    assert capsys.readouterr().err == (
        f"hpo: error: {other}/trials.journal holds the trials of 'tiny', not of 'other': a "
        "trials file from another study; move it to its own report folder, or restore this one "
        "(git checkout)\n")
    assert sorted(p.name for p in other.iterdir()) == ["trials.journal"]


@pytest.mark.slow
def test_trials_written_by_a_newer_hpo_are_refused(finished, capsys):
    import optuna

    from hpo import store

    _, folder, _ = finished
    study = optuna.load_study(study_name="tiny",
                              storage=store.open_storage(store.parse(journal_url(folder)),
                                                         create=False))
    study.set_user_attr("hpo.versions", {"hpo": "9.0.0"})
    assert main(["report", "--trials", str(folder)]) == 1
    assert capsys.readouterr().err == (
        f"hpo: error: {folder}/trials.journal was written by hpo 9.0.0, newer than this hpo "
        "0.1.0; upgrade hpo (pip install -U hpo) to read it\n")


@pytest.mark.slow
def test_a_journal_cut_mid_line_reads_with_a_warning_and_a_writer_cuts_it(finished, capsys,
                                                                          quick_heartbeats):
    # The cut record is the last trial's end: the writer runs that trial again once it is stale.
    plan, folder, _ = finished
    path = folder / "trials.journal"
    whole = path.read_bytes()
    path.write_bytes(whole[:-40])
    cut = len(whole.rstrip(b"\n").split(b"\n")[-1]) + 1 - 40
    assert main(["show", "tiny", "--storage", journal_url(folder)]) == 0
    assert capsys.readouterr().err == (
        f"hpo: warning: {path} ends in a cut record ({cut} bytes, a write that did not "
        "finish): it is left out; every complete record is read\n")
    assert path.read_bytes() == whole[:-40]  # a reader changes nothing
    assert main(["campaign", "--plan", str(plan)]) == 0
    err = capsys.readouterr().err
    assert (f"hpo: warning: {path} ended in a cut record ({cut} bytes, a write that did not "
            "finish); cut off, every complete record kept") in err
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b"" and all(json.loads(line) for line in lines[:-1])
    assert main(["show", "tiny", "--storage", journal_url(folder)]) == 0
    assert "warning" not in capsys.readouterr().err


@pytest.mark.slow
def test_a_garbled_journal_line_is_one_error_and_the_file_untouched(finished, capsys):
    _, folder, _ = finished
    path = folder / "trials.journal"
    lines = path.read_bytes().split(b"\n")
    lines[3] = b'{"op_code": 1, garbage'
    path.write_bytes(b"\n".join(lines))
    before = path.read_bytes()
    for argv in (["show", "tiny", "--storage", journal_url(folder)],
                 ["report", "--trials", str(folder)]):
        assert main(argv) == 1
        assert capsys.readouterr().err == (
            f"hpo: error: {path} line 4 is not a journal record (garbled); hpo reads and writes "
            "nothing in it: restore the file from git or a backup\n")
    assert path.read_bytes() == before


@pytest.mark.parametrize(("text", "seconds"), [
    ("90m", 5400), ("2h", 7200), ("1h30m", 5400), ("45s", 45), ("120", 120), ("1.5h", 5400)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "2x", "-5m", "0", "h2"])
def test_bad_durations(text):
    with pytest.raises(HpoError) as info:
        parse_duration(text)
    assert str(info.value).startswith("--budget must be")


def test_bad_plans_are_one_line(tmp_path, capsys):
    plan = tmp_path / "campaign.toml"
    plan.write_text('[[entry]]\nstudy = "dropout_location"\nout = "x"\nspeed = 3\n')
    assert main(["campaign", "--plan", str(plan), "--status"]) == 1
    assert capsys.readouterr().err == (
        f"hpo: error: {plan}: entry 1: needs study and out, and takes only data_subdir, "
        "epoch_cpu_s, jobs, name, note, out, set, study (got speed)\n")
    assert main(["campaign", "--plan", str(tmp_path / "none.toml")]) == 1
    assert capsys.readouterr().err == (
        f"hpo: error: campaign plan {tmp_path / 'none.toml'} not found; pass --plan FILE\n")
    plan.write_text('[[entry]]\nstudy = "dropout_location"\nout = "x"\n'
                    '[[entry]]\nstudy = "dropout_location"\nout = "x"\n')
    assert main(["campaign", "--plan", str(plan), "--status"]) == 1
    assert capsys.readouterr().err == (
        f"hpo: error: {plan}: two entries write {tmp_path}/x/dropout_location; give one of "
        "them another name\n")


def test_the_shipped_plan_loads_and_names_every_committed_trials_file():
    from hpo import campaign
    from tests.conftest import ROOT

    entries = campaign.load_plan(ROOT / "reports" / "campaign.toml")
    planned = {e.folder.resolve() for e in entries}
    committed = {p.parent.resolve() for p in (ROOT / "reports").rglob("trials.journal")}
    assert committed <= planned


def test_only_takes_a_folder_as_status_shows_it_or_relative_to_the_plan(tmp_path, capsys):
    plan = tmp_path / "campaign.toml"
    plan.write_text('[[entry]]\nstudy = "dropout_location"\nout = "."\n'
                    '[[entry]]\nstudy = "dropout_location"\nout = "mnist"\n')
    digits, mnist = tmp_path / "dropout_location", tmp_path / "mnist" / "dropout_location"
    for only, folders in [(str(mnist), [mnist]), ("mnist/dropout_location", [mnist]),
                          ("mnist/dropout_location/", [mnist]),
                          ("dropout_location", [digits, mnist])]:
        assert main(["campaign", "--plan", str(plan), "--status", "--only", only]) == 0
        lines = capsys.readouterr().out.splitlines()[1:-1]
        assert [line.split()[0] for line in lines] == [str(f) for f in folders], only
    assert main(["campaign", "--plan", str(plan), "--status", "--only", "mnist/depth"]) == 1
    assert capsys.readouterr().err == ("hpo: error: --only: no entry 'mnist/depth' in the "
                                       "plan; `hpo campaign --status` lists them\n")


def test_status_counts_runs_and_costs_without_running(tmp_path, capsys):
    plan, folder = tiny_plan(tmp_path)
    assert main(["campaign", "--plan", str(plan), "--status"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split() == [str(folder), "new", "0/4", "0.00", "(planned)"]
    assert not folder.exists()


@pytest.mark.slow
def test_budget_stops_the_campaign_inside_it_and_the_next_run_finishes(tmp_path):
    # On one core (one torch thread): 20 runs of ~0.4 s each idle, ~1 s beside a busy 2-core
    # load. A 5 s budget ends part way through either way: the first run ends ~3 s after the
    # start idle (~5 runs done by the budget; a machine twice as fast would still have ~5 s of
    # runs left at 5 s), and loaded the budget may end before the first run does.
    plan, folder = tiny_plan(tmp_path, epochs=60, repeats=5, cells=4, subset=600)
    started = time.monotonic()
    first = run_on_one_core("campaign", "--plan", str(plan), "--budget", "5s", cwd=tmp_path,
                            timeout=200)
    took = time.monotonic() - started
    assert first.returncode == 0, first.stderr
    assert ": stopped by the budget, " in first.stdout + first.stderr, first.stdout
    # Not a timing target: a guard that the run in progress does not carry on to the end
    # (20 runs, ~8 s idle, far longer loaded). Starting Python and importing torch beside a
    # busy machine took up to ~15 s here, hence the slack.
    assert took < 5 + 30, took
    done = sum(completed_runs(journal_url(folder), "tiny").values())
    # Beside a busy machine (this suite, a campaign, a study) the budget has ended before the
    # first run did (2026-12-08): stopping in time is the point, not how far it got.
    assert done < 20, first.stdout
    second = run_on_one_core("campaign", "--plan", str(plan), cwd=tmp_path, timeout=400)
    assert second.returncode == 0, second.stderr
    counts = completed_runs(journal_url(folder), "tiny")
    assert len(counts) == 20 and set(counts.values()) == {1}
    assert (folder / "README.md").exists()


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_nothing_and_runs_each_once(tmp_path, monkeypatch):
    plan, folder = tiny_plan(tmp_path, epochs=8, repeats=3, cells=3, subset=600)
    journal = folder / "trials.journal"

    def trial_states_set() -> int:  # a trial started, ended or failed: records with op_code 6
        return journal.read_bytes().count(b'"op_code":6') if journal.exists() else 0

    rng = random.Random()
    for _ in range(3):
        before = trial_states_set()
        proc = start_on_one_core("campaign", "--plan", str(plan), cwd=tmp_path)
        # Killed at a random moment once it works on the trials (not while importing torch),
        # in the ~3 s they take here: in a trial, between two, in a store write (then the next
        # process waits out Optuna's 30 s for the journal lock it left), or after the last.
        wait_for(lambda: proc.poll() is not None or trial_states_set() > before, every=0.05)
        time.sleep(rng.uniform(0.0, 3.0))
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    last = run_on_one_core("campaign", "--plan", str(plan), cwd=tmp_path, timeout=600)
    assert last.returncode == 0, last.stderr
    counts = completed_runs(journal_url(folder), "tiny")
    assert len(counts) == 9 and set(counts.values()) == {1}, counts
    monkeypatch.chdir(tmp_path)  # the README names its folder relative to where it was made
    assert main(["report", "--trials", str(folder), "--check"]) == 0


def test_an_entry_deciding_its_seeds_is_not_done_until_its_looks_end(tmp_path):
    """Seeds until decided: all first seeds in, but no look has said why the seeds stopped."""
    import copy

    from hpo import campaign, spec, store
    from hpo.benchmarks import synthetic
    from hpo.reporting import committed
    from hpo.schema import END_ATTR

    reports = tmp_path / "reports"
    (reports / "g" / "ud").mkdir(parents=True)
    raw = {"name": "ud", "dataset": "digits", "epochs": 1, "repeats": 2, "sampler": "grid",
           "until_decided": True, "max_repeats": 4, "space": {"train.lr": [0.01, 0.1]},
           "claims": [{"text": "x", "kind": "better", "config": {"train.lr": 0.1},
                       "than": {"train.lr": 0.01}}]}
    path = tmp_path / "ud.toml"
    path.write_text('name = "ud"\ndataset = "digits"\nepochs = 1\nrepeats = 2\n'
                    'sampler = "grid"\nuntil_decided = true\nmax_repeats = 4\n'
                    '[space]\n"train.lr" = [0.01, 0.1]\n[[claims]]\ntext = "x"\n'
                    'kind = "better"\nconfig = { "train.lr" = 0.1 }\n'
                    'than = { "train.lr" = 0.01 }\n')
    study = spec.validate(copy.deepcopy(raw), "ud.toml")
    url = store.parse(f"journal:{reports / 'g' / 'ud' / 'trials.journal'}")
    study_obj = synthetic.create_study(store.open_storage(url, create=True), study)
    synthetic.add(study_obj, [synthetic.trial(study, {"train.lr": lr},
                                              synthetic.record(seed, test_acc=50.0 + seed
                                                               + (lr == 0.1)))
                              for lr in (0.01, 0.1) for seed in (0, 1)])
    (reports / "campaign.toml").write_text(f'[[entry]]\nstudy = "{path}"\nout = "g"\n')
    [entry] = campaign.load_plan(reports / "campaign.toml")
    row = campaign.progress(entry)
    assert (row.state, row.done, row.left) == ("deciding", 4, 1)
    study_obj.set_user_attr(END_ATTR, "all 1 claims decided")
    row = campaign.progress(entry)
    assert (row.state, row.done, row.left) == ("done", 4, 0)
    # Stopped for futility on 2 runs a configuration (as the rule once allowed): below
    # min_seeds (3) today's look adds seeds, so the entry is deciding again.
    study_obj.set_user_attr(END_ATTR, "claims 1 stopped for futility (at the observed "
                            "difference more than the cap of 4 seeds would be needed)")
    assert campaign.progress(entry).state == "deciding"
    # `hpo report --trials` reads the same rule: one run short, so it is skipped, not rendered.
    assert committed.runs_left(reports / "g" / "ud") == (1, 5)
    study_obj.set_user_attr(END_ATTR, "all 1 claims decided")
    assert committed.runs_left(reports / "g" / "ud") == (0, 4)
    # Reopened by a later rule: the seeds its look queued are work left, whatever the old end
    # said (mnist/weight_decay showed "done 39/39" with 9 runs queued).
    study_obj.enqueue_trial({"train.lr": 0.01}, user_attrs={"seed": 2})
    assert campaign.progress(entry).state == "deciding"
    assert committed.runs_left(reports / "g" / "ud") == (1, 5)


def test_markdown_without_status_is_one_line(tmp_path, capsys):
    plan, _ = tiny_plan(tmp_path)
    assert main(["campaign", "--plan", str(plan), "--markdown"]) == 1
    assert capsys.readouterr().err == (
        "hpo: error: --markdown goes with --status (a campaign run writes reports/CATALOGUE.md "
        "itself)\n")
