"""``hpo run``: one worker in this process, or ``--jobs N`` spawned worker processes that warm
up while the study is prepared, then run until the study has nothing left."""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from hpo import store
from hpo.errors import HpoError, one_line, os_error_line
from hpo.process import stop_requested, stop_signals, stop_signals_blocked
from hpo.runner.create import prepare_study
from hpo.runner.plan import (
    RunOptions,
    check_memory,
    check_store_folder,
    pick_device,
    plan_jobs,
    threads_per_worker,
)
from hpo.runner.queue import DONE_STATES, remaining, state_name
from hpo.runner.worker import hold_stops_in_store, load_splits, set_up_process, work
from hpo.spec import Study, from_dict
from hpo.spec.rules import PRETRAINED_FAMILIES

# The parent's go signal to its workers (a shared int): the device to use, or CANCEL.
PENDING, CANCEL = 0, -1
DEVICE_CODES = {"cpu": 1, "cuda": 2, "mps": 3}
# A worker's exit code when a signal stopped it: its own (130), or death by the signal.
INTERRUPTED_CODES = (130, -signal.SIGINT, -signal.SIGTERM)


def _worker_process(spec_dict: dict, source: str, url: store.StoreURL, requested_device: str,
                    threads: int, data_dir: str | None, go: Any, worker: int,
                    artifacts: Path | None, deadline: float | None,
                    on_idle: Any = None) -> None:
    from hpo.process import die_with_parent, quiet_libraries, unblock_stop_signals

    try:
        # Until here (spawn's imports, unpickling) SIGINT and SIGTERM were held (blocked by the
        # parent as it started this process); from here on they stop it. Once stopped or done,
        # it ignores them: a late Ctrl-C must not raise in multiprocessing's own clean-up.
        with stop_signals(then="ignore"):
            unblock_stop_signals()
            die_with_parent()
            quiet_libraries(verbose=False)
            study = from_dict(spec_dict, source)
            _warm_up(study, requested_device, threads, data_dir)
            device = _wait_for_go(go)
            if device is None:
                return  # the parent stopped before the study was ready, and says why
            work(study, url, device=device, threads=threads, data_dir=data_dir, worker=worker,
                 artifacts=artifacts, deadline=deadline, on_idle=on_idle)
    except KeyboardInterrupt:
        sys.exit(130)
    except HpoError as exc:
        _say(f"hpo: error: {one_line(str(exc))}")
    except OSError as exc:  # a path or a full disk, as `hpo` itself reports them
        _say(f"hpo: error: {one_line(os_error_line(exc))}")
    except Exception as exc:  # a bug: one line, as `hpo` itself says it (no traceback)
        first = (str(exc).strip().splitlines() or [""])[0]
        _say(f"hpo: internal error: {type(exc).__name__}: {store.mask(first)}")


def _say(line: str) -> None:
    """A worker's last word: one line on stderr, exit 1."""
    print(line, file=sys.stderr)
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
            set_up_process(threads, "cpu")
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
    configs = [study.resolve(c) for c in study.cells()] if study.is_grid else [study.config]
    # Only the pretrained families have weights (or a package) to check: the others need no
    # torch import in `hpo run`'s parent.
    configs = [c for c in configs if c.get("model.family") in PRETRAINED_FAMILIES]
    if not configs:
        return
    from hpo.nn import models

    for config in configs:
        models.ensure_weights(models.ModelConfig.from_config(config))


def run(study: Study, opts: RunOptions) -> Any:
    """Run ``study`` to completion in ``opts.jobs`` workers; returns the Optuna study.

    From the first worker's start to the end, SIGINT and SIGTERM stop the run (KeyboardInterrupt,
    once; later signals are ignored): while workers start, while the study is queued (which
    may take minutes), while trials run. A trial in progress is failed, never left RUNNING.
    """
    opts, threads = _plan(study, opts)
    with stop_signals():
        workers = _Workers(study, opts, threads) if opts.jobs > 1 else None
        try:
            if workers is not None:
                workers.start()
            device = pick_device(opts.device)
            ensure_weights(study)
            storage = store.open_storage(opts.storage_url, heartbeat=True)  # bad: fails fast
            hold_stops_in_store(storage)
            study_obj = prepare_study(study, storage, opts, device)
            _check_stop()
        except BaseException:
            if workers is not None:
                workers.cancel()
            raise
        bar = _progress(remaining(study_obj, study), study.name, opts.progress)
        try:
            if workers is None:
                with _stop_at(opts.deadline):
                    work(study, opts.storage_url, device=device, threads=threads,
                         data_dir=opts.data_dir, on_trial=lambda frozen: _advance(bar, frozen),
                         artifacts=opts.artifacts_folder(), deadline=opts.deadline,
                         on_idle=opts.on_idle)
            else:
                workers.go(device, study_obj, bar, opts.deadline)
        except KeyboardInterrupt:
            if not _past(opts.deadline):
                raise
            # The budget ran out during a trial: it was failed and is queued again next time.
        finally:
            bar.close()
    return study_obj


