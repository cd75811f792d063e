"""Nothing brings the machine down, nothing is lost (issue 16).

--jobs is capped by the runs pending, the cores and the memory; every path a user gives fails
with one line; a store that goes away (PostgreSQL restart), fills up (a tmpfs) or whose run is
SIGKILLed at any moment ends with every (configuration, seed) finished exactly once; and no
report ever counts one run twice.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from hpo import cli, records, runner, spec, store
from hpo.errors import StoreError
from tests.conftest import (
    POSTGRES_URL,
    completed_runs,
    make_grid_study,
    postgres_lock,
    run_hpo,
    start_hpo,
    states,
    trials,
    wait_for,
)


@pytest.fixture(autouse=True)
def _no_env_store(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HPO_STORAGE", raising=False)


def _all_once(url: str, name: str, n_runs: int) -> None:
    runs = completed_runs(url, name)
    assert len(runs) == n_runs, runs
    assert set(runs.values()) == {1}, runs


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            return [int(c) for c in fh.read().split()]
    except OSError:
        return []


def _spawned(pid: int) -> list[int]:
    """Worker processes of `hpo run --jobs N` (multiprocessing spawn children)."""
    found = []
    for child in _children(pid):
        try:
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.append(child)
        except OSError:
            continue
    return found


# ---------------------------------------------------------------------------------------------
# 1. --jobs: never more workers than pending runs, usable cores (unless asked) or memory


@pytest.fixture
def machine(monkeypatch: pytest.MonkeyPatch):
    """A machine of 2 usable cores and ``available`` MB of memory."""

    def make(available: float | None = 10_000.0) -> None:
        monkeypatch.setattr(runner.plan, "usable_cores", lambda: 2)
        monkeypatch.setattr(runner.plan, "available_mb", lambda: available)

    return make


def test_huge_jobs_is_capped_to_the_cores_with_one_line(machine, capsys) -> None:
    machine()
    assert runner.cap_jobs(1000, 6, oversubscribe=False, peak_mb=None) == 2
    assert capsys.readouterr().err == (
        "hpo: --jobs 1000: starting 2 workers: 6 runs pending, 2 usable cores "
        "(--oversubscribe allows more), memory for 8 (1,000 MB each, estimated; "
        "10,000 MB available)\n")


def test_oversubscribe_is_still_capped_by_pending_runs(machine, capsys) -> None:
    machine()
    assert runner.cap_jobs(50, 5, oversubscribe=True, peak_mb=None) == 5
    assert capsys.readouterr().err == (
        "hpo: --jobs 50: starting 5 workers: 5 runs pending, memory for 8 (1,000 MB each, "
        "estimated; 10,000 MB available)\n")


def test_memory_uses_the_study_s_recorded_peak(machine, capsys) -> None:
    machine(available=2_500.0)
    assert runner.cap_jobs(4, 10, oversubscribe=True, peak_mb=900.0) == 2
    assert capsys.readouterr().err == (
        "hpo: --jobs 4: starting 2 workers: 10 runs pending, memory for 2 (900 MB each, the "
        "study's largest peak_rss_mb; 2,500 MB available)\n")


def test_jobs_within_every_limit_are_kept_without_a_word(machine, capsys) -> None:
    machine()
    assert runner.cap_jobs(2, 6, oversubscribe=False, peak_mb=None) == 2
    assert runner.cap_jobs(1, 0, oversubscribe=False, peak_mb=None) == 1
    machine(available=None)  # no /proc/meminfo: cores and pending only
    assert runner.cap_jobs(2, 6, oversubscribe=False, peak_mb=None) == 2
    assert capsys.readouterr().err == ""


def test_threads_default_to_the_cores_share_capped_by_omp_num_threads(
        machine, monkeypatch: pytest.MonkeyPatch) -> None:
    machine()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert [runner.threads_per_worker(jobs, 0) for jobs in (1, 2, 3)] == [2, 1, 1]
    assert runner.threads_per_worker(2, 4) == 4  # --threads wins
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert runner.threads_per_worker(1, 0) == 1
    assert runner.threads_per_worker(1, 2) == 2
    for ignored in ("", "0", "two", "-1"):  # what OpenMP ignores too
        monkeypatch.setenv("OMP_NUM_THREADS", ignored)
        assert runner.threads_per_worker(1, 0) == 2


def test_pending_runs_reads_the_store(tmp_path: Path) -> None:
    study = spec.load(str(make_grid_study(tmp_path, cells=3, repeats=2)))
    assert runner.pending_runs(study, set()) == 6
    cell = runner.queue.space_mod.cell_key(study.cells()[0])
    assert runner.pending_runs(study, {(cell, 0), (cell, 1), ("other", 0)}) == 4
    url = store.parse(f"sqlite:///{tmp_path / 'none.db'}")
    assert store.finished_runs(url, "tiny") == (set(), None)
    assert not (tmp_path / "none.db").exists()


@pytest.mark.slow
def test_huge_jobs_starts_no_more_workers_than_the_cap(tmp_path: Path) -> None:
    # The typo --jobs 100000 on a study of 2 runs: one line, at most 2 worker processes.
    study = make_grid_study(tmp_path, cells=2, repeats=1)
    url = f"sqlite:///{tmp_path / 'hpo.db'}"
    proc = start_hpo("run", "--study", str(study), "--storage", url, "--no-progress",
                     "--no-artifacts",
                     "--threads", "1", "--jobs", "100000", "--oversubscribe", cwd=tmp_path)
    most = 0
    while proc.poll() is None:
        most = max(most, len(_spawned(proc.pid)))
        time.sleep(0.05)
    _out, err = proc.communicate()
    assert proc.returncode == 0, err
    assert err.splitlines()[0].startswith(
        "hpo: --jobs 100000: starting 2 workers: 2 runs pending, memory for ")
    assert 1 <= most <= 2
    _all_once(url, "tiny", 2)


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["bench", "--jobs", "1000", "--repeats", "2", "--epochs", "1"],
         "hpo: --jobs 1000: starting 2 workers: 6 runs pending, 2 usable cores "
         "(--oversubscribe allows more), memory for 8 (1,000 MB each, estimated; 10,000 MB "
         "available)"),
        (["bench", "pruning", "--jobs", "1000", "--oversubscribe", "--sampler-seeds", "0"],
         "hpo: --jobs 1000: starting 4 workers: 4 runs pending, memory for 8 (1,000 MB each, "
         "estimated; 10,000 MB available)"),
    ],
    ids=["training", "pruning"],
)
def test_bench_jobs_is_capped_too(argv, line, machine, monkeypatch, tmp_path, capsys) -> None:
    from hpo.benchmarks import pruning, training
    from hpo.errors import HpoError

    machine()
    started: list[int] = []

    def record(*args: object, **kwargs: object) -> None:
        started.append(kwargs.get("parallel", args[2] if len(args) > 2 else None))
        raise HpoError("stopped before training")

    monkeypatch.setattr(training, "run_bench", record)
    monkeypatch.setattr(pruning, "run_bench", record)
    if "pruning" not in argv:  # a grid of 3 configurations (x 2 seeds: 6 runs)
        argv = [*argv, "--study", str(make_grid_study(tmp_path, cells=3))]
    assert cli.main([*argv, "--device", "cpu", "--out", str(tmp_path / "bench")]) == 1
    err = capsys.readouterr().err.splitlines()
    assert line in err
    assert err[-1] == "hpo: error: stopped before training"
    assert started == [int(line.split("starting ")[1].split()[0])]


# ---------------------------------------------------------------------------------------------
# 2. Paths: one line naming the path and the problem


@pytest.fixture(scope="module")
def one_run_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store holding study 'tiny' with one finished run (made once for the module)."""
    folder = tmp_path_factory.mktemp("store")
    study = spec.load(str(make_grid_study(folder, cells=1, repeats=1)))
    url = store.parse(f"sqlite:///{folder / 'hpo.db'}")
    runner.run(study, runner.RunOptions(storage_url=url, device="cpu", threads=1,
                                        progress=False))
    return folder / "hpo.db"


