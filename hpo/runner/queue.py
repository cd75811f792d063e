"""The queue: every (configuration, seed) a WAITING trial, popped by exactly one worker;
reconcile re-queues what did not finish, and stale RUNNING trials (dead workers) are failed."""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Mapping
from typing import Any

from hpo import listvalues, store
from hpo import space as space_mod
from hpo.process import signals_deferred
from hpo.schema import DONE_STATES, PENDING_STATES, TARGETS_ATTR
from hpo.spec import Study
from hpo.store import internals

# Queueing costs one store transaction per run: from this many runs on, one line says that
# it takes a while, and another every QUEUE_PROGRESS_S seconds how far it is.
QUEUE_NOTE_RUNS = 500
QUEUE_PROGRESS_S = 10.0


def state_name(trial: Any) -> str:
    return trial.state.name


def _run_key(trial: Any) -> tuple[str, int] | None:
    attrs = trial.user_attrs
    if "cell" in attrs and "seed" in attrs:
        return attrs["cell"], int(attrs["seed"])
    params = trial.system_attrs.get("fixed_params")
    if params is not None and "seed" in attrs:
        return space_mod.cell_key(params), int(attrs["seed"])
    return None



def targets(study_obj: Any) -> dict[str, int]:
    """Seeds until decided: the cells whose seed count a look raised above repeats."""
    return dict(study_obj.user_attrs.get(TARGETS_ATTR) or {})


def cell_seeds(study: Study, wanted: Mapping[str, int], cell: Mapping[str, Any]) -> list[int]:
    """The seeds one grid cell should have: repeats, or its until-decided target if higher."""
    n = max(int(study.config["repeats"]), int(wanted.get(space_mod.cell_key(cell), 0)))
    return [study.config["seed"] + r for r in range(n)]


def reconcile(study_obj: Any, study: Study) -> int:
    """Queue every (cell, seed) that should exist and is neither done nor pending; returns count.

    Grid: every cell on every seed. Tuning: the other seeds of each completed configuration.
    Must run under ``store.exclusive``: two reconciles at once would queue a cell twice.
    """
    trials = study_obj.get_trials(deepcopy=False)
    if study.is_grid:
        # Seeds until decided raise some cells' seed counts (stored, so every worker agrees).
        raised = targets(study_obj)
        wanted = [(listvalues.encoded(cell), space_mod.cell_key(cell), seed, None)
                  for cell in study.cells() for seed in cell_seeds(study, raised, cell)]
    else:
        wanted = _missing_repeats(trials, study)
    covered = set()
    for trial in trials:
        key = _run_key(trial)
        if key is not None and state_name(trial) in DONE_STATES + PENDING_STATES:
            covered.add(key)
    todo = []
    for params, cell, seed, repeat_of in wanted:
        if (cell, seed) not in covered:
            covered.add((cell, seed))
            todo.append((params, cell, seed, repeat_of))
    _enqueue(study_obj, todo)
    return len(todo)


def _enqueue(study_obj: Any, todo: list[tuple[Any, str, int, int | None]]) -> None:
    """Queue each run as a WAITING trial (one store transaction each, a few to tens of ms:
    minutes for many thousands, so a large queue says so and shows its progress). A stop
    signal waits for the run being queued: what is queued is whole, the rest is queued by the
    next run of the same command."""
    import optuna

    note = len(todo) >= QUEUE_NOTE_RUNS
    if note:
        print(f"hpo: queueing {len(todo):,} runs (configuration x seed) of study "
              f"{study_obj.study_name!r}; this takes a while (Ctrl-C stops it, the same "
              "command resumes)", file=sys.stderr, flush=True)
    last = time.monotonic()
    for done, (params, cell, seed, repeat_of) in enumerate(todo, 1):
        attrs: dict[str, Any] = {"cell": cell, "seed": seed}
        if repeat_of is not None:
            attrs["repeat_of"] = repeat_of
        with signals_deferred(), warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study_obj.enqueue_trial(params, user_attrs=attrs)
        if note and time.monotonic() - last >= QUEUE_PROGRESS_S:
            print(f"hpo: queued {done:,} of {len(todo):,} runs", file=sys.stderr, flush=True)
            last = time.monotonic()


def is_original(trial: Any) -> bool:
    """A tuning trial whose configuration the sampler chose (not a queued repeat)."""
    return "repeat_of" not in trial.user_attrs


def _missing_repeats(trials: list[Any], study: Study) -> list[tuple[Any, str, int, int]]:
    wanted = []
    for trial in trials:
        if is_original(trial) and state_name(trial) == "COMPLETE":
            params = _decoded_params(study, trial)
            for seed in study.seeds()[1:]:
                wanted.append((listvalues.encoded(params), space_mod.cell_key(params), seed,
                               trial.number))
    return wanted


