"""A store that went away (a database restart, a dropped connection, a busy file): which
errors retrying may cure, and the worker's retry loop."""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar

from hpo.errors import StoreError
from hpo.store.url import (
    FULL_OR_READONLY,
    RETRY_BACKOFF_S,
    STORE_RETRY_S,
    StoreURL,
    first_line,
    mask,
)

P = ParamSpec("P")
R = TypeVar("R")


def transient(exc: BaseException) -> bool:
    """A store error that retrying may cure: a lost or refused connection, a busy file.

    Optuna wraps SQLAlchemy's errors (StorageInternalError from OperationalError), so the
    whole chain of causes is looked at. A full disk or a read-only file is not transient.
    """
    seen = []
    while exc is not None and len(seen) < 10:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    if any(full_or_readonly(e) for e in seen if not isinstance(e, StoreError)):
        return False
    # By name: SQLAlchemy's, psycopg2's and sqlite3's classes all carry these names.
    names = {type(e).__name__ for e in seen}
    return bool(names & {"OperationalError", "InterfaceError", "DisconnectionError"})


def full_or_readonly(exc: BaseException) -> bool:
    text = str(getattr(exc, "orig", None) or exc).lower()
    return any(marker in text for marker in FULL_OR_READONLY)


def root_message(exc: BaseException) -> str:
    """The first line of the deepest cause: the database's own words, password masked."""
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__
    return mask(first_line(exc))


def unusable(url: StoreURL, exc: BaseException) -> StoreError | None:
    """A one-line StoreError for a full or read-only store, else None."""
    chain: BaseException | None = exc
    while chain is not None:
        # Not our own StoreError (it quotes the cause): the cause itself, so it is said once.
        if not isinstance(chain, StoreError) and full_or_readonly(chain):
            return StoreError(f"cannot write to store {mask(url)}: {first_line(chain)}; free "
                              "space (or make it writable), then re-run the same command to "
                              "resume")
        chain = chain.__cause__ or chain.__context__
    return None


class Retry:
    """Bounded retrying of store operations: ``failed`` sleeps with backoff, or gives up.

    One warning when the store first fails, one when it answers again; after STORE_RETRY_S
    seconds without a success a StoreError (one line) stops the worker.
    """

    def __init__(self, url: StoreURL, limit_s: float | None = None) -> None:
        self.url, self.limit_s = url, STORE_RETRY_S if limit_s is None else limit_s
        self.since: float | None = None
        self.delay = RETRY_BACKOFF_S[0]

    def failed(self, exc: BaseException) -> None:
        import sys
        import time

        problem = unusable(self.url, exc)
        if problem is not None:
            raise problem from None
        if not transient(exc):
            raise exc
        now = time.monotonic()
        if self.since is None:
            self.since = now
            print(f"hpo: warning: store {mask(self.url)} failed ({root_message(exc)}); "
                  f"retrying for up to {self.limit_s:g} s", file=sys.stderr)
        elif now - self.since > self.limit_s:
            raise StoreError(f"store {mask(self.url)} unreachable for {self.limit_s:g} s "
                             f"({root_message(exc)}); re-run the same command to resume once "
                             "it answers") from None
        time.sleep(self.delay)
        self.delay = min(self.delay * 2, RETRY_BACKOFF_S[1])

    def succeeded(self) -> None:
        import sys

        if self.since is not None:
            print(f"hpo: warning: store {mask(self.url)} answers again; carrying on",
                  file=sys.stderr)
        self.since, self.delay = None, RETRY_BACKOFF_S[0]

    def call(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """``fn(*args, **kwargs)`` retried on transient store errors."""
        while True:
            try:
                result = fn(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - failed() re-raises what it cannot cure
                self.failed(exc)
                continue
            self.succeeded()
            return result
