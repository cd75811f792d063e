"""The store-wide lock: study creation and re-queueing happen once at a time."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from hpo.errors import StoreError
from hpo.store.url import LOCK_KEY, StoreURL, first_line, mask

if TYPE_CHECKING:
    import optuna
    import sqlalchemy


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    # os.open rather than Path.touch: locking must not change the store's mtime.
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StoreError(f"cannot open store {path}: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextlib.contextmanager
def advisory_lock(engine: sqlalchemy.engine.Engine, url: str) -> Iterator[None]:
    """PostgreSQL's session advisory lock. It dies with its connection: a server restart frees
    it silently while its holder still writes, so two reconciles may then queue one cell twice.
    Workers therefore also check every trial they pop (runner.pop_waiting): a second run of a
    (cell, seed) is never started, whatever the lock did."""
    try:
        conn = engine.connect()
        conn.exec_driver_sql(f"SELECT pg_advisory_lock({LOCK_KEY})")
    except Exception as exc:
        raise StoreError(f"cannot open store {mask(url)}: {mask(first_line(exc))}") from None
    try:
        yield
    finally:
        try:
            conn.exec_driver_sql(f"SELECT pg_advisory_unlock({LOCK_KEY})")
            conn.commit()
        except Exception:  # noqa: BLE001 - a dead connection: the server dropped the lock
            pass
        finally:
            conn.close()  # a session lock dies with its connection, whatever happened above


@contextlib.contextmanager
def exclusive(url: StoreURL, storage: optuna.storages.BaseStorage) -> Iterator[None]:
    """Hold a store-wide lock: study creation and the re-queueing of cells happen once at a time.

    SQLite and journal files take an flock on the file itself (independent of SQLite's own
    POSIX locks); PostgreSQL a session advisory lock. Other engines run unlocked.
    """
    if url.kind in ("sqlite", "journal"):
        with file_lock(url.path):
            yield
        return
    engine = getattr(storage, "engine", None)
    if engine is not None and engine.dialect.name == "postgresql":
        with advisory_lock(engine, url.url):
            yield
        return
    yield
