"""Running a study: create it once, queue its cells, and let workers pop them exactly once.

Grid studies do not use Optuna's GridSampler (which runs cells twice, or never, under parallel
workers). Instead every (configuration, seed) is enqueued as a WAITING trial while a store-wide
lock is held, and workers pop WAITING trials, which the storage hands to exactly one of them.
Whatever did not finish (a killed worker's trial failed by its heartbeat, an interrupted trial)
is queued again by the next reconcile, which any worker or restart performs under the same lock.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hpo import __version__, annotate, store
from hpo import space as space_mod
from hpo.errors import HpoError, SpecError
from hpo.spec import Study, from_dict

DONE_STATES = ("COMPLETE", "PRUNED")
PENDING_STATES = ("RUNNING", "WAITING")


@dataclass(frozen=True)
class RunOptions:
    storage_url: str
    device: str = "auto"
    jobs: int = 1
    threads: int = 0  # torch threads per worker; 0: cores // jobs
    data_dir: str | None = None
    progress: bool = True
    command: str = ""


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


def threads_per_worker(jobs: int, threads: int) -> int:
    return threads if threads > 0 else max(1, (os.cpu_count() or 1) // jobs)


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
    diffs = []
    old_cfg, new_cfg = stored.get("config", {}), current["config"]
    for key in sorted(set(old_cfg) | set(new_cfg)):
        if old_cfg.get(key) != new_cfg.get(key):
            diffs.append(f"{key} {old_cfg.get(key)!r} -> {new_cfg.get(key)!r}")
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
            study_obj.set_metric_names([study.config["metric"]])
        else:
            diffs = _identity_diff(stored_identity, json.loads(json.dumps(study.identity())))
            if diffs:
                raise SpecError(
                    f"study {study.name!r} in the store was run with other settings "
                    f"({'; '.join(diffs[:4])}); run it under a new name with --name NEW, or "
                    f"`hpo delete {study.name}` first"
                )
            # Repeats and n_trials may grow between runs: keep the stored spec current.
            study_obj.set_user_attr("hpo.spec", study.to_dict())
        annotate.update_study_note(study_obj)
        reconcile(study_obj, study)
    return study_obj


def reconcile(study_obj: Any, study: Study) -> int:
    """Queue every (cell, seed) of a grid study that is neither done nor pending; returns count.

    Must run under ``store.exclusive``: two reconciles at once would queue a cell twice.
    """
    if not study.is_grid:
        return 0
    import optuna

    covered = set()
    for trial in study_obj.get_trials(deepcopy=False):
        key = _run_key(trial)
        if key is not None and _state_name(trial) in DONE_STATES + PENDING_STATES:
            covered.add(key)
    queued = 0
    for cell in study.cells():
        for seed in study.seeds():
            key = space_mod.cell_key(cell), seed
            if key in covered:
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                study_obj.enqueue_trial(
                    space_mod.encoded(cell), user_attrs={"cell": key[0], "seed": seed}
                )
            queued += 1
    return queued


def make_sampler(study: Study) -> Any:
    import optuna

    seed = study.config["sampler_seed"]
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
            return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)
        case "hyperband":
            return optuna.pruners.HyperbandPruner(min_resource=1,
                                                  max_resource=study.config["epochs"])
    raise SpecError(f"unknown pruner {study.config['pruner']!r}")


def pop_waiting(study_obj: Any) -> Any | None:
    """Take one queued trial, or None. The storage's state check makes the take exactly-once."""
    import optuna
    from optuna.trial import TrialState

    storage = study_obj._storage
    for frozen in study_obj.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        try:
            if storage.set_trial_state_values(frozen._trial_id, state=TrialState.RUNNING):
                return optuna.Trial(study_obj, frozen._trial_id)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue
    return None


def count_for_budget(study_obj: Any) -> int:
    """Trials that count against a tuning study's n_trials (failures are retried, not counted)."""
    return sum(
        1 for t in study_obj.get_trials(deepcopy=False)
        if _state_name(t) in DONE_STATES + PENDING_STATES
    )


def remaining(study_obj: Any, study: Study) -> int:
    if study.is_grid:
        return sum(1 for t in study_obj.get_trials(deepcopy=False) if _state_name(t) == "WAITING")
    return max(0, study.config["n_trials"] - count_for_budget(study_obj))


def next_trial(study_obj: Any, study: Study, url: str) -> Any | None:
    trial = pop_waiting(study_obj)
    if trial is not None:
        return trial
    if study.is_grid:
        _fail_stale(study_obj)
        with store.exclusive(url, study_obj._storage):
            if reconcile(study_obj, study) == 0:
                return None
        return pop_waiting(study_obj)
    with store.exclusive(url, study_obj._storage):
        if count_for_budget(study_obj) >= study.config["n_trials"]:
            return None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "heartbeat is supposed to be used with optimize"
            return study_obj.ask()


def _fail_stale(study_obj: Any) -> None:
    import optuna

    optuna.storages.fail_stale_trials(study_obj)