def _plan(study: Study, opts: RunOptions) -> tuple[RunOptions, int]:
    """Every check that needs no store write, before any worker starts: the data, the store's
    file and folder, how many workers, the memory one needs; ``opts`` with the workers capped,
    and the torch threads each gets."""
    from hpo.nn import data as data_mod

    # Before the store is opened: a missing dataset must not leave a new store behind.
    data_mod.ensure_available(study.config["dataset"], study.data_folder(opts.data_dir))
    check_store_folder(opts.storage_url)
    if opts.jobs > 1:
        store.check_url(opts.storage_url)  # a bad store must not start workers to stop again
        opts = dataclasses.replace(opts, jobs=plan_jobs(study, opts))
    check_memory(study, opts.jobs)
    return opts, threads_per_worker(opts.jobs, opts.threads)


def _check_stop() -> None:
    """A stop signal whose KeyboardInterrupt a library swallowed on the way (one raised in a
    finalizer is only printed) still stops the run."""
    if stop_requested():
        raise KeyboardInterrupt


def _past(deadline: float | None) -> bool:
    return deadline is not None and time.time() >= deadline


@contextlib.contextmanager
def _stop_at(deadline: float | None) -> Any:
    """One worker in this process: at ``deadline`` interrupt it as Ctrl-C would (its trial in
    progress is failed, every finished one kept)."""
    import threading

    if deadline is None or threading.current_thread() is not threading.main_thread():
        yield
        return
    timer = threading.Timer(max(0.0, deadline - time.time()),
                            lambda: os.kill(os.getpid(), signal.SIGTERM))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


class _Workers:
    """``--jobs N`` worker processes, started before the study is prepared (see _warm_up)."""

    def __init__(self, study: Study, opts: RunOptions, threads: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.signal = ctx.Value("i", PENDING)
        self.procs = [
            ctx.Process(target=_worker_process,
                        args=(study.to_dict(), study.source, opts.storage_url, opts.device,
                              threads, opts.data_dir, self.signal, worker,
                              opts.artifacts_folder(), opts.deadline, opts.on_idle))
            for worker in range(opts.jobs)
        ]

    def start(self) -> None:
        """Start the workers with SIGINT and SIGTERM held: each takes them from the moment its
        handlers are in place (a signal sent before waits for them)."""
        with stop_signals_blocked():
            for proc in self.procs:
                proc.start()

    def cancel(self) -> None:
        """Call the workers off (still warming up or waiting): they exit without a word."""
        self.signal.value = CANCEL
        _stop_workers(self.procs, wait_s=10.0)

    def go(self, device: str, study_obj: Any, bar: Any, deadline: float | None = None) -> None:
        from multiprocessing.connection import wait

        self.signal.value = DEVICE_CODES[device]
        try:
            # Idle until the workers finish: import what the closing summary needs meanwhile.
            import pandas  # noqa: F401

            finished = _finished_count(study_obj)
            while any(p.is_alive() for p in self.procs):
                wait([p.sentinel for p in self.procs if p.is_alive()], timeout=1.0)
                _check_stop()
                if _past(deadline):
                    _stop_workers(self.procs)  # budget spent: their trials are failed
                    return
                try:
                    now = _finished_count(study_obj)
                except Exception as exc:  # noqa: BLE001 - the workers retry the store
                    if not store.transient(exc):
                        raise
                    continue  # the bar waits for the store; the workers say why
                _grow(bar, now - finished)
                finished = now
            _check_stop()
        except KeyboardInterrupt:
            _stop_workers(self.procs)
            raise
        self._check_exit_codes()

    def _check_exit_codes(self) -> None:
        failed = [p.exitcode for p in self.procs if p.exitcode not in (0, None)]
        if failed and all(code in INTERRUPTED_CODES for code in failed):
            # Stopped by a signal sent to them, not to this process (`kill -INT` of a worker,
            # a Ctrl-C this process missed): an interruption, not a failure.
            raise KeyboardInterrupt
        if failed:
            raise HpoError(f"{len(failed)} of {len(self.procs)} workers failed (exit codes "
                           f"{failed}); see the messages above, then re-run the same command "
                           "to resume")


def _stop_workers(procs: list[Any], wait_s: float = 30.0) -> None:
    """Ask every worker to stop (each fails its trial in progress), then wait for them.

    A terminal's Ctrl-C reaches the workers already; a SIGINT or SIGTERM sent to this process
    alone does not, hence the forwarding (workers ignore the second signal)."""
    started = [proc for proc in procs if proc.pid is not None]
    for proc in started:
        if proc.is_alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + wait_s
    for proc in started:
        proc.join(max(0.0, deadline - time.monotonic()))
        if proc.is_alive():
            proc.kill()  # its trial turns stale and is run again after the grace period
            proc.join()


def _finished_count(study_obj: Any) -> int:
    return sum(1 for t in study_obj.get_trials(deepcopy=False) if state_name(t) in DONE_STATES)


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
