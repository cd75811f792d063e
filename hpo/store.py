"""Storage URLs: resolve, check, open, lock, and never show a password.

Checks run before Optuna touches anything, so that a wrong URL or a file that is not an
Optuna store gives one line and leaves the file exactly as it was.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import sqlite3
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hpo.errors import StoreError

DEFAULT_URL = "sqlite:///hpo.db"
SQLITE_MAGIC = b"SQLite format 3\x00"
SQLITE_BUSY_TIMEOUT_S = 60  # Optuna's default of 5 s raises under 4+ busy workers
HEARTBEAT_INTERVAL_S = int(os.environ.get("HPO_HEARTBEAT_INTERVAL", "10"))
GRACE_PERIOD_S = int(os.environ.get("HPO_GRACE_PERIOD", "60"))
SCHEMES = "sqlite:///FILE, postgresql://USER:PASSWORD@HOST/DB, mysql://..., or journal:FILE"


def resolve_url(url: str | None) -> str:
    """--storage, else $HPO_STORAGE, else an SQLite file in the working directory."""
    return url or os.environ.get("HPO_STORAGE") or DEFAULT_URL


def mask(text: str) -> str:
    """Hide passwords of every URL in ``text`` (``user:***@host``)."""
    return re.sub(r"(\w[\w+.-]*://[^:/@\s]*:)([^@\s]*)(@)", r"\1***\3", text)


def kind(url: str) -> str:
    if url.startswith("sqlite:///"):
        return "sqlite"
    if url.startswith("journal:"):
        return "journal"
    if re.match(r"(postgresql|postgres|mysql|mariadb|oracle|mssql)(\+\w+)?://", url):
        return "rdb"
    raise StoreError(f"unknown storage URL {mask(url)!r}; use {SCHEMES}")


def sqlite_path(url: str) -> Path:
    path = url[len("sqlite:///"):].split("?", 1)[0]
    if not path or path == ":memory:":
        raise StoreError(f"storage {url!r} has no file; use sqlite:///FILE (e.g. sqlite:///hpo.db)")
    return Path(path)


def journal_path(url: str) -> Path:
    path = url[len("journal:"):]
    if path.startswith("//"):
        path = path[2:]
    if not path:
        raise StoreError(f"storage {url!r} has no file; use journal:FILE (e.g. journal:runs.log)")
    return Path(path)


def check_sqlite(path: Path, *, create: bool) -> None:
    """One-line errors for every way an SQLite file can be unusable; reads, never writes."""
    if not path.exists():
        if not create:
            raise StoreError(f"no store at {path}; run `hpo run` first or pass --storage URL")
        if not path.parent.is_dir():
            raise StoreError(f"cannot create store {path}: folder {path.parent} does not exist")
        if not os.access(path.parent, os.W_OK):
            raise StoreError(f"cannot create store {path}: folder {path.parent} is read-only")
        return
    if path.is_dir():
        raise StoreError(f"store {path} is a folder; give a file, e.g. sqlite:///{path}/hpo.db")
    try:
        with path.open("rb") as fh:
            head = fh.read(len(SQLITE_MAGIC))
    except OSError as exc:
        raise StoreError(f"cannot read store {path}: {exc.strerror}") from None
    if head and head != SQLITE_MAGIC:
        raise StoreError(f"{path} is not an SQLite database; point --storage at an hpo store")
    if create and not os.access(path, os.W_OK):
        raise StoreError(f"store {path} is read-only; make it writable or use another --storage")
    if not head:
        return  # an empty file is a valid, empty SQLite database
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = con.execute("SELECT name FROM sqlite_master WHERE type='table'")
            tables = {r[0] for r in rows}
            con.execute("PRAGMA quick_check").fetchone()
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"store {path} is corrupt ({exc}); restore it from a backup") from None
    if tables and "studies" not in tables:
        raise StoreError(
            f"{path} is an SQLite database but not an Optuna store (no 'studies' table); "
            "use another --storage file"
        )


def open_storage(url: str, *, create: bool = True, heartbeat: bool = False) -> Any:
    """An Optuna storage for ``url``; ``heartbeat`` lets dead workers' trials be failed."""
    import optuna

    store_kind = kind(url)
    if store_kind == "journal":
        path = journal_path(url)
        if not path.exists() and not create:
            raise StoreError(f"no store at {path}; run `hpo run` first or pass --storage URL")
        if not path.parent.is_dir():
            raise StoreError(f"cannot create store {path}: folder {path.parent} does not exist")
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        try:
            return JournalStorage(JournalFileBackend(str(path)))
        except Exception as exc:
            raise StoreError(f"cannot open journal store {path}: {_first_line(exc)}") from None

    kwargs: dict[str, Any] = {}
    if store_kind == "sqlite":
        check_sqlite(sqlite_path(url), create=create)
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S}}
    if heartbeat:
        kwargs.update(heartbeat_interval=HEARTBEAT_INTERVAL_S, grace_period=GRACE_PERIOD_S)
    try:
        storage = optuna.storages.RDBStorage(url, **kwargs)
    except ModuleNotFoundError as exc:
        raise StoreError(
            f"storage {mask(url)!r} needs the Python driver {exc.name!r}; install it (for "
            "PostgreSQL: pip install psycopg2-binary)"
        ) from None
    except Exception as exc:
        raise StoreError(f"cannot open store {mask(url)}: {mask(_first_line(exc))}") from None
    if store_kind == "sqlite":
        _serialize_sqlite_transactions(storage.engine)
    return storage


def _serialize_sqlite_transactions(engine: Any) -> None:
    """Make every SQLite transaction take the write lock when it begins.

    Python's sqlite3 starts a transaction only at the first write, so Optuna's "read WAITING,
    then set RUNNING" is not atomic across processes and two workers can pop the same trial.
    BEGIN IMMEDIATE closes that gap; the busy timeout makes the others wait their turn.
    """
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _no_implicit_begin(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()  # connections opened before the listeners existed would skip them


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@contextlib.contextmanager
def exclusive(url: str, storage: Any) -> Iterator[None]:
    """Hold a store-wide lock: study creation and the re-queueing of cells happen once at a time.

    SQLite and journal files take an flock on the file itself (independent of SQLite's own
    POSIX locks); PostgreSQL a session advisory lock. Other engines run unlocked.
    """
    store_kind = kind(url)
    if store_kind in ("sqlite", "journal"):
        path = sqlite_path(url) if store_kind == "sqlite" else journal_path(url)
        path.touch(exist_ok=True)
        with path.open("rb") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
        return
    engine = getattr(storage, "engine", None)
    if engine is not None and engine.dialect.name == "postgresql":
        key = zlib.crc32(b"hpo-store-lock")
        with engine.connect() as conn:
            conn.exec_driver_sql(f"SELECT pg_advisory_lock({key})")
            try:
                yield
            finally:
                conn.exec_driver_sql(f"SELECT pg_advisory_unlock({key})")
                conn.commit()
        return
    yield


def study_names(storage: Any) -> list[str]:
    import optuna

    return [s.study_name for s in optuna.get_all_study_summaries(storage=storage)]


def load_study(storage: Any, name: str) -> Any:
    """Load an existing study; an unknown name lists the ones that exist."""
    import optuna

    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        names = study_names(storage)
        known = ", ".join(names) if names else "none yet"
        raise StoreError(f"no study {name!r} in the store (studies there: {known})") from None
