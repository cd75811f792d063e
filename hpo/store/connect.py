"""Opening a store: Optuna's storage for a URL, created once under a lock."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from hpo.errors import StoreError
from hpo.store.locks import advisory_lock, file_lock
from hpo.store.url import (
    CONNECT_TIMEOUT_S,
    GRACE_PERIOD_S,
    HEARTBEAT_INTERVAL_S,
    SQLITE_BUSY_TIMEOUT_S,
    StoreURL,
    check_journal,
    check_sqlite,
    driver_url,
    first_line,
    mask,
    missing_driver,
)

if TYPE_CHECKING:
    import sqlite3

    import sqlalchemy
    from optuna.storages import JournalStorage, RDBStorage
    from sqlalchemy.pool import ConnectionPoolEntry


def open_storage(url: StoreURL, *, create: bool = True,
                 heartbeat: bool = False) -> JournalStorage | RDBStorage:
    """An Optuna storage for ``url``; ``heartbeat`` lets dead workers' trials be failed.

    Opening creates the tables of a new store, which two processes must not do at once (SQLite
    and PostgreSQL both fail with "already exists"), so it happens under the store-wide lock.
    """
    path = url.path
    if url.kind == "journal":
        check_journal(path, create=create)
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        from hpo.store import journal

        if path.exists():
            (journal.repair_cut_tail if create else journal.warn_cut_tail)(path)

        try:
            return JournalStorage(JournalFileBackend(str(path)))
        except Exception as exc:
            raise StoreError(f"cannot open journal store {path}: {first_line(exc)}") from None

    kwargs: dict[str, Any] = {}
    if url.kind == "sqlite" and (not path.exists() or path.is_dir()):
        check_sqlite(path, create=create)  # before the lock creates an empty file
    if url.kind == "sqlite":
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S}}
    elif url.url.startswith(("postgresql", "postgres")):
        # An unreachable host answers nothing; without a limit libpq waits for minutes. A
        # restarted server leaves dead connections in the pool: ping before handing one out.
        kwargs["engine_kwargs"] = {"connect_args": {"connect_timeout": CONNECT_TIMEOUT_S},
                                   "pool_pre_ping": True}
    if heartbeat:
        kwargs.update(heartbeat_interval=HEARTBEAT_INTERVAL_S, grace_period=GRACE_PERIOD_S)
    with _creation_lock(url, kwargs.get("engine_kwargs", {})):
        if url.kind == "sqlite":
            # Under the lock: a store another process is creating right now would look like
            # "an SQLite database but not an Optuna store" half-way through.
            check_sqlite(path, create=create)
        storage = _rdb_storage(url.url, kwargs)
    if url.kind == "sqlite" and create:
        # Only for workers (who pop trials): readers such as the dashboard, which polls every
        # few seconds, must not queue for the write lock.
        _serialize_sqlite_transactions(storage.engine)
    return storage


def _rdb_storage(url: str, kwargs: dict[str, Any]) -> RDBStorage:
    import optuna

    try:
        return optuna.storages.RDBStorage(driver_url(url), **kwargs)
    except ImportError as exc:  # Optuna re-raises the driver's ModuleNotFoundError as its cause
        cause = exc if isinstance(exc, ModuleNotFoundError) else exc.__cause__
        if isinstance(cause, ModuleNotFoundError):
            raise missing_driver(url, cause) from None
        raise StoreError(f"cannot open store {mask(url)}: {mask(first_line(exc))}") from None
    except Exception as exc:
        raise StoreError(f"cannot open store {mask(url)}: {mask(first_line(exc))}") from None


@contextlib.contextmanager
def _creation_lock(store_url: StoreURL, engine_kwargs: dict[str, Any]) -> Iterator[None]:
    """The store-wide lock of :func:`exclusive`, taken before Optuna's storage object exists."""
    url = store_url.url
    if store_url.kind == "sqlite":
        with file_lock(store_url.path):
            yield
        return
    if not url.startswith(("postgresql", "postgres")):
        yield  # MySQL & co.: no lock; create the study once before starting workers there
        return
    import sqlalchemy

    try:
        engine = sqlalchemy.create_engine(driver_url(url), poolclass=sqlalchemy.pool.NullPool,
                                          **engine_kwargs)
    except ModuleNotFoundError as exc:
        raise missing_driver(url, exc) from None
    except Exception as exc:
        raise StoreError(f"cannot open store {mask(url)}: {mask(first_line(exc))}") from None
    try:
        with advisory_lock(engine, url):
            yield
    finally:
        engine.dispose()


def _serialize_sqlite_transactions(engine: sqlalchemy.engine.Engine) -> None:
    """Make every SQLite transaction take the write lock when it begins.

    Python's sqlite3 starts a transaction only at the first write, so Optuna's "read WAITING,
    then set RUNNING" is not atomic across processes and two workers can pop the same trial.
    BEGIN IMMEDIATE closes that gap; the busy timeout makes the others wait their turn.
    """
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _no_implicit_begin(dbapi_connection: sqlite3.Connection,
                           _record: ConnectionPoolEntry) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection: sqlalchemy.engine.Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()  # connections opened before the listeners existed would skip them
