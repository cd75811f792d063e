"""Many workers, many processes, crashes: every (cell, seed) completes exactly once.

These drive the real CLI in subprocesses, because processes are the point. Heartbeats beat every
second with a 3 s grace period (see ``conftest.cli_env``).
"""

from __future__ import annotations

import os
import signal
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import (
    completed_runs,
    make_grid_study,
    run_hpo,
    start_hpo,
    states,
    trials,
    wait_for,
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the device nodes are Linux's")
def test_the_parent_of_a_run_needs_no_torch_on_a_machine_without_a_gpu() -> None:
    # `hpo run --jobs N`'s parent picks the device and stores torch's version; importing torch
    # for that (~2 CPU s) competed with its workers' own imports on every run.
    import subprocess

    import torch

    code = ("import sys; from hpo.runner import create, plan; "
            "plan._ACCELERATOR_NODES = ('/nonexistent/nvidia0',); "
            "print(plan.pick_device('auto'), plan.pick_device('cpu'), create.torch_version(), "
            "'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True).stdout.split()
    assert out == ["cpu", "cpu", torch.__version__, "False"]


def _all_once(url: str, name: str, n_cells: int, n_seeds: int) -> None:
    runs = completed_runs(url, name)
    assert len(runs) == n_cells * n_seeds
    assert set(runs.values()) == {1}


def _start_together(argsets: list[list[str]], cwd: Path) -> list:
    procs = [start_hpo(*args, cwd=cwd) for args in argsets]
    outs = [p.communicate(timeout=180) for p in procs]
    for proc, (_out, err) in zip(procs, outs):
        assert proc.returncode == 0, err
        assert "lock" not in err.lower(), err
    return outs


@pytest.mark.slow
def test_three_processes_four_workers_on_one_sqlite_file(tmp_path: Path) -> None:
    # Three `hpo run` started at the same moment on a store that does not exist yet (one with
    # two workers): the store and study are created once and every cell runs once.
    study = make_grid_study(tmp_path, cells=4, repeats=2)
    url = f"sqlite:///{tmp_path / 'hpo.db'}"
    common = ["run", "--study", str(study), "--storage", url, "--no-progress", "--no-artifacts",
              "--threads", "1"]
    _start_together([common + ["--jobs", "2", "--oversubscribe"], common, common], tmp_path)
    _all_once(url, "tiny", 4, 2)
    assert set(states(url, "tiny")) == {"COMPLETE"}


@pytest.mark.slow
def test_three_processes_on_postgresql(tmp_path: Path, postgres_url: str) -> None:
    name = f"tiny_{uuid.uuid4().hex[:8]}"
    study = make_grid_study(tmp_path, name=name, cells=4, repeats=2)
    common = ["run", "--study", str(study), "--storage", postgres_url, "--no-progress",
              "--no-artifacts",
              "--threads", "1"]
    outs = _start_together([common, common, common], tmp_path)
    _all_once(postgres_url, name, 4, 2)
    assert set(states(postgres_url, name)) == {"COMPLETE"}
    password = postgres_url.split("@")[0].rsplit(":", 1)[1]
    assert all(password not in out + err for out, err in outs)


def _workers(pid: int) -> list[int]:
    """Worker processes of `hpo run --jobs N` (not multiprocessing's resource tracker)."""
    with open(f"/proc/{pid}/task/{pid}/children") as fh:
        children = [int(c) for c in fh.read().split()]
    return [c for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]


def _running(url: str, name: str) -> bool:
    counts = states(url, name)
    return counts["RUNNING"] >= 1 and counts["COMPLETE"] >= 1


@pytest.mark.slow
def test_journal_sigkill_a_worker_mid_trial_and_the_other_worker_redoes_the_cell(
    tmp_path: Path,
) -> None:
    # The journal has no Optuna heartbeats: hpo's own (a trial attribute) stand in.
    study = make_grid_study(tmp_path, epochs=40, subset=300, cells=3, repeats=2)
    url = f"journal:{tmp_path / 'runs.log'}"
    proc = start_hpo("run", "--study", str(study), "--storage", url, "--no-progress",
                     "--no-artifacts",
                     "--jobs", "2", "--oversubscribe", "--threads", "1", cwd=tmp_path)
    wait_for(lambda: _running(url, "tiny"), timeout=90)
    done_before = {t.number for t in trials(url, "tiny") if t.state.name == "COMPLETE"}
    victim = _workers(proc.pid)[0]
    os.kill(victim, signal.SIGKILL)
    _out, err = proc.communicate(timeout=120)
    # The surviving worker waited out the grace period and ran the dead worker's cell.
    assert proc.returncode == 1
    assert "1 of 2 workers failed (exit codes [-9])" in err
    _all_once(url, "tiny", 3, 2)
    after = {t.number: t.state.name for t in trials(url, "tiny")}
    assert all(after[n] == "COMPLETE" for n in done_before)
    assert list(after.values()).count("FAIL") == 1


@pytest.mark.slow
def test_sigkill_the_whole_run_then_the_next_run_redoes_the_cell(tmp_path: Path) -> None:
    study = make_grid_study(tmp_path, epochs=40, subset=300, cells=3, repeats=1)
    url = f"sqlite:///{tmp_path / 'hpo.db'}"
    args = ["run", "--study", str(study), "--storage", url, "--no-progress", "--no-artifacts",
            "--threads", "1"]
    proc = start_hpo(*args, cwd=tmp_path)
    wait_for(lambda: _running(url, "tiny"), timeout=90)
    done_before = {t.number for t in trials(url, "tiny") if t.state.name == "COMPLETE"}
    proc.kill()
    proc.communicate()
    started = time.monotonic()
    again = run_hpo(*args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert time.monotonic() - started > 3  # it waited for the grace period of the dead trial
    _all_once(url, "tiny", 3, 1)
    after = {t.number: t.state.name for t in trials(url, "tiny")}
    assert all(after[n] == "COMPLETE" for n in done_before)
    assert list(after.values()).count("FAIL") == 1


@pytest.mark.slow
def test_sigint_keeps_finished_trials_and_rerun_completes(tmp_path: Path) -> None:
    study = make_grid_study(tmp_path, epochs=40, subset=300, cells=3, repeats=2)
    url = f"sqlite:///{tmp_path / 'hpo.db'}"
    args = ["run", "--study", str(study), "--storage", url, "--no-progress", "--no-artifacts",
            "--threads", "1",
            "--jobs", "2", "--oversubscribe"]
    proc = start_hpo(*args, cwd=tmp_path)
    wait_for(lambda: _running(url, "tiny"), timeout=90)
    proc.send_signal(signal.SIGINT)  # to the parent alone: it must stop its workers itself
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert err.strip().endswith(
        "hpo: interrupted; finished trials are kept, re-run the same command to resume")
    interrupted = {t.number: t.state.name for t in trials(url, "tiny")}
    assert "RUNNING" not in interrupted.values()  # every trial in progress was told FAIL
    assert "FAIL" in interrupted.values()
    again = run_hpo(*args[:-3], cwd=tmp_path)  # resumed by one worker this time
    assert again.returncode == 0, again.stderr
    _all_once(url, "tiny", 3, 2)
    after = {t.number: t.state.name for t in trials(url, "tiny")}
    assert all(after[n] == s for n, s in interrupted.items() if s == "COMPLETE")


TUNING = """\
name = "tune"
question = "test tuning study"
dataset = "digits"
epochs = 1
repeats = 2
n_trials = 5
sampler = "random"
train_subset = 100

[model]
family = "mlp"

[space]
"train.lr" = { type = "float", low = 1e-4, high = 1e-1, log = true }
"""


@pytest.mark.slow
def test_tuning_n_trials_is_a_total_over_restarts_with_whole_seed_sets(tmp_path: Path) -> None:
    from hpo import runner, spec, store

    path = tmp_path / "tune.toml"
    path.write_text(TUNING)
    study = spec.load(str(path))
    url = f"sqlite:///{tmp_path / 'hpo.db'}"
    opts = runner.RunOptions(storage_url=store.parse(url), device="cpu", threads=1,
                             progress=False)
    for _ in range(2):  # the second run finds the budget spent
        runner.run(study, opts)
    done = [t for t in trials(url, "tune") if t.state.name == "COMPLETE"]
    # n_trials=5 with 2 seeds: 2 configurations x 2 seeds; a third would need 6.
    assert len(done) == 4
    by_cell = {}
    for t in done:
        by_cell.setdefault(t.user_attrs["cell"], set()).add(t.user_attrs["seed"])
    assert len(by_cell) == 2 and all(len(seeds) == 2 for seeds in by_cell.values())


@pytest.mark.slow
def test_parallel_workers_sample_different_configurations(tmp_path: Path) -> None:
    # Each worker seeds its sampler apart (sampler_seed + worker): with one seed for all,
    # two workers drew the same random configurations, trial for trial.
    path = tmp_path / "tune.toml"
    path.write_text(TUNING.replace("repeats = 2", "repeats = 1").replace("n_trials = 5",
                                                                        "n_trials = 8"))
    url = f"sqlite:///{tmp_path / 'hpo.db'}"
    done = run_hpo("run", "--study", str(path), "--storage", url, "--no-progress",
                   "--no-artifacts", "--jobs", "2",
                   "--oversubscribe", "--threads", "1", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lrs = [t.params["train.lr"] for t in trials(url, "tune")]
    assert len(lrs) == 8 and len(set(lrs)) == 8


@pytest.mark.slow
def test_processes_tuning_one_study_may_each_use_their_own_sampler_seed(tmp_path: Path) -> None:
    from hpo import runner, spec, store

    path = tmp_path / "tune.toml"
    path.write_text(TUNING.replace("repeats = 2", "repeats = 1"))
    url = f"sqlite:///{tmp_path / 'hpo.db'}"
    opts = runner.RunOptions(storage_url=store.parse(url), device="cpu", threads=1,
                             progress=False)
    runner.run(spec.load(str(path), ["n_trials=2"]), opts)
    runner.run(spec.load(str(path), ["n_trials=4", "sampler_seed=7"]), opts)
    lrs = [t.params["train.lr"] for t in trials(url, "tune")]
    assert len(lrs) == 4 and len(set(lrs)) == 4


@pytest.mark.slow
def test_workers_started_early_stop_when_the_study_cannot_be_prepared(tmp_path: Path) -> None:
    # --jobs N starts its workers before the study is prepared (they import torch meanwhile);
    # when preparing fails, they are called off: one error line, nothing run, no worker left.
    study = make_grid_study(tmp_path, cells=2, repeats=1)
    url = f"sqlite:///{tmp_path / 'hpo.db'}"
    common = ["run", "--study", str(study), "--storage", url, "--no-progress", "--threads", "1"]
    assert run_hpo(*common, cwd=tmp_path).returncode == 0
    started = time.monotonic()
    # --repeats 2: two runs pending, so --jobs 2 does start two workers (not capped to one).
    done = run_hpo(*common, "--jobs", "2", "--oversubscribe", "--epochs", "2", "--repeats", "2",
                   cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "hpo: error: study 'tiny' in the store was run with other settings (epochs 1 -> 2); "
        "run it under a new name with --name NEW, or `hpo delete tiny` first"
    ]
    assert time.monotonic() - started < 60
    assert len(trials(url, "tiny")) == 2
    assert _spawned_workers(tmp_path) == []


def _spawned_workers(cwd: Path) -> list[int]:
    """Live multiprocessing spawn children working in ``cwd`` (orphans included; workers of
    other runs on the machine, which work elsewhere, do not count)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
                where = os.readlink(entry / "cwd")
            except OSError:
                continue
            if b"spawn_main" in cmdline and b"multiprocessing" in cmdline and where == str(cwd):
                found.append(int(entry.name))
    return found


def test_a_stop_signal_while_a_trial_is_taken_fails_it_instead_of_leaving_it_running(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The race CI once hit under load: SIGTERM landing inside next_trial, after the store
    marked the popped trial RUNNING but before the worker held it."""
    import os

    import optuna

    from hpo import spec, store
    from hpo.runner import worker
    from hpo.runner.create import prepare_study
    from hpo.runner.plan import RunOptions

    study = spec.load(str(make_grid_study(tmp_path, cells=2, repeats=1)))
    url = store.parse(f"sqlite:///{tmp_path / 'hpo.db'}")
    prepare_study(study, store.open_storage(url), RunOptions(storage_url=url), "cpu")
    real_next = worker.next_trial

    def next_then_signal(*args: object) -> object:
        trial = real_next(*args)
        os.kill(os.getpid(), signal.SIGTERM)  # arrives while the popped trial is RUNNING
        return trial

    monkeypatch.setattr(worker, "next_trial", next_then_signal)
    with pytest.raises(KeyboardInterrupt):
        worker.work(study, url, device="cpu", threads=1, data_dir=None, artifacts=None)
    states = [t.state.name for t in optuna.load_study(
        study_name="tiny", storage=str(url)).get_trials(deepcopy=False)]
    assert sorted(states) == ["FAIL", "WAITING"]


# ---------------------------------------------------------------------------------------------
# Ctrl-C of `hpo run --jobs 2` at any moment (issue 26, item 7): once printed a traceback
# ("OSError: Signal 15 ignored due to race condition", a KeyboardInterrupt in a spawning
# worker's imports or in a finalizer), left trials RUNNING, and under a double Ctrl-C at
# start-up exited 1 ("2 of 2 workers failed (exit codes [130, 130])").

INTERRUPTED = "hpo: interrupted; finished trials are kept, re-run the same command to resume"


def _store_states(db: Path) -> dict[str, int]:
    """Trial states by count, read with sqlite3 (cheap enough to poll from many threads)."""
    import sqlite3

    if not db.exists():
        return {}
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
        try:
            return dict(con.execute("SELECT state, COUNT(*) FROM trials GROUP BY state"))
        finally:
            con.close()
    except sqlite3.Error:  # not created yet
        return {}


def _ctrl_c_round(folder: Path, moment: str, how: str, kind: str, seed: int) -> str:
    """One `hpo run --jobs 2` on a ``kind`` store in a session of its own, Ctrl-C'd ``how`` at
    ``moment``: "once" or "twice" as a terminal does it (SIGINT to the whole process group:
    the parent and its workers), "workers": SIGINT to the workers alone (`kill -INT`, or a
    Ctrl-C the parent missed). Returns what went wrong, or ""."""
    import random

    rng = random.Random(seed)
    folder.mkdir()
    study = make_grid_study(folder, epochs=40, subset=300, cells=2, repeats=2)
    url = {"sqlite": f"sqlite:///{folder / 'hpo.db'}",
           "journal": f"journal:{folder / 'runs.log'}"}[kind]

    def running() -> int:
        if kind == "sqlite":
            return _store_states(folder / "hpo.db").get("RUNNING", 0)
        return states(url, "tiny")["RUNNING"]

    proc = start_hpo("run", "--study", str(study), "--storage", url, "--no-progress", "--jobs",
                     "2", "--oversubscribe", "--threads", "1", "--no-artifacts", cwd=folder,
                     start_new_session=True)
    ready = {"start-up": lambda: _workers(proc.pid),  # spawned: importing, warming up, queueing
             "mid-trial": lambda: running() >= 1}[moment]
    deadline = time.monotonic() + 120
    while proc.poll() is None and not ready() and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(rng.uniform(0.0, 1.5 if moment == "start-up" else 0.3))
    for _ in range(2 if how == "twice" else 1):
        if proc.poll() is None:
            for pid in _workers(proc.pid) if how == "workers" else [-proc.pid]:
                os.kill(pid, signal.SIGINT)  # -pid: the process group
        time.sleep(rng.uniform(0.01, 0.2))
    _out, err = proc.communicate(timeout=120)
    lines = err.strip().splitlines()
    left = running()
    what = f"{moment}, {how}, {kind} (seed {seed}): exit {proc.returncode}"
    if proc.returncode != 130 or "Traceback" in err or "Exception ignored" in err:
        return f"{what}, stderr:\n{err}"
    if not lines or lines[-1] != INTERRUPTED or any("error" in line for line in lines):
        return f"{what}, stderr:\n{err}"
    if left or _spawned_workers(folder):
        return f"{what}: {left} trials left RUNNING, workers {_spawned_workers(folder)}"
    return ""


@pytest.mark.slow
def test_ctrl_c_at_any_moment_of_two_workers_exits_130_with_one_line(tmp_path: Path) -> None:
    """Start-up (workers spawning, importing, the study being queued), mid-trial, twice in
    quick succession, and to the workers alone, each a few times: exit 130, one line, no
    traceback, no trial RUNNING, no worker left. The rounds run at once, each in its own
    folder and store, so that the test takes about as long as its slowest round."""
    import random
    from concurrent.futures import ThreadPoolExecutor

    rounds = [("start-up", "once", "sqlite"), ("start-up", "twice", "sqlite"),
              ("start-up", "twice", "journal"), ("start-up", "once", "sqlite"),
              ("mid-trial", "once", "sqlite"), ("mid-trial", "twice", "sqlite"),
              ("mid-trial", "twice", "journal"), ("mid-trial", "workers", "sqlite")]
    with ThreadPoolExecutor(len(rounds)) as pool:
        # New delays every run (the seed is in the message of a round that fails).
        problems = [pool.submit(_ctrl_c_round, tmp_path / str(i), *r, random.randrange(2**32))
                    for i, r in enumerate(rounds)]
        assert [p for p in (r.result() for r in problems) if p] == []
