"""Liveness: a running trial beats, so that a dead worker's trial can be told from a slow one."""

from __future__ import annotations

import sys
import threading
import time
from typing import TYPE_CHECKING

from hpo.schema import HEARTBEAT_ATTR  # noqa: F401  (queue.reclaim_stale reads it here)

if TYPE_CHECKING:
    from optuna.storages import BaseStorage


class Heartbeat:
    """Records a heartbeat for one trial from a daemon thread, so that a dead worker's trial can
    be told apart from a slow one (see ``queue.reclaim_stale``).

    hpo drives trials itself instead of through ``Study.optimize``, so it beats for itself. RDB
    storages with heartbeats get Optuna's own; storages without (the journal file) get hpo's,
    the time of the last beat in the system attribute ``HEARTBEAT_ATTR``.
    """

    def __init__(self, storage: BaseStorage, trial_id: int, interval: float) -> None:
        self._backend, self._trial, self._interval = storage, trial_id, interval
        self._native = bool(getattr(storage, "heartbeat_interval", None))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Heartbeat:
        self.beat()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def beat(self) -> None:
        if self._native:
            self._backend.record_heartbeat(self._trial)
        else:
            self._backend.set_trial_system_attr(self._trial, HEARTBEAT_ATTR, time.time())

    def _run(self) -> None:
        import optuna

        while not self._stop.wait(self._interval):
            try:
                self.beat()
            except optuna.exceptions.UpdateFinishedTrialError:
                return  # another worker failed this trial as stale; the worker finds out at tell
            except Exception as exc:  # a database hiccup must not stop the beating for good
                print(f"hpo: warning: heartbeat of trial {self._trial} failed: "
                      f"{type(exc).__name__}; retrying", file=sys.stderr)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
