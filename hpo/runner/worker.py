"""One worker: pop trials, train them, tell their results; signals fail the trial in hand."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpo import store
from hpo.artifacts import save_trial_curve, save_trial_weights
from hpo.process import hold_stops, release_stops, signals_deferred, stop_signals
from hpo.runner.create import make_pruner, make_sampler, provenance
from hpo.runner.queue import DONE_STATES, is_original, next_trial, reconcile, running_elsewhere
from hpo.schema import PROVENANCE_ATTR
from hpo.spec import Study
from hpo.store import internals

if TYPE_CHECKING:
    import optuna
    import sqlalchemy


def _fail_quietly(study_obj: Any, trial: Any) -> None:
    from optuna.trial import TrialState

    with contextlib.suppress(Exception):
        study_obj.tell(trial, state=TrialState.FAIL, skip_if_finished=True)


def hold_stops_in_store(storage: optuna.storages.BaseStorage) -> None:
    """Stop signals wait while the store is in use by this thread: a database connection from
    checkout to checkin (a KeyboardInterrupt in a transaction can leave the connection holding
    SQLite's write lock, and then nobody can tell FAIL), a journal file while lines are
    appended (a cut line breaks the file for every reader). Bounded by the store's own
    limits (SQLite's busy timeout, PostgreSQL's connect timeout). Not the connection that
    holds PostgreSQL's store-wide lock: it stays out while a whole study is queued."""
    engine = getattr(storage, "engine", None)
    if engine is not None:
        from sqlalchemy import event

        # Keyed by the pool's own dict for the connection (the same from either side).
        def lock_only(conn: sqlalchemy.Connection, _cursor: object, statement: str,
                      *_rest: object) -> None:
            if "pg_advisory" in statement:
                release_stops(id(conn.connection.info))

        event.listen(engine, "checkout", lambda _dbapi, rec, _proxy: hold_stops(id(rec.info)))
        event.listen(engine, "checkin", lambda _dbapi, rec: release_stops(id(rec.info)))
        event.listen(engine, "before_cursor_execute", lock_only)
        return
    backend = internals.journal_backend(storage)
    append = getattr(backend, "append_logs", None)
    if append is not None:
        def append_held(logs: list[dict[str, Any]]) -> None:
            with signals_deferred():
                append(logs)

        backend.append_logs = append_held


def load_splits(study: Study, device: str, data_dir: str | None) -> Any:
    from hpo.nn import data as data_mod

    return data_mod.load(
        study.config["dataset"], data_dir=study.data_folder(data_dir), device=device,
        val_fraction=study.config["val_fraction"], train_subset=study.config["train_subset"],
        image_size=study.config["image_size"],
    )


def set_up_process(threads: int, device: str) -> None:
    import torch

    from hpo.nn.train import keep_freed_memory

    torch.set_num_threads(threads)
    if device == "cpu":
        keep_freed_memory()


def work(
    study: Study,
    url: store.StoreURL,
    *,
    device: str,
    threads: int,
    data_dir: str | None,
    artifacts: Path | None,
    on_trial: Callable[[Any], None] | None = None,
    worker: int = 0,
    deadline: float | None = None,
    on_idle: Callable[[Any, Study, store.StoreURL], int] | None = None,
) -> int:
    """One worker: run trials until the study has nothing left; returns trials run.
    ``artifacts``: the folder for the dashboard's figures (RunOptions.artifacts_folder); None:
    none.

    With nothing to start while other workers still run trials, it waits: if one of them
    dies, its trial turns stale after the grace period and this worker runs the cell again.
    So when any worker returns, the whole study is done, or ``deadline`` is too near to start
    another trial (its expected length: the mean wall time of the study's finished trials).
    """
    set_up_process(threads, device)
    retry = store.Retry(url)  # a database restarting as the worker starts is waited for
    study_obj = _open_study(study, url, worker, retry)
    splits = load_splits(study, device, data_dir)  # cached: free if the warm-up read it
    ran = 0
    made_by = provenance(study, device, threads)
    with stop_signals():
        while True:
            trial = None
            if deadline is not None and time.time() + expected_trial_s(study_obj) > deadline:
                return ran
            try:
                with signals_deferred():  # a popped trial is RUNNING: it must be in hand
                    trial = next_trial(study_obj, study, url)
                    if trial is not None:
                        trial.set_user_attr(PROVENANCE_ATTR, made_by)
                if trial is None:
                    if _wait_for_more(study_obj, study, url, on_idle, retry):
                        continue
                    return ran
                retry.succeeded()
                frozen = _run_one(study_obj, study, url, trial, splits, retry, artifacts)
            except Exception as exc:  # noqa: BLE001 - a store that went away: wait, carry on
                retry.failed(exc)  # re-raises what retrying cannot cure
                continue
            except BaseException:
                # Stopped between taking a trial and running it: fail it, never leave it
                # RUNNING (telling a trial _run_one already failed again is a no-op).
                if trial is not None:
                    _fail_quietly(study_obj, trial)
                raise
            if frozen is not None:
                ran += 1
                if on_trial is not None:
                    on_trial(frozen)


def _open_study(study: Study, url: store.StoreURL, worker: int,
                retry: store.Retry) -> optuna.Study:
    """This worker's own connection to the stored study, with its sampler and pruner."""
    storage = retry.call(store.open_storage, url, heartbeat=True)
    hold_stops_in_store(storage)
    study_obj = retry.call(store.load_study, storage, study.name)
    study_obj.sampler = make_sampler(study, worker)
    study_obj.pruner = make_pruner(study)
    return study_obj


def _wait_for_more(study_obj: optuna.Study, study: Study, url: store.StoreURL,
                   on_idle: Callable[[optuna.Study, Study, store.StoreURL], int] | None,
                   retry: store.Retry) -> bool:
    """Nothing to start now. False when nothing is left: no other worker runs a trial (one
    that dies turns stale and comes back) and the caller's hook queued none (seeds until
    decided returns the trials it queued). Else True, after a moment: an idle worker keeps
    `hpo run` waiting, so it looks again twice a second (one cheap query)."""
    if running_elsewhere(study_obj) == 0:
        return on_idle is not None and on_idle(study_obj, study, url) > 0
    retry.succeeded()
    time.sleep(max(0.2, min(0.5, store.HEARTBEAT_INTERVAL_S / 2)))
    return True


def expected_trial_s(study_obj: Any) -> float:
    """The mean wall time of the study's complete trials so far (0 before the first)."""
    times = [t.user_attrs.get("wall_time") for t in study_obj.get_trials(deepcopy=False)
             if t.state.name == "COMPLETE"]
    times = [float(x) for x in times if isinstance(x, (int, float))]
    return sum(times) / len(times) if times else 0.0


def _run_one(study_obj: Any, study: Study, url: store.StoreURL, trial: Any, splits: Any,
             retry: store.Retry | None = None, artifacts: Path | None = None) -> Any | None:
    """Run one popped trial and tell its state; None if another worker failed it meanwhile.

    The final tell is retried while the store is away (``retry``): a finished run is not lost.
    """
    import optuna
    from optuna.trial import TrialState

    from hpo.objective import run_trial
    from hpo.runner.liveness import Heartbeat

    try:
        with Heartbeat(internals.study_storage(study_obj), internals.trial_id(trial),
                       store.HEARTBEAT_INTERVAL_S):
            result = run_trial(trial, study, splits)
            save_trial_curve(trial, artifacts)  # before tell: attrs are frozen after
            if result.initial_state is not None:  # analysis = "flatness"
                save_trial_weights(trial, artifacts, result.initial_state,
                                            result.final_state)
                result.initial_state = result.final_state = None  # free them before the next
    except BaseException:
        # Ctrl-C, SIGTERM, a bug: the trial is failed, never left RUNNING, and its cell is
        # queued again by the next reconcile. Further signals are ignored until it is told.
        # A store that cannot take the FAIL (gone, full) leaves it RUNNING: its heartbeat
        # stops, so the next worker or run fails it after the grace period.
        _fail_quietly(study_obj, trial)
        raise
    try:
        frozen = (retry or store.Retry(url)).call(_tell_result, study_obj, study, trial, result)
    except optuna.exceptions.UpdateFinishedTrialError:
        print(f"hpo: warning: trial {trial.number} was failed by another worker (its heartbeat "
              "was late by more than the grace period); its result is dropped and its cell "
              "runs again", file=sys.stderr)
        return None
    if frozen.state == TrialState.COMPLETE and not study.is_grid and is_original(frozen):
        with store.exclusive(url, internals.study_storage(study_obj)):
            reconcile(study_obj, study)
    return frozen


def _tell_result(study_obj: Any, study: Study, trial: Any, result: Any) -> Any:
    """Tell the trial's outcome once; a retried tell whose first try did reach the store
    (the connection died after the commit) finds the trial finished and returns it."""
    import optuna
    from optuna.trial import TrialState

    from hpo.objective import objective_value

    try:
        if result.stopped == "pruned":
            return study_obj.tell(trial, state=TrialState.PRUNED)
        return study_obj.tell(trial, objective_value(study, result.summary()))
    except optuna.exceptions.UpdateFinishedTrialError:
        frozen = internals.study_storage(study_obj).get_trial(internals.trial_id(trial))
        if frozen.state.name in DONE_STATES:  # only this worker tells its trial a result
            return frozen
        raise
