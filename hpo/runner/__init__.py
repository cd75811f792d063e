"""Running a study: create it once, queue its cells, and let workers pop them exactly once.

Grid studies do not use Optuna's GridSampler (which runs cells twice, or never, under parallel
workers). Instead every (configuration, seed) is enqueued as a WAITING trial while a store-wide
lock is held, and workers pop WAITING trials, which the storage hands to exactly one of them.
Whatever did not finish (a killed worker's trial failed by its heartbeat, an interrupted trial)
is queued again by the next reconcile, which any worker or restart performs under the same lock.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import multiprocessing
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from hpo import __version__, annotate, store
from hpo import space as space_mod
from hpo.errors import HpoError, SpecError
from hpo.spec import KEYS, Study, from_dict

DONE_STATES = ("COMPLETE", "PRUNED")
PENDING_STATES = ("RUNNING", "WAITING")
# Memory one worker is assumed to need before any trial of the study has recorded its
# peak_rss_mb: torch, Optuna and the embedded digits in one process, with room to spare.
DEFAULT_WORKER_MB = 1000
# Share of MemAvailable that workers may plan to take: the page cache and the parent need some.
MEMORY_SHARE = 0.8


@dataclass(frozen=True)
class RunOptions:
    storage_url: str
    device: str = "auto"
    jobs: int = 1
    threads: int = 0  # torch threads per worker; 0: cores // jobs
    data_dir: str | None = None
    progress: bool = True
    command: str = ""
    oversubscribe: bool = False  # allow more workers than usable cores


def pick_device(requested: str) -> str:
    import torch

    if requested == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise HpoError("--device cuda: no CUDA device is visible; use --device cpu or auto")
    if requested == "mps" and not torch.backends.mps.is_available():
        raise HpoError("--device mps: Apple's MPS backend is not available; use --device cpu")
    return requested


def usable_cores() -> int:
    """Cores this process may run on: SLURM and taskset restrict the set, cpu_count does not."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def threads_per_worker(jobs: int, threads: int) -> int:
    """Torch threads per worker, so that workers x threads <= cores unless --threads says."""
    return threads if threads > 0 else max(1, usable_cores() // jobs)


def available_mb() -> float | None:
    """MemAvailable of /proc/meminfo in MB (None where there is no such file)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def cap_jobs(requested: int, pending: int, *, oversubscribe: bool, peak_mb: float | None,
             flag: str = "--jobs") -> int:
    """Workers worth starting: at most one per pending run, per usable core (unless
    ``oversubscribe``) and per share of the available memory. One line on stderr when fewer
    than ``requested``: a typo such as --jobs 1000 costs a line, not the machine."""
    if requested <= 1:
        return requested
    limits = [(max(1, pending), f"{pending} run{'s' if pending != 1 else ''} pending")]
    if not oversubscribe:
        cores = usable_cores()
        limits.append((cores, f"{cores} usable core{'s' if cores != 1 else ''} "
                              "(--oversubscribe allows more)"))
    avail = available_mb()
    if avail is not None:
        each = peak_mb if peak_mb else DEFAULT_WORKER_MB
        fit = int(avail * MEMORY_SHARE // each)  # 0: still one worker, as --jobs 1 would
        source = "the study's largest peak_rss_mb" if peak_mb else "estimated"
        limits.append((max(1, fit), f"memory for {fit} ({each:,.0f} MB each, {source}; "
                            f"{avail:,.0f} MB available)"))
    jobs = min(requested, *(n for n, _ in limits))
    if jobs < requested:
        print(f"hpo: {flag} {requested}: starting {jobs} worker{'s' if jobs != 1 else ''}: "
              + ", ".join(reason for _, reason in limits), file=sys.stderr)
    return jobs


def pending_runs(study: Study, finished: set[tuple[str, int]]) -> int:
    """(configuration, seed) runs a study still needs, given the ones already finished."""
    if study.is_grid:
        wanted = {(space_mod.cell_key(c), s) for c in study.cells() for s in study.seeds()}
        return len(wanted - finished)
    n_seeds = len(study.seeds())
    budget = max(study.config["n_trials"] // n_seeds * n_seeds, n_seeds)
    return max(0, budget - len(finished))


def plan_jobs(study: Study, opts: RunOptions) -> int:
    """``opts.jobs`` capped by what the store says is pending and by cores and memory."""
    if opts.jobs <= 1:
        return opts.jobs
    finished, peak = store.finished_runs(opts.storage_url, study.name)
    return cap_jobs(opts.jobs, pending_runs(study, finished), oversubscribe=opts.oversubscribe,
                    peak_mb=peak)


def _state_name(trial: Any) -> str:
    return trial.state.name


def _run_key(trial: Any) -> tuple[str, int] | None:
    attrs = trial.user_attrs
    if "cell" in attrs and "seed" in attrs:
        return attrs["cell"], int(attrs["seed"])
    params = trial.system_attrs.get("fixed_params")
    if params is not None and "seed" in attrs:
        return space_mod.cell_key(params), int(attrs["seed"])
    return None


def study_metadata(study: Study, device: str, command: str) -> dict[str, Any]:
    import optuna
    import torch

    return {
        "hpo.spec": study.to_dict(),
        "hpo.identity": study.identity(),
        "hpo.versions": {
            "hpo": __version__, "torch": torch.__version__, "optuna": optuna.__version__,
            "python": sys.version.split()[0],
        },
        "hpo.git_commit": _git_commit(),
        "hpo.dataset": study.config["dataset"],
        "hpo.device": device,
        "hpo.command": store.mask(command),
    }


def _git_commit() -> str | None:
    import subprocess

    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
            cwd=os.path.dirname(os.path.abspath(__file__)),
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _identity_diff(stored: dict[str, Any], current: dict[str, Any]) -> list[str]:
    def value(cfg: dict[str, Any], key: str) -> Any:
        # A key added to hpo after the study was stored ran with what is now its default.
        return cfg.get(key, KEYS[key].default if key in KEYS else None)

    diffs = []
    old_cfg, new_cfg = stored.get("config", {}), current["config"]
    for key in sorted(set(old_cfg) | set(new_cfg)):
        if key in KEYS and not KEYS[key].identity:
            continue  # stored by an hpo that still counted it
        if value(old_cfg, key) != value(new_cfg, key):
            diffs.append(f"{key} {value(old_cfg, key)!r} -> {value(new_cfg, key)!r}")
    if stored.get("space") != current["space"]:
        diffs.append("the search space")
    return diffs


def prepare_study(study: Study, storage: Any, opts: RunOptions, device: str) -> Any:
    """Create the Optuna study once (or check the stored one matches) and queue missing cells."""
    import optuna

    with store.exclusive(opts.storage_url, storage):
        study_obj = optuna.create_study(
            study_name=study.name, storage=storage, direction=study.direction,
            sampler=make_sampler(study), pruner=make_pruner(study), load_if_exists=True,
        )
        stored_identity = study_obj.user_attrs.get("hpo.identity")
        if stored_identity is None:
            for key, value in study_metadata(study, device, opts.command).items():
                study_obj.set_user_attr(key, value)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                study_obj.set_metric_names([study.config["metric"]])
        else:
            diffs = _identity_diff(stored_identity, json.loads(json.dumps(study.identity())))
            if diffs:
                raise SpecError(
                    f"study {study.name!r} in the store was run with other settings "
                    f"({'; '.join(diffs[:4])}); run it under a new name with --name NEW, or "
                    f"`hpo delete {study.name}` first"
                )
            # Repeats and n_trials may grow between runs: keep the stored spec current, and
            # the command that ran it last (the report's "Reproduce" shows it).
            study_obj.set_user_attr("hpo.spec", study.to_dict())
            if opts.command:
                study_obj.set_user_attr("hpo.command", store.mask(opts.command))
        annotate.update_study_note(study_obj)
        reconcile(study_obj, study)
    return study_obj


def reconcile(study_obj: Any, study: Study) -> int:
    """Queue every (cell, seed) that should exist and is neither done nor pending; returns count.

    Grid: every cell on every seed. Tuning: the other seeds of each completed configuration.
    Must run under ``store.exclusive``: two reconciles at once would queue a cell twice.
    """
    import optuna

    from hpo import decide

    trials = study_obj.get_trials(deepcopy=False)
    if study.is_grid:
        # Seeds until decided raise some cells' seed counts (stored, so every worker agrees).
        targets = decide.targets(study_obj)
        wanted = [(space_mod.encoded(cell), space_mod.cell_key(cell), seed, None)
                  for cell in study.cells() for seed in decide.cell_seeds(study, targets, cell)]
    else:
        wanted = _missing_repeats(trials, study)
    covered = set()
    for trial in trials:
        key = _run_key(trial)
        if key is not None and _state_name(trial) in DONE_STATES + PENDING_STATES:
            covered.add(key)
    queued = 0
    for params, cell, seed, repeat_of in wanted:
        if (cell, seed) in covered:
            continue
        attrs: dict[str, Any] = {"cell": cell, "seed": seed}
        if repeat_of is not None:
            attrs["repeat_of"] = repeat_of
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study_obj.enqueue_trial(params, user_attrs=attrs)
        covered.add((cell, seed))
        queued += 1
    return queued


def _is_original(trial: Any) -> bool:
    """A tuning trial whose configuration the sampler chose (not a queued repeat)."""
    return "repeat_of" not in trial.user_attrs


def _missing_repeats(trials: list[Any], study: Study) -> list[tuple[Any, str, int, int]]:
    wanted = []
    for trial in trials:
        if _is_original(trial) and _state_name(trial) == "COMPLETE":
            params = _decoded_params(study, trial)
            for seed in study.seeds()[1:]:
                wanted.append((space_mod.encoded(params), space_mod.cell_key(params), seed,
                               trial.number))
    return wanted


def make_sampler(study: Study, worker: int = 0) -> Any:
    """The study's sampler; worker i of a ``--jobs N`` run seeds it with sampler_seed + i.

    With one seed for all, every worker drew the same random start-up trials: with --jobs 2
    the first ten TPE trials came in identical pairs. Worker 0 keeps the study's own seed, so
    a --jobs 1 run is unchanged and reproducible.
    """
    import optuna

    seed = study.config["sampler_seed"] + worker
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        match study.config["sampler"]:
            case "tpe":
                return optuna.samplers.TPESampler(seed=seed)
            case "random" | "grid":  # grid cells arrive as enqueued fixed parameters
                return optuna.samplers.RandomSampler(seed=seed)
            case "gp":
                return optuna.samplers.GPSampler(seed=seed)
            case "cmaes":
                return optuna.samplers.CmaEsSampler(seed=seed)
    raise SpecError(f"unknown sampler {study.config['sampler']!r}")


def make_pruner(study: Study) -> Any:
    import optuna

    match study.config["pruner"]:
        case "none":
            return optuna.pruners.NopPruner()
        case "median":
            # Steps are epochs, numbered from 1; Optuna prunes from step == n_warmup_steps on.
            return optuna.pruners.MedianPruner(
                n_startup_trials=study.config["pruner_startup_trials"],
                n_warmup_steps=study.config["pruner_min_epochs"],
            )
        case "percentile":
            # Optuna's percentile is the share kept: 25.0 keeps the top quarter.
            return optuna.pruners.PercentilePruner(
                percentile=study.config["pruner_keep_percent"],
                n_startup_trials=study.config["pruner_startup_trials"],
                n_warmup_steps=study.config["pruner_min_epochs"],
            )
        case "hyperband":
            return optuna.pruners.HyperbandPruner(min_resource=1,
                                                  max_resource=study.config["epochs"])
    raise SpecError(f"unknown pruner {study.config['pruner']!r}")


def pop_waiting(study_obj: Any) -> Any | None:
    """Take one queued trial, or None. The storage's state check makes the take exactly-once."""
    import optuna
    from optuna.trial import TrialState

    storage = study_obj._storage
    native_heartbeat = bool(getattr(storage, "heartbeat_interval", None))
    for frozen in study_obj.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        try:
            if native_heartbeat:
                # Optuna never counts a RUNNING trial without a heartbeat row as stale: beat
                # before taking it, so a worker killed right after the take is still noticed.
                storage.record_heartbeat(frozen._trial_id)
            if not storage.set_trial_state_values(frozen._trial_id, state=TrialState.RUNNING):
                continue
            other = _duplicate_of(study_obj, frozen)
            if other is None:
                return optuna.Trial(study_obj, frozen._trial_id)
            storage.set_trial_user_attr(frozen._trial_id, "duplicate_of", other)
            storage.set_trial_state_values(frozen._trial_id, state=TrialState.FAIL)
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
        if t._trial_id == taken._trial_id or _run_key(t) != key:
            continue
        state = _state_name(t)
        if state in DONE_STATES or state == "RUNNING" or (
                state == "WAITING" and t._trial_id < taken._trial_id):
            return t.number
    return None


def budget_used(trials: list[Any], study: Study) -> int:
    """Trials that count against a tuning study's n_trials, the promised repeats included.

    Failed trials are not counted (the budget is retried); a configuration being run or
    completed reserves its other seeds, so that workers elsewhere do not sample past n_trials
    while its repeats are not queued yet.
    """
    n_seeds = len(study.seeds())
    live = [t for t in trials if _state_name(t) in DONE_STATES + PENDING_STATES]
    repeats: dict[int, int] = {}
    for t in live:
        if not _is_original(t):
            repeats[t.user_attrs["repeat_of"]] = repeats.get(t.user_attrs["repeat_of"], 0) + 1
    reserved = sum(
        max(0, n_seeds - 1 - repeats.get(t.number, 0))
        for t in live if _is_original(t) and _state_name(t) in ("COMPLETE", "RUNNING", "WAITING")
    )
    return len(live) + reserved


def can_sample(trials: list[Any], study: Study) -> bool:
    """A new configuration is sampled only while all of its seeds fit in n_trials."""
    n_seeds = len(study.seeds())
    return budget_used(trials, study) + n_seeds <= max(study.config["n_trials"], n_seeds)


def remaining(study_obj: Any, study: Study) -> int:
    trials = study_obj.get_trials(deepcopy=False)
    if study.is_grid:
        return sum(1 for t in trials if _state_name(t) in PENDING_STATES)
    n_seeds = len(study.seeds())
    done = sum(1 for t in trials if _state_name(t) in DONE_STATES)
    budget = max(study.config["n_trials"] // n_seeds * n_seeds, n_seeds)
    return max(0, budget - done)


def next_trial(study_obj: Any, study: Study, url: str) -> Any | None:
    """The next trial this worker should run, or None when nothing can be started now."""
    trial = pop_waiting(study_obj)
    if trial is not None:
        return trial
    reclaim_stale(study_obj)
    with store.exclusive(url, study_obj._storage):
        if reconcile(study_obj, study) > 0:
            pass  # popped below, outside the lock
        elif study.is_grid or not can_sample(study_obj.get_trials(deepcopy=False), study):
            return None
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "heartbeat is supposed to be used with optimize"
                trial = study_obj.ask()
            if getattr(study_obj._storage, "heartbeat_interval", None):
                study_obj._storage.record_heartbeat(trial._trial_id)
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

    from hpo.objective import HEARTBEAT_ATTR

    storage = study_obj._storage
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
                storage.set_trial_state_values(t._trial_id, state=TrialState.FAIL)
            except optuna.exceptions.UpdateFinishedTrialError:
                pass  # another worker failed it first


def running_elsewhere(study_obj: Any) -> int:
    from optuna.trial import TrialState

    return len(study_obj.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))


def _interrupt_once(signum: int, _frame: Any) -> None:
    """SIGINT/SIGTERM: stop once. A second signal (the terminal's Ctrl-C reaches every worker
    and the parent forwards it too; SLURM and Kubernetes send SIGTERM to all) is ignored, so
    it cannot cut short the telling of FAIL for the trial in progress."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


@contextlib.contextmanager
def _stop_signals() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {sig: signal.signal(sig, _interrupt_once) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def load_splits(study: Study, device: str, data_dir: str | None) -> Any:
    from hpo import data as data_mod

    return data_mod.load(
        study.config["dataset"], data_dir=data_dir or study.config["data_dir"], device=device,
        val_fraction=study.config["val_fraction"], train_subset=study.config["train_subset"],
        image_size=study.config["image_size"],
    )


def _set_up_process(threads: int, device: str) -> None:
    import torch

    from hpo.train import keep_freed_memory

    torch.set_num_threads(threads)
    if device == "cpu":
        keep_freed_memory()


def work(
    study: Study,
    url: str,
    *,
    device: str,
    threads: int,
    data_dir: str | None,
    on_trial: Callable[[Any], None] | None = None,
    worker: int = 0,
) -> int:
    """One worker: run trials until the study has nothing left; returns trials run.

    With nothing to start while other workers still run trials, it waits: if one of them
    dies, its trial turns stale after the grace period and this worker runs the cell again.
    So when any worker returns, the whole study is done.
    """
    _set_up_process(threads, device)
    retry = store.Retry(url)  # a database restarting as the worker starts is waited for
    storage = retry.call(store.open_storage, url, heartbeat=True)
    study_obj = retry.call(store.load_study, storage, study.name)
    study_obj.sampler = make_sampler(study, worker)
    study_obj.pruner = make_pruner(study)
    splits = load_splits(study, device, data_dir)  # cached: free if the warm-up read it
    # An idle worker keeps `hpo run` waiting: it looks again twice a second (one cheap query).
    poll = max(0.2, min(0.5, store.HEARTBEAT_INTERVAL_S / 2))
    ran = 0
    with _stop_signals():
        while True:
            try:
                trial = next_trial(study_obj, study, url)
                if trial is None:
                    if running_elsewhere(study_obj) == 0:
                        if study.config["until_decided"] and _seeds_added(study_obj, study, url):
                            continue
                        return ran
                    retry.succeeded()
                    time.sleep(poll)
                    continue
                retry.succeeded()
                frozen = _run_one(study_obj, study, url, trial, splits, retry)
            except Exception as exc:  # noqa: BLE001 - a store that went away: wait, carry on
                retry.failed(exc)  # re-raises what retrying cannot cure
                continue
            if frozen is None:
                continue
            ran += 1
            if on_trial is not None:
                on_trial(frozen)


def _seeds_added(study_obj: Any, study: Study, url: str) -> bool:
    """Seeds until decided: look at the claims; True if there are trials to run again."""
    from hpo import decide

    return decide.add_seeds(study_obj, study, url) > 0


def _run_one(study_obj: Any, study: Study, url: str, trial: Any, splits: Any,
             retry: store.Retry | None = None) -> Any | None:
    """Run one popped trial and tell its state; None if another worker failed it meanwhile.

    The final tell is retried while the store is away (``retry``): a finished run is not lost.
    """
    import optuna
    from optuna.trial import TrialState

    from hpo.objective import Heartbeat, run_trial

    try:
        with Heartbeat(study_obj._storage, trial._trial_id, store.HEARTBEAT_INTERVAL_S):
            result = run_trial(trial, study, splits)
            annotate.save_trial_curve(trial, url)  # before tell: attrs are frozen after
            if result.initial_state is not None:  # analysis = "flatness"
                annotate.save_trial_weights(trial, url, result.initial_state,
                                            result.final_state)
                result.initial_state = result.final_state = None  # free them before the next
    except BaseException:
        # Ctrl-C, SIGTERM, a bug: the trial is failed, never left RUNNING, and its cell is
        # queued again by the next reconcile. Further signals are ignored until it is told.
        # A store that cannot take the FAIL (gone, full) leaves it RUNNING: its heartbeat
        # stops, so the next worker or run fails it after the grace period.
        with contextlib.suppress(Exception):
            study_obj.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
        raise
    try:
        frozen = (retry or store.Retry(url)).call(_tell_result, study_obj, study, trial, result)
    except optuna.exceptions.UpdateFinishedTrialError:
        print(f"hpo: warning: trial {trial.number} was failed by another worker (its heartbeat "
              "was late by more than the grace period); its result is dropped and its cell "
              "runs again", file=sys.stderr)
        return None
    if frozen.state == TrialState.COMPLETE and not study.is_grid and _is_original(frozen):
        with store.exclusive(url, study_obj._storage):
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
        frozen = study_obj._storage.get_trial(trial._trial_id)
        if frozen.state.name in DONE_STATES:  # only this worker tells its trial a result
            return frozen
        raise


def _decoded_params(study: Study, frozen: Any) -> dict[str, Any]:
    by_key = {p.key: p for p in study.space}
    return {k: space_mod.decode(by_key[k], v) for k, v in frozen.params.items() if k in by_key}


# The parent's go signal to its workers (a shared int): the device to use, or CANCEL.
PENDING, CANCEL = 0, -1
DEVICE_CODES = {"cpu": 1, "cuda": 2, "mps": 3}


def _worker_process(spec_dict: dict, source: str, url: str, requested_device: str,
                    threads: int, data_dir: str | None, go: Any, worker: int) -> None:
    from hpo.cli import _quiet_libraries

    _quiet_libraries(verbose=False)
    study = from_dict(spec_dict, source)
    try:
        with _stop_signals():
            _warm_up(study, requested_device, threads, data_dir)
            device = _wait_for_go(go)
            if device is None:
                return  # the parent stopped before the study was ready, and says why
            work(study, url, device=device, threads=threads, data_dir=data_dir, worker=worker)
    except KeyboardInterrupt:
        sys.exit(130)
    except HpoError as exc:
        from hpo.cli import one_line

        print(f"hpo: error: {one_line(str(exc))}", file=sys.stderr)
        sys.exit(1)
    except OSError as exc:  # a path or a full disk, as `hpo` itself reports them
        from hpo.cli import one_line, os_error_line

        print(f"hpo: error: {one_line(os_error_line(exc))}", file=sys.stderr)
        sys.exit(1)
    except Exception as exc:  # a bug: one line, as `hpo` itself says it (no traceback)
        first = (str(exc).strip().splitlines() or [""])[0]
        print(f"hpo: internal error: {type(exc).__name__}: {store.mask(first)}",
              file=sys.stderr)
        sys.exit(1)


def _warm_up(study: Study, requested_device: str, threads: int, data_dir: str | None) -> None:
    """Import torch and Optuna and read the dataset while the parent prepares the study.

    These ~3 s per worker used to follow the parent's own ~3 s of imports and study set-up;
    now they overlap it. The dataset is read ahead only when this machine resolves the
    device to the CPU (the parent resolves it the same way): on a GPU it would leave a
    second, host-side copy in the cache. Errors are left for the parent and for work().
    """
    import optuna  # noqa: F401

    from hpo import objective  # noqa: F401

    with contextlib.suppress(HpoError):
        if pick_device(requested_device) == "cpu":
            _set_up_process(threads, "cpu")
            load_splits(study, "cpu", data_dir)


def _wait_for_go(go: Any) -> str | None:
    parent = multiprocessing.parent_process()
    while go.value == PENDING:
        if parent is not None and not parent.is_alive():
            return None  # the parent was killed before it could tell
        time.sleep(0.05)
    codes = {code: name for name, code in DEVICE_CODES.items()}
    return codes.get(go.value)


def ensure_weights(study: Study) -> None:
    """Pretrained weights every configuration of a grid (or a tuning study's base) needs."""
    from hpo import models

    configs = [study.resolve(c) for c in study.cells()] if study.is_grid else [study.config]
    for config in configs:
        models.ensure_weights(models.ModelConfig.from_config(config))


def run(study: Study, opts: RunOptions) -> Any:
    """Run ``study`` to completion in ``opts.jobs`` workers; returns the Optuna study."""
    from hpo import data as data_mod

    # Before the store is opened: a missing dataset must not leave a new store behind.
    data_mod.ensure_available(study.config["dataset"], opts.data_dir or study.config["data_dir"])
    if opts.jobs > 1:
        store.check_url(opts.storage_url)  # a bad store must not start workers to stop again
        opts = dataclasses.replace(opts, jobs=plan_jobs(study, opts))
    threads = threads_per_worker(opts.jobs, opts.threads)
    workers = _Workers(study, opts, threads) if opts.jobs > 1 else None
    # With workers waiting, a SIGTERM must not kill this process before it tells them.
    with _stop_signals() if workers is not None else contextlib.nullcontext():
        try:
            device = pick_device(opts.device)
            ensure_weights(study)
            storage = store.open_storage(opts.storage_url, heartbeat=True)  # bad: fails fast
            study_obj = prepare_study(study, storage, opts, device)
        except BaseException:
            if workers is not None:
                workers.cancel()
            raise
    bar = _progress(remaining(study_obj, study), study.name, opts.progress)
    try:
        if workers is None:
            work(study, opts.storage_url, device=device, threads=threads,
                 data_dir=opts.data_dir, on_trial=lambda frozen: _advance(bar, frozen))
        else:
            workers.go(device, study_obj, bar)
    finally:
        bar.close()
    return study_obj


class _Workers:
    """``--jobs N`` worker processes, started before the study is prepared (see _warm_up)."""

    def __init__(self, study: Study, opts: RunOptions, threads: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.signal = ctx.Value("i", PENDING)
        self.procs = [
            ctx.Process(target=_worker_process,
                        args=(study.to_dict(), study.source, opts.storage_url, opts.device,
                              threads, opts.data_dir, self.signal, worker))
            for worker in range(opts.jobs)
        ]
        with _stop_signals():
            for proc in self.procs:
                proc.start()

    def cancel(self) -> None:
        """Call the workers off (still warming up or waiting): they exit without a word."""
        self.signal.value = CANCEL
        _stop_workers(self.procs, wait_s=10.0)

    def go(self, device: str, study_obj: Any, bar: Any) -> None:
        from multiprocessing.connection import wait

        self.signal.value = DEVICE_CODES[device]
        # Idle until the workers finish: import what the closing summary needs meanwhile.
        import pandas  # noqa: F401

        finished = _finished_count(study_obj)
        try:
            with _stop_signals():
                while any(p.is_alive() for p in self.procs):
                    wait([p.sentinel for p in self.procs if p.is_alive()], timeout=1.0)
                    try:
                        now = _finished_count(study_obj)
                    except Exception as exc:  # noqa: BLE001 - the workers retry the store
                        if not store.transient(exc):
                            raise
                        continue  # the bar waits for the store; the workers say why
                    _grow(bar, now - finished)
                    finished = now
        except KeyboardInterrupt:
            _stop_workers(self.procs)
            raise
        failed = [p.exitcode for p in self.procs if p.exitcode not in (0, None)]
        if failed:
            raise HpoError(f"{len(failed)} of {len(self.procs)} workers failed (exit codes "
                           f"{failed}); see the messages above, then re-run the same command "
                           "to resume")


def _stop_workers(procs: list[Any], wait_s: float = 30.0) -> None:
    """Ask every worker to stop (each fails its trial in progress), then wait for them.

    A terminal's Ctrl-C reaches the workers already; a SIGINT or SIGTERM sent to this process
    alone does not, hence the forwarding (workers ignore the second signal)."""
    for proc in procs:
        if proc.is_alive() and proc.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + wait_s
    for proc in procs:
        proc.join(max(0.0, deadline - time.monotonic()))
        if proc.is_alive():
            proc.kill()  # its trial turns stale and is run again after the grace period
            proc.join()


def _finished_count(study_obj: Any) -> int:
    return sum(1 for t in study_obj.get_trials(deepcopy=False) if _state_name(t) in DONE_STATES)


def _progress(total: int, name: str, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=name, unit="trial", file=sys.stderr, disable=not enabled,
                dynamic_ncols=True)


def _advance(bar: Any, frozen: Any) -> None:
    acc = frozen.user_attrs.get("test_acc")
    if acc is not None:
        bar.set_postfix_str(f"last test acc {acc:.1f}%")
    _grow(bar, 1)


def _grow(bar: Any, done: int) -> None:
    """Advance the bar; seeds until decided add trials as it goes, so the total may grow."""
    if bar.total is not None and bar.n + done > bar.total:
        bar.total = bar.n + done
    bar.update(done)
