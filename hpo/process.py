"""Process set-up shared by the command line and the worker processes it starts."""

from __future__ import annotations


def quiet_libraries(verbose: bool) -> None:
    """Quiet Optuna's logger and its experimental-feature warnings (unless ``verbose``):
    process set-up for `hpo` itself and for every worker process it spawns."""
    import logging
    import warnings

    if verbose:
        return
    # Optuna flags heartbeats, metric names and more as experimental on every call: noise here.
    warnings.filterwarnings("ignore", message=r"(?s).*experimental")
    import optuna  # its import resets its logger, so quiet it afterwards

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("optuna").setLevel(logging.WARNING)


def die_with_parent() -> None:
    """Linux: this process gets SIGTERM when its parent dies (a ``kill -9`` of `hpo run` or
    `hpo campaign`), so spawned workers do not train on as orphans. SIGTERM goes through the
    worker's own handler: its trial is failed, never left RUNNING. Elsewhere, a no-op (the
    workers' own parent checks still apply)."""
    import ctypes
    import os
    import signal
    import sys

    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)