@pytest.fixture
def store_copy(one_run_store: Path, tmp_path: Path) -> Path:
    path = tmp_path / "copy.db"
    shutil.copy(one_run_store, path)
    return path


def _one_error(argv: list[str], capsys: pytest.CaptureFixture) -> str:
    code = cli.main(argv)
    err = capsys.readouterr().err
    assert code == 1, err
    assert len(err.splitlines()) == 1, err
    return err.rstrip("\n")


def test_store_that_is_a_folder(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "some_dir"
    folder.mkdir()
    url = f"sqlite:///{folder}"
    expected = f"hpo: error: store {folder} is a folder; give a file, e.g. sqlite:///{folder}/hpo.db"
    study = make_grid_study(tmp_path)
    assert _one_error(["run", "--study", str(study), "--storage", url, "--no-progress"],
                      capsys) == expected
    for argv in (["show", "tiny"], ["list"], ["report", "--study", "tiny"], ["export", "tiny"]):
        assert _one_error([*argv, "--storage", url], capsys) == expected
    assert _one_error(["run", "--study", str(study), "--storage", url, "--jobs", "2"],
                      capsys) == expected
    assert os.listdir(folder) == []


def test_store_in_a_folder_that_is_a_file(tmp_path: Path, capsys) -> None:
    study = make_grid_study(tmp_path)
    url = f"sqlite:///{study}/hpo.db"
    assert _one_error(["run", "--study", str(study), "--storage", url], capsys) == (
        f"hpo: error: cannot create store {study}/hpo.db: folder {study} does not exist")


def test_report_out_that_cannot_be_made(store_copy: Path, capsys) -> None:
    url = f"sqlite:///{store_copy}"
    assert _one_error(["report", "--study", "tiny", "--storage", url, "--no-artifacts",
                       "--out", "/proc/forbidden"], capsys) == (
        "hpo: error: /proc/forbidden: No such file or directory (it does not exist; create "
        "its folder or fix the path)")


def test_report_out_under_a_file(store_copy: Path, capsys) -> None:
    url = f"sqlite:///{store_copy}"
    assert _one_error(["report", "--study", "tiny", "--storage", url, "--no-artifacts",
                       "--out", str(store_copy)], capsys) == (
        f"hpo: error: {store_copy}/tiny/figures: Not a directory (a part of the path is a "
        "file, not a folder; fix the path)")


def test_export_output_that_is_a_folder(store_copy: Path, tmp_path: Path, capsys) -> None:
    url = f"sqlite:///{store_copy}"
    assert _one_error(["export", "tiny", "--storage", url, "--output", str(tmp_path)],
                      capsys) == (
        f"hpo: error: cannot write {tmp_path}: Is a directory; pick another --output")


def test_artifacts_under_a_file(store_copy: Path, tmp_path: Path, capsys) -> None:
    url = f"sqlite:///{store_copy}"
    study = make_grid_study(tmp_path, cells=1, repeats=1)
    assert _one_error(["run", "--study", str(study), "--storage", url, "--no-progress",
                       "--artifacts", f"{study}/art"], capsys) == (
        f"hpo: error: cannot create artifact folder {study}/art: Not a directory; pass "
        "--artifacts DIR or --no-artifacts")


def test_data_dir_that_is_missing(tmp_path: Path, capsys) -> None:
    url = f"sqlite:///{tmp_path / 'hpo.db'}"
    err = _one_error(["run", "--study", "dropout_location", "--dataset", "mnist", "--data-dir",
                      str(tmp_path / "nodata"), "--storage", url], capsys)
    assert err.startswith(f"hpo: error: dataset 'mnist' not found: {tmp_path}/nodata/MNIST/raw "
                          "lacks train-images-idx3-ubyte")
    assert not (tmp_path / "hpo.db").exists()


@pytest.mark.parametrize(
    ("exc", "line"),
    [
        (OSError(28, "No space left on device", "/mnt/x/hpo.db"),
         "hpo: error: /mnt/x/hpo.db: No space left on device (the disk is full; free space, "
         "then re-run the same command)"),
        (OSError(30, "Read-only file system", "/ro/out"),
         "hpo: error: /ro/out: Read-only file system (the file system is read-only; choose a "
         "path on a writable one)"),
        (PermissionError(13, "Permission denied", "/root/x"),
         "hpo: error: /root/x: Permission denied (permission denied; choose a path you may "
         "write, or change its permissions)"),
        (OSError(5, "Input/output error"), "hpo: error: Input/output error"),
    ],
    ids=["full", "read-only", "permission", "no-path"],
)
def test_any_os_error_is_one_line_not_an_internal_error(exc, line, monkeypatch, capsys) -> None:
    import hpo.commands.studies as command

    def fail(_args: object) -> int:
        raise exc

    monkeypatch.setattr(command, "main", fail)
    assert _one_error(["studies"], capsys) == line


# ---------------------------------------------------------------------------------------------
# 3a. One (configuration, seed) is never counted twice, whatever the store holds


def _add_duplicate(path: Path) -> int:
    """Copy the store's finished run as a second finished trial (as a lost lock could)."""
    import optuna

    storage = store.open_storage(store.parse(f"sqlite:///{path}"), create=False)
    study_obj = optuna.load_study(study_name="tiny", storage=storage)
    first = study_obj.get_trials(deepcopy=False)[0]
    attrs = dict(first.user_attrs, test_acc=first.user_attrs["test_acc"] + 50.0)
    copy = optuna.trial.create_trial(params=first.params, distributions=first.distributions,
                                     value=first.value, user_attrs=attrs)
    study_obj.add_trial(copy)
    return len(study_obj.get_trials(deepcopy=False)) - 1


def test_a_duplicate_run_is_counted_once_and_named(store_copy: Path, capsys) -> None:
    import optuna

    dup = _add_duplicate(store_copy)
    assert dup == 1
    url = f"sqlite:///{store_copy}"
    warning = ("hpo: warning: runs finished twice of study 'tiny'; counting the first finished "
               "and ignoring trial 1 (same configuration and seed as trial 0)")
    study_obj = optuna.load_study(study_name="tiny", storage=store.open_storage(store.parse(url)))
    first_acc = study_obj.trials[0].user_attrs["test_acc"]
    for trials_list in (None, records.fetch_trials(study_obj)):
        frame = records.trials_frame(study_obj, trials=trials_list)
        assert frame["number"].tolist() == [0]
        summary = records.config_summary(frame, records.varied_keys(records.study_spec(
            study_obj)))
        assert summary["n"].tolist() == [1]
        assert summary["mean"].tolist() == [first_acc]
    # One warning per read of the store (fetch_trials, trials_frame's own); none for a frame
    # of trials fetch_trials already de-duplicated.
    assert capsys.readouterr().err == (warning + "\n") * 2
    assert cli.main(["show", "tiny", "--storage", url]) == 0
    out, err = capsys.readouterr()
    assert err == warning + "\n"
    assert [line.split()[0] for line in out.splitlines()[1:]] == ["0"]
    assert cli.main(["export", "tiny", "--storage", url]) == 0
    out, err = capsys.readouterr()
    assert err == warning + "\n" and len(out.splitlines()) == 2


@pytest.mark.slow
def test_a_duplicate_queued_run_is_never_started(tmp_path: Path) -> None:
    # A lost lock (PostgreSQL restart) can let two reconciles queue one (cell, seed) twice;
    # the worker that pops the second finds the first and fails it instead of running it.
    import optuna

    study = spec.load(str(make_grid_study(tmp_path, cells=1, repeats=1)))
    url = store.parse(f"sqlite:///{tmp_path / 'hpo.db'}")
    opts = runner.RunOptions(storage_url=url, device="cpu", threads=1, progress=False)
    storage = store.open_storage(url, heartbeat=True)
    study_obj = runner.prepare_study(study, storage, opts, "cpu")
    queued = study_obj.get_trials(deepcopy=False)[0]
    study_obj.enqueue_trial(queued.system_attrs["fixed_params"], user_attrs=queued.user_attrs)
    assert runner.work(study, url, device="cpu", threads=1, data_dir=None,
                       artifacts=opts.artifacts_folder()) == 1
    after = optuna.load_study(study_name="tiny", storage=storage).get_trials(deepcopy=False)
    assert [t.state.name for t in after] == ["COMPLETE", "FAIL"]
    assert after[1].user_attrs["duplicate_of"] == 0
    _all_once(str(url), "tiny", 1)


# ---------------------------------------------------------------------------------------------
# 3b. A store that goes away: bounded retries, then one line


class OperationalError(Exception):
    """Named like SQLAlchemy's and the drivers' connection errors."""


def test_retry_waits_with_backoff_then_stops_with_one_line(monkeypatch, capsys) -> None:
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    clock = iter(range(0, 1000, 10))
    monkeypatch.setattr(time, "monotonic", lambda: float(next(clock)))
    retry = store.Retry(store.parse("postgresql://u:secret@db/hpo"), limit_s=35)
    lost = OperationalError("server closed the connection unexpectedly\nmore")
    with pytest.raises(StoreError) as caught:
        retry.call(lambda: (_ for _ in ()).throw(lost))
    assert str(caught.value) == (
        "store postgresql://u:***@db/hpo unreachable for 35 s (server closed the connection "
        "unexpectedly); re-run the same command to resume once it answers")
    assert slept == [0.5, 1.0, 2.0, 4.0]
    assert capsys.readouterr().err == (
        "hpo: warning: store postgresql://u:***@db/hpo failed (server closed the connection "
        "unexpectedly); retrying for up to 35 s\n")


def test_retry_carries_on_when_the_store_answers_again(monkeypatch, capsys) -> None:
    monkeypatch.setattr(time, "sleep", lambda _s: None)
    answers = [OperationalError("connection refused"), OperationalError("starting up"), 42]

    def flaky() -> int:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert store.Retry(store.parse("sqlite:///x.db")).call(flaky) == 42
    assert capsys.readouterr().err.splitlines() == [
        "hpo: warning: store sqlite:///x.db failed (connection refused); retrying for up to "
        "60 s",
        "hpo: warning: store sqlite:///x.db answers again; carrying on",
    ]


def test_a_full_store_is_not_retried() -> None:
    full = OperationalError("database or disk is full")
    with pytest.raises(StoreError) as caught:
        store.Retry(store.parse("sqlite:///x.db")).failed(full)
    assert str(caught.value) == (
        "cannot write to store sqlite:///x.db: database or disk is full; free space (or make "
        "it writable), then re-run the same command to resume")
    with pytest.raises(ValueError):
        store.Retry(store.parse("sqlite:///x.db")).failed(ValueError("a bug, not the store"))


# ---------------------------------------------------------------------------------------------
# 3c. PostgreSQL restarted under three workers (the server .ci/run starts)

PGBIN, PGDATA = os.environ.get("PGBIN"), os.environ.get("PGDATA")


@pytest.fixture
def restartable_postgres() -> Iterator[str]:
    if not POSTGRES_URL or not PGBIN or not PGDATA:
        pytest.skip("set HPO_TEST_POSTGRES_URL, PGBIN and PGDATA (as .ci/run does) to restart "
                    "the test database")
    if os.geteuid() != 0:
        pytest.skip("restarting the test database needs root (runuser -u postgres)")
    with postgres_lock(exclusive=True):  # no other test may be using the server it restarts
        yield POSTGRES_URL


def _restart_postgres() -> None:
    # -l: without a log file the server would hold pg_ctl's captured stdout open forever.
    subprocess.run(["runuser", "-u", "postgres", "--", f"{PGBIN}/pg_ctl", "-D", str(PGDATA),
                    "-l", f"{PGDATA}/log", "restart", "-w", "-m", "fast"],
                   check=True, capture_output=True, timeout=120)


def _finished(url: str, name: str) -> set[int]:
    return {t.number for t in trials(url, name) if t.state.name in ("COMPLETE", "PRUNED")}


def _restart_while_three_workers_run(tmp_path: Path, url: str, rng: random.Random) -> str:
    name = f"pg_restart_{uuid.uuid4().hex[:8]}"
    study = make_grid_study(tmp_path, name=name, cells=3, repeats=2, epochs=3, subset=300)
    args = ["run", "--study", str(study), "--storage", url, "--no-progress", "--no-artifacts",
            "--jobs", "3",
            "--oversubscribe", "--threads", "1"]
    proc = start_hpo(*args, cwd=tmp_path)
    wait_for(lambda: proc.poll() is not None or states(url, name)["RUNNING"] >= 1, timeout=180)
    time.sleep(rng.uniform(0.0, 2.0))  # somewhere in training, a pop, a tell or a reconcile
    before = _finished(url, name)
    _restart_postgres()
    _out, err = proc.communicate(timeout=300)
    assert "Traceback" not in err, err
    if proc.returncode != 0:  # a worker gave up: one line says so, the re-run resumes
        assert proc.returncode == 1, err
        assert err.splitlines()[-1].startswith("hpo: error: "), err
    again = run_hpo(*args, cwd=tmp_path, timeout=300)
    assert again.returncode == 0, again.stderr
    _all_once(url, name, 6)
    assert before <= _finished(url, name)  # no finished trial lost
    return err


@pytest.mark.slow
def test_postgres_restart_under_three_workers(tmp_path: Path, restartable_postgres: str) -> None:
    err = _restart_while_three_workers_run(tmp_path, restartable_postgres, random.Random(16))
    password = restartable_postgres.split("@")[0].rsplit(":", 1)[1]
    assert password not in err


@pytest.mark.slow
def test_postgres_restart_at_random_moments(tmp_path: Path, restartable_postgres: str) -> None:
    # One round per run, its moment drawn anew (it was three: ~25 s each for the same
    # behaviour; the fixed restart above covers the mid-trial one every run).
    _restart_while_three_workers_run(tmp_path, restartable_postgres, _drawn_rng())


# ---------------------------------------------------------------------------------------------
# 4. A full disk: an SQLite store on a small tmpfs that fills during the run


@pytest.fixture
def small_fs(tmp_path: Path):
    """An 8 MB tmpfs (mounting needs root; skipped with the reason where it fails)."""
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def _fill(folder: Path) -> Path:
    filler = folder / "filler"
    with open(filler, "wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError:
            pass
    return filler


@pytest.mark.slow
def test_full_disk_one_line_store_intact_and_resumable(tmp_path: Path, small_fs: Path) -> None:
    study = make_grid_study(tmp_path, cells=3, repeats=2, epochs=4, subset=300)
    path = small_fs / "hpo.db"
    url = f"sqlite:///{path}"
    args = ["run", "--study", str(study), "--storage", url, "--no-progress", "--threads", "1"]
    proc = start_hpo(*args, cwd=tmp_path)
    wait_for(lambda: states(url, "tiny")["COMPLETE"] >= 1, timeout=180)
    before = _finished(url, "tiny")
    filler = _fill(small_fs)
    _out, err = proc.communicate(timeout=180)
    assert proc.returncode == 1, err
    errors = [line for line in err.splitlines() if not line.startswith("hpo: warning: ")]
    assert errors in (
        [f"hpo: error: cannot write to store {url}: database or disk is full; free space (or "
         "make it writable), then re-run the same command to resume"],
        [f"hpo: error: cannot write to store {url}: disk I/O error; free space (or make it "
         "writable), then re-run the same command to resume"],
    ), err
    store.check_sqlite(path, create=False)  # still an intact SQLite store
    assert before <= _finished(url, "tiny")
    filler.unlink()
    again = run_hpo(*args, cwd=tmp_path, timeout=300)
    assert again.returncode == 0, again.stderr
    _all_once(url, "tiny", 6)


def test_read_only_file_system_is_one_line(tmp_path: Path, small_fs: Path, store_copy: Path,
                                           capsys) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], check=True)
    url = f"sqlite:///{store_copy}"
    assert _one_error(["report", "--study", "tiny", "--storage", url, "--no-artifacts",
                       "--out", str(small_fs / "reports")], capsys) == (
        f"hpo: error: {small_fs}/reports: Read-only file system (the file system is "
        "read-only; choose a path on a writable one)")
    study = make_grid_study(tmp_path)
    run = ["run", "--study", str(study), "--storage", f"sqlite:///{small_fs}/hpo.db"]
    assert _one_error(run, capsys) == (
        f"hpo: error: cannot create artifact folder {small_fs}/hpo-artifacts: Read-only file "
        "system; pass --artifacts DIR or --no-artifacts")
    assert _one_error([*run, "--no-artifacts"], capsys) == (
        f"hpo: error: cannot create store {small_fs}/hpo.db: folder {small_fs} is read-only")
    assert os.listdir(small_fs) == []


