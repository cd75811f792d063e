"""Process set-up shared by the command line and the worker processes it starts."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from types import FrameType

    # What signal.signal takes and returns: a function, SIG_IGN/SIG_DFL, None (set from C).
    Handler = Callable[[int, FrameType | None], object]
    SignalHandler = Handler | int | None


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


# --- stop signals ------------------------------------------------------------------------------
# SIGINT (Ctrl-C) and SIGTERM (SLURM's scancel, Kubernetes, `hpo run --budget`) stop a run: the
# first raises KeyboardInterrupt, every later one is ignored, so that it cannot cut short the
# telling of FAIL for the trial in progress. A terminal's Ctrl-C reaches every worker and the
# parent forwards a SIGTERM too, so two signals in a row are the rule, not the exception.
#
# While a run goes on, handlers are only ever swapped for other Python functions, never for
# SIG_IGN or SIG_DFL: a signal that arrives while a handler is being set to SIG_IGN/SIG_DFL is
# lost, and Python reports it as "OSError: Signal 15 ignored due to race condition", with a
# traceback. Tracebacks of interrupts that land in finalizers are kept quiet by _unraisable.


class _Stop:
    depth = 0  # nesting of stop_signals blocks: only the outermost installs and restores
    requested = False  # a stop signal came during the outermost block
    hook: Callable[[sys.UnraisableHookArgs], object] | None = None  # before _unraisable
    held: set[int] = set()  # what holds stops back (signals_deferred, hold_stops): ids
    pending = 0  # a stop signal that came while held


def _stop_once(signum: int, _frame: FrameType | None) -> None:
    if _Stop.requested:
        return  # the second signal: ignored
    if _Stop.held:
        _Stop.pending = signum  # raised when the last hold ends (_release)
        return
    _Stop.requested = True
    raise KeyboardInterrupt


def _hold(key: int) -> None:
    _Stop.held.add(key)


def _release(key: int) -> None:
    """End one hold; after the last, a stop that came meanwhile is raised (in the main thread,
    at the next line that can take it; the release may run in another thread)."""
    import signal

    _Stop.held.discard(key)
    if not _Stop.held and _Stop.pending:
        signum, _Stop.pending = _Stop.pending, 0
        signal.raise_signal(signum)


def _unraisable(unraisable: sys.UnraisableHookArgs) -> None:
    """sys.unraisablehook from a stop_signals block on. A KeyboardInterrupt that landed where
    Python can only print it, with a traceback (a finalizer, a weakref callback, an atexit
    function at exit), is not printed: inside a block the stop is raised again, at the next
    line that can take it; after one, the process is ending anyway. Python's report of a
    signal that came as its handler changed is not printed either."""
    import os
    import signal
    import threading

    exc = unraisable.exc_value
    if isinstance(exc, KeyboardInterrupt):
        if _Stop.depth and _Stop.requested:
            # Sent again from another thread a moment later: raised here, in this hook, it
            # would only be printed again. (Stops stay ignored until the hook's last line.)
            again = threading.Timer(0.01, os.kill, (os.getpid(), signal.SIGINT))
            again.daemon = True
            again.start()
            _Stop.requested = False
        return
    if isinstance(exc, OSError) and "ignored due to race condition" in str(exc):
        return
    (_Stop.hook or sys.__unraisablehook__)(unraisable)


def _ignore(_signum: int, _frame: FrameType | None) -> None:
    """SIG_IGN as a Python handler."""


def _as_default(signum: int, _frame: FrameType | None) -> None:
    """SIG_DFL as a Python handler: the process ends by the signal, as it would have."""
    import signal

    signal.signal(signum, signal.SIG_DFL)
    signal.raise_signal(signum)


def _python_handler(handler: SignalHandler) -> Handler:
    """``handler`` as a Python function (SIG_IGN, SIG_DFL and unknown ones replaced)."""
    import signal

    if callable(handler):
        return handler
    return _ignore if handler == signal.SIG_IGN else _as_default


def _stop_numbers() -> tuple[int, ...]:
    import signal

    return (signal.SIGINT, signal.SIGTERM)


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def stop_requested() -> bool:
    """Whether a stop signal came during the current stop_signals block."""
    return _Stop.requested and _Stop.depth > 0 and _in_main_thread()


@contextlib.contextmanager
def stop_signals(then: str = "restore") -> Iterator[None]:
    """SIGINT and SIGTERM raise KeyboardInterrupt once in this block; later ones are ignored.

    Blocks nest: an inner block changes nothing. When the outermost ends, ``then`` says what
    handles the signals from there on: "restore" the handlers from before; "ignore" nothing
    more (a worker process about to end); "ignore_if_stopped" ignore them if a stop came (the
    command line, exiting with 130: a late Ctrl-C must not raise in its clean-up), else
    restore. Outside the main thread signals cannot be handled; the block does nothing.
    Except with "restore", sys.unraisablehook stays _unraisable afterwards (see there).
    """
    import signal

    if not _in_main_thread():
        yield
        return
    if _Stop.depth:
        _Stop.depth += 1
        try:
            yield
        finally:
            _Stop.depth -= 1
        return
    _Stop.requested = False
    if sys.unraisablehook is not _unraisable:
        _Stop.hook, sys.unraisablehook = sys.unraisablehook, _unraisable
    old = {sig: signal.signal(sig, _stop_once) for sig in _stop_numbers()}
    _Stop.depth = 1
    try:
        yield
    finally:
        _Stop.depth, _Stop.pending = 0, 0
        _Stop.held.clear()
        ignore = then == "ignore" or (then == "ignore_if_stopped" and _Stop.requested)
        for sig, handler in old.items():
            # SIG_IGN itself, not _ignore: Python resets its own handlers as it exits, so a
            # signal in its last moments would end the process by the signal, not with 130.
            # (A signal that comes as it changes is reported to _unraisable, which is silent.)
            signal.signal(sig, signal.SIG_IGN if ignore else _python_handler(handler))
        if then == "restore" and sys.unraisablehook is _unraisable:
            sys.unraisablehook = _Stop.hook


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM while the block runs; one that arrived meanwhile is handled as it
    ends (a store write that must not be cut: a trial taken, a cell queued).

    In a stop_signals block the stop handler holds it (see hold_stops). Elsewhere, by swapping
    the Python handlers, not by masking: a thread mask covers only the main thread, and the
    kernel hands a process signal to any thread that does not block it (torch's threads),
    whose handler then ran in the main thread mid-block anyway. Python runs every handler in
    the main thread, so a handler that only records the signal holds it whichever thread
    received it."""
    import signal

    if not _in_main_thread():
        yield
        return
    if _Stop.depth:
        token = object()  # alive until the block ends: its id is this hold's alone
        _hold(id(token))
        try:
            yield
        finally:
            _release(id(token))
        return
    pending: list[int] = []
    old = {sig: _python_handler(signal.signal(sig, lambda signum, _f: pending.append(signum)))
           for sig in _stop_numbers()}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        if pending:
            old[pending[0]](pending[0], None)


def hold_stops(key: int) -> None:
    """Hold stop signals back while ``key`` (a store connection, from checkout to checkin) is
    in use by the main thread, until release_stops(key), wherever that runs: KeyboardInterrupt
    must not cut a store transaction (a connection left holding SQLite's write lock blocks
    every worker that tells its trial FAIL). Outside a stop_signals block: nothing."""
    if _Stop.depth and _in_main_thread():
        _hold(key)


def release_stops(key: int) -> None:
    _release(key)


@contextlib.contextmanager
def stop_signals_blocked() -> Iterator[None]:
    """Block SIGINT/SIGTERM in this thread while the block runs; a child process started in it
    (multiprocessing's spawn) inherits the block, so that a signal sent to it before it installs
    its handlers waits for them (unblock_stop_signals) instead of killing it with a traceback
    half-way through its imports. Signals sent to this process meanwhile arrive afterwards."""
    import signal

    signal.pthread_sigmask(signal.SIG_BLOCK, _stop_numbers())
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _stop_numbers())


def unblock_stop_signals() -> None:
    """In a child started under stop_signals_blocked, once its handlers are installed."""
    import signal

    signal.pthread_sigmask(signal.SIG_UNBLOCK, _stop_numbers())