def queue_repeats(study_obj: Any, study: Study, frozen: Any, params: dict[str, Any]) -> None:
    """A tuning study's newly sampled configuration also runs on the study's other seeds."""
    if study.is_grid or "repeat_of" in frozen.user_attrs:
        return
    for seed in study.seeds()[1:]:
        study_obj.enqueue_trial(
            space_mod.encoded(params),
            user_attrs={"cell": space_mod.cell_key(params), "seed": seed,
                        "repeat_of": frozen.number},
        )


def work(
    study: Study,
    url: str,
    *,
    device: str,
    threads: int,
    data_dir: str | None,
    on_trial: Callable[[Any], None] | None = None,
) -> int:
    """One worker: pop and run trials until the study has nothing left; returns trials run."""
    import torch
    from optuna.trial import TrialState

    from hpo import data as data_mod
    from hpo.objective import Heartbeat, objective_value, run_trial

    torch.set_num_threads(threads)
    storage = store.open_storage(url, heartbeat=True)
    study_obj = store.load_study(storage, study.name)
    study_obj.sampler = make_sampler(study)
    study_obj.pruner = make_pruner(study)
    splits = data_mod.load(
        study.config["dataset"], data_dir=data_dir or study.config["data_dir"], device=device,
        val_fraction=study.config["val_fraction"], train_subset=study.config["train_subset"],
    )
    _fail_stale(study_obj)
    ran = 0
    while (trial := next_trial(study_obj, study, url)) is not None:
        try:
            with Heartbeat(storage, trial._trial_id):
                result = run_trial(trial, study, splits)
                annotate.save_trial_curve(trial, url)  # before tell: attrs are frozen after
        except BaseException:
            # Ctrl-C, a killed data load, a bug: the trial is failed, never left RUNNING,
            # and its cell is queued again by the next reconcile.
            study_obj.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
            raise
        if result.stopped == "pruned":
            frozen = study_obj.tell(trial, state=TrialState.PRUNED)
        else:
            frozen = study_obj.tell(trial, objective_value(study, result.summary()))
            if frozen.state == TrialState.COMPLETE and not study.is_grid:
                queue_repeats(study_obj, study, frozen, _decoded_params(study, frozen))
        ran += 1
        if on_trial is not None:
            on_trial(frozen)
    return ran


def _decoded_params(study: Study, frozen: Any) -> dict[str, Any]:
    by_key = {p.key: p for p in study.space}
    return {k: space_mod.decode(by_key[k], v) for k, v in frozen.params.items() if k in by_key}


def _worker_process(spec_dict: dict, source: str, url: str, device: str, threads: int,
                    data_dir: str | None) -> None:
    from hpo.cli import _quiet_libraries

    _quiet_libraries(verbose=False)
    study = from_dict(spec_dict, source)
    try:
        work(study, url, device=device, threads=threads, data_dir=data_dir)
    except KeyboardInterrupt:
        sys.exit(130)
    except HpoError as exc:
        print(f"hpo: error: {exc}", file=sys.stderr)
        sys.exit(1)


def run(study: Study, opts: RunOptions) -> Any:
    """Run ``study`` to completion in ``opts.jobs`` workers; returns the Optuna study."""
    from hpo import data as data_mod

    device = pick_device(opts.device)
    data_mod.ensure_available(study.config["dataset"], opts.data_dir or study.config["data_dir"])
    storage = store.open_storage(opts.storage_url, heartbeat=True)
    study_obj = prepare_study(study, storage, opts, device)
    total = remaining(study_obj, study)
    threads = threads_per_worker(opts.jobs, opts.threads)
    bar = _progress(total, study.name, opts.progress)
    try:
        if opts.jobs == 1:
            work(study, opts.storage_url, device=device, threads=threads,
                 data_dir=opts.data_dir, on_trial=lambda frozen: _advance(bar, frozen))
        else:
            _run_processes(study, opts, device, threads, study_obj, bar)
    finally:
        bar.close()
    return study_obj


def _run_processes(study: Study, opts: RunOptions, device: str, threads: int, study_obj: Any,
                   bar: Any) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(
            target=_worker_process,
            args=(study.to_dict(), study.source, opts.storage_url, device, threads,
                  opts.data_dir),
        )
        for _ in range(opts.jobs)
    ]
    for proc in procs:
        proc.start()
    finished = _finished_count(study_obj)
    try:
        while any(p.is_alive() for p in procs):
            time.sleep(1.0)
            now = _finished_count(study_obj)
            bar.update(now - finished)
            finished = now
    except KeyboardInterrupt:
        for proc in procs:
            proc.join()
        raise
    failed = [p.exitcode for p in procs if p.exitcode not in (0, None)]
    if failed:
        raise HpoError(f"{len(failed)} of {len(procs)} workers failed (exit codes {failed}); "
                       "see the messages above, then re-run the same command to resume")


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
    bar.update(1)