# ---------------------------------------------------------------------------------------------
# 6. SIGKILL `hpo run --jobs 2` at any moment; each re-run resumes; every run finishes once


def _kill_at(proc: subprocess.Popen, ready: object, delay: float, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while proc.poll() is None and not ready():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the moment to kill")
        time.sleep(0.05)
    time.sleep(delay)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)  # the parent and its workers at once
    proc.communicate()


def _sigkill_rounds(tmp_path: Path, rng: random.Random, rounds: int) -> Counter:
    study = make_grid_study(tmp_path, cells=3, repeats=2, epochs=3, subset=300)
    path = tmp_path / "hpo.db"
    url = f"sqlite:///{path}"
    args = ["run", "--study", str(study), "--storage", url, "--no-progress", "--no-artifacts",
            "--jobs", "2",
            "--oversubscribe", "--threads", "1"]
    moments = {
        "creation": lambda: True,
        "enqueue": lambda: len(trials(url, "tiny")) > 0,
        "training": lambda: states(url, "tiny")["RUNNING"] >= 1,
        "last write": lambda: states(url, "tiny")["COMPLETE"] >= 5,
    }
    delays = {"creation": (0.3, 4.0), "enqueue": (0.0, 0.05), "training": (0.0, 1.5),
              "last write": (0.0, 0.5)}
    killed: Counter = Counter()
    names = list(moments)
    for i in range(rounds):
        moment = names[i] if i < len(names) else rng.choice(names)
        before = _finished(url, "tiny") if path.exists() else set()
        proc = start_hpo(*args, cwd=tmp_path, start_new_session=True)
        _kill_at(proc, moments[moment], rng.uniform(*delays[moment]))
        killed[moment] += proc.returncode == -signal.SIGKILL
        if path.exists() and path.stat().st_size:
            store.check_sqlite(path, create=True)  # opens; a hot journal is rolled back
        assert before <= _finished(url, "tiny")  # no finished trial lost
    again = run_hpo(*args, cwd=tmp_path, timeout=300)
    assert again.returncode == 0, again.stderr
    _all_once(url, "tiny", 6)
    return killed


@pytest.mark.slow
def test_sigkill_at_creation_enqueue_training_and_last_write(tmp_path: Path) -> None:
    killed = _sigkill_rounds(tmp_path, random.Random(16), rounds=4)
    assert killed["creation"] + killed["enqueue"] + killed["training"] >= 2, killed


@pytest.mark.slow
def test_sigkill_at_random_moments(tmp_path: Path) -> None:
    # The 4 moments in turn, then 2 drawn ones, all at drawn delays: new ones every run (one
    # set per run; it was two, ~30 s each, for the same behaviour).
    _sigkill_rounds(tmp_path, _drawn_rng(), rounds=6)


def _drawn_rng() -> random.Random:
    """A generator seeded anew each run; pytest shows the seed of a failing run (a failure
    found becomes an explicit example: a test with random.Random(that seed))."""
    seed = random.randrange(2**32)
    print(f"random moments drawn with random.Random({seed})")
    return random.Random(seed)