def pop_waiting(study_obj: Any) -> Any | None:
    """Take one queued trial, or None. The storage's state check makes the take exactly-once."""
    import optuna
    from optuna.trial import TrialState

    storage = internals.study_storage(study_obj)
    native_heartbeat = bool(getattr(storage, "heartbeat_interval", None))
    for frozen in study_obj.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        try:
            if native_heartbeat:
                # Optuna never counts a RUNNING trial without a heartbeat row as stale: beat
                # before taking it, so a worker killed right after the take is still noticed.
                storage.record_heartbeat(internals.trial_id(frozen))
            if not storage.set_trial_state_values(internals.trial_id(frozen),
                                                  state=TrialState.RUNNING):
                continue
            other = _duplicate_of(study_obj, frozen)
            if other is None:
                return optuna.Trial(study_obj, internals.trial_id(frozen))
            storage.set_trial_user_attr(internals.trial_id(frozen), "duplicate_of", other)
            storage.set_trial_state_values(internals.trial_id(frozen), state=TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue
    return None


def _duplicate_of(study_obj: Any, taken: Any) -> int | None:
    """The number of another trial of the same (cell, seed) that makes ``taken`` redundant.

    The store-wide lock keeps a cell from being queued twice, except when the lock is lost
    (a PostgreSQL restart drops session locks silently). This check after the take closes
    that gap: another trial of the run that is done or running, or queued before this one,
    wins. Of two taken at once, the later check sees the other RUNNING, so at most one runs
    (both may yield; the next reconcile queues the run again).
    """
    key = _run_key(taken)
    if key is None:
        return None
    for t in study_obj.get_trials(deepcopy=False):
        if internals.trial_id(t) == internals.trial_id(taken) or _run_key(t) != key:
            continue
        state = state_name(t)
        if state in DONE_STATES or state == "RUNNING" or (
                state == "WAITING" and internals.trial_id(t) < internals.trial_id(taken)):
            return t.number
    return None


def budget_used(trials: list[Any], study: Study) -> int:
    """Trials that count against a tuning study's n_trials, the promised repeats included.

    Failed trials are not counted (the budget is retried); a configuration being run or
    completed reserves its other seeds, so that workers elsewhere do not sample past n_trials
    while its repeats are not queued yet.
    """
    n_seeds = len(study.seeds())
    live = [t for t in trials if state_name(t) in DONE_STATES + PENDING_STATES]
    repeats: dict[int, int] = {}
    for t in live:
        if not is_original(t):
            repeats[t.user_attrs["repeat_of"]] = repeats.get(t.user_attrs["repeat_of"], 0) + 1
    reserved = sum(
        max(0, n_seeds - 1 - repeats.get(t.number, 0))
        for t in live if is_original(t) and state_name(t) in ("COMPLETE", "RUNNING", "WAITING")
    )
    return len(live) + reserved


def can_sample(trials: list[Any], study: Study) -> bool:
    """A new configuration is sampled only while all of its seeds fit in n_trials."""
    n_seeds = len(study.seeds())
    return budget_used(trials, study) + n_seeds <= max(study.config["n_trials"], n_seeds)


def remaining(study_obj: Any, study: Study) -> int:
    trials = study_obj.get_trials(deepcopy=False)
    if study.is_grid:
        return sum(1 for t in trials if state_name(t) in PENDING_STATES)
    n_seeds = len(study.seeds())
    done = sum(1 for t in trials if state_name(t) in DONE_STATES)
    budget = max(study.config["n_trials"] // n_seeds * n_seeds, n_seeds)
    return max(0, budget - done)


def next_trial(study_obj: Any, study: Study, url: store.StoreURL) -> Any | None:
    """The next trial this worker should run, or None when nothing can be started now."""
    trial = pop_waiting(study_obj)
    if trial is not None:
        return trial
    reclaim_stale(study_obj)
    with store.exclusive(url, internals.study_storage(study_obj)):
        if reconcile(study_obj, study) > 0:
            pass  # popped below, outside the lock
        elif study.is_grid or not can_sample(study_obj.get_trials(deepcopy=False), study):
            return None
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "heartbeat is supposed to be used with optimize"
                trial = study_obj.ask()
            backend = internals.study_storage(study_obj)
            if getattr(backend, "heartbeat_interval", None):
                backend.record_heartbeat(internals.trial_id(trial))
            return trial
    return pop_waiting(study_obj)


def reclaim_stale(study_obj: Any) -> None:
    """Fail RUNNING trials whose worker stopped beating more than the grace period ago.

    RDB storages: Optuna's heartbeats. Storages without them (the journal file): hpo's own
    heartbeat attribute, else the trial's start time. A failed trial's cell is queued again by
    the next reconcile.
    """
    import optuna
    from optuna.trial import TrialState

    from hpo.runner.liveness import HEARTBEAT_ATTR

    storage = internals.study_storage(study_obj)
    if getattr(storage, "heartbeat_interval", None):
        optuna.storages.fail_stale_trials(study_obj)
        return
    now = time.time()
    for t in study_obj.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        last = t.system_attrs.get(HEARTBEAT_ATTR)
        if last is None and t.datetime_start is not None:
            last = t.datetime_start.timestamp()
        if last is not None and now - last > store.GRACE_PERIOD_S:
            try:
                storage.set_trial_state_values(internals.trial_id(t), state=TrialState.FAIL)
            except optuna.exceptions.UpdateFinishedTrialError:
                pass  # another worker failed it first


def running_elsewhere(study_obj: Any) -> int:
    from optuna.trial import TrialState

    return len(study_obj.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))


def _decoded_params(study: Study, frozen: Any) -> dict[str, Any]:
    by_key = {p.key: p for p in study.space}
    return {k: listvalues.decode(by_key[k], v) for k, v in frozen.params.items() if k in by_key}
