"""Storage URLs: resolve, check, open, lock, and never show a password.

Checks run before Optuna touches anything, so that a wrong URL or a file that is not an
Optuna store gives one line and leaves the file exactly as it was.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
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
CONNECT_TIMEOUT_S = 10
# How long a worker keeps retrying a store that went away (a database restart, a dropped
# connection, a busy SQLite file) before it stops with one line; backoff 0.5 s doubling to 8 s.
STORE_RETRY_S = int(os.environ.get("HPO_STORE_RETRY", "60"))
RETRY_BACKOFF_S = (0.5, 8.0)
# SQLite/PostgreSQL messages that retrying cannot cure: the user has to free space or fix modes.
FULL_OR_READONLY = ("database or disk is full", "no space left on device",
                    "attempt to write a readonly database", "read-only file system",
                    "could not extend file", "disk i/o error")
LOCK_KEY = zlib.crc32(b"hpo-store-lock")
SCHEMES = "sqlite:///FILE, postgresql://USER:PASSWORD@HOST/DB, mysql://..., or journal:FILE"


def resolve_url(url: str | None) -> str:
    """--storage, else $HPO_STORAGE, else an SQLite file in the working directory."""
    return url or os.environ.get("HPO_STORAGE") or DEFAULT_URL


def mask(text: str) -> str:
    """Hide passwords of every URL in ``text`` (``user:***@host``)."""
    # Greedy: a password may hold an unescaped "@"; the host is what follows the last one.
    return re.sub(r"(\w[\w+.-]*://[^:/@\s]*:)(\S*)(@[^@\s]*)", r"\1***\3", text)


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


def _writable(path: Path) -> bool:
    """``os.access`` says yes to root whatever the mode; a file nobody may write is read-only."""
    return os.access(path, os.W_OK) and bool(path.stat().st_mode & 0o222)


def _check_store_path(path: Path, *, create: bool, example: str) -> bool:
    """Checks shared by file stores; False when the file does not exist yet (and may be made)."""
    if not path.exists():
        if not create:
            raise StoreError(f"no store at {path}; run `hpo run` first or pass --storage URL")
        if not path.parent.is_dir():
            raise StoreError(f"cannot create store {path}: folder {path.parent} does not exist")
        if not _writable(path.parent):
            raise StoreError(f"cannot create store {path}: folder {path.parent} is read-only")
        return False
    if path.is_dir():
        raise StoreError(f"store {path} is a folder; give a file, e.g. {example}")
    return True


def check_journal(path: Path, *, create: bool) -> None:
    """The journal counterpart of :func:`check_sqlite`: one line per problem, nothing written."""
    if not _check_store_path(path, create=create, example=f"journal:{path}/runs.log"):
        return
    try:
        with path.open("rb") as fh:
            first = fh.readline(1 << 20)
    except OSError as exc:
        raise StoreError(f"cannot read store {path}: {exc.strerror}") from None
    if first:
        try:
            ok = "op_code" in json.loads(first)
        except (ValueError, TypeError):
            ok = False
        if not ok:
            raise StoreError(f"{path} is not an Optuna journal file; point --storage at an hpo "
                             "store")
    if create and not _writable(path):
        raise StoreError(f"store {path} is read-only; make it writable or use another --storage")


def check_sqlite(path: Path, *, create: bool) -> None:
    """One-line errors for every way an SQLite file can be unusable; reads, never writes."""
    if not _check_store_path(path, create=create, example=f"sqlite:///{path}/hpo.db"):
        return
    try:
        with path.open("rb") as fh:
            head = fh.read(len(SQLITE_MAGIC))
    except OSError as exc:
        raise StoreError(f"cannot read store {path}: {exc.strerror}") from None
    if head and head != SQLITE_MAGIC:
        raise StoreError(f"{path} is not an SQLite database; point --storage at an hpo store")
    if create and not _writable(path):
        raise StoreError(f"store {path} is read-only; make it writable or use another --storage")
    if not head:
        return  # an empty file is a valid, empty SQLite database
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=SQLITE_BUSY_TIMEOUT_S)
        try:
            rows = con.execute("SELECT name FROM sqlite_master WHERE type='table'")
            tables = {r[0] for r in rows}
            con.execute("PRAGMA quick_check").fetchone()
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        if _hot_journal(path) and "readonly" in str(exc):
            # A process killed mid-write left its rollback journal: this read-only look cannot
            # roll it back, the store's own read-write connection does (SQLite recovery).
            return
        raise StoreError(f"store {path} is corrupt ({exc}); restore it from a backup") from None
    if tables and "studies" not in tables:
        raise StoreError(
            f"{path} is an SQLite database but not an Optuna store (no 'studies' table); "
            "use another --storage file"
        )


def _hot_journal(path: Path) -> bool:
    journal = path.with_name(path.name + "-journal")
    return journal.exists() and journal.stat().st_size > 0


def driver_url(url: str) -> str:
    """``url`` as SQLAlchemy should get it: ``postgres://`` is not a scheme to it, and a bare
    ``postgresql://`` means psycopg (3) to SQLAlchemy 2.1 but psycopg2 to 2.0 and to hpo's
    ``postgres`` extra; name psycopg2 when it is the one installed."""
    import importlib.util

    match = re.match(r"(postgresql|postgres)://", url)
    if not match:
        return url
    rest = url[match.end():]
    if importlib.util.find_spec("psycopg") is None and importlib.util.find_spec("psycopg2"):
        return f"postgresql+psycopg2://{rest}"
    return f"postgresql://{rest}"


def check_url(url: str) -> None:
    """What can be said of a store without opening it: the scheme, the file (read, never
    written) or the database driver. `hpo run --jobs N` asks this before it starts workers,
    which a bad store would otherwise have to stop again."""
    store_kind = kind(url)
    if store_kind == "journal":
        check_journal(journal_path(url), create=True)
    elif store_kind == "sqlite":
        check_sqlite(sqlite_path(url), create=True)
    else:
        from sqlalchemy.engine import make_url

        try:
            make_url(driver_url(url)).get_dialect().import_dbapi()
        except ModuleNotFoundError as exc:
            raise _missing_driver(url, exc) from None
        except Exception:  # noqa: BLE001 - anything else is reported when the store is opened
            pass


def open_storage(url: str, *, create: bool = True, heartbeat: bool = False) -> Any:
    """An Optuna storage for ``url``; ``heartbeat`` lets dead workers' trials be failed.

    Opening creates the tables of a new store, which two processes must not do at once (SQLite
    and PostgreSQL both fail with "already exists"), so it happens under the store-wide lock.
    """
    store_kind = kind(url)
    if store_kind == "journal":
        path = journal_path(url)
        check_journal(path, create=create)
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        try:
            return JournalStorage(JournalFileBackend(str(path)))
        except Exception as exc:
            raise StoreError(f"cannot open journal store {path}: {_first_line(exc)}") from None

    kwargs: dict[str, Any] = {}
    if store_kind == "sqlite" and (not sqlite_path(url).exists() or sqlite_path(url).is_dir()):
        check_sqlite(sqlite_path(url), create=create)  # before the lock creates an empty file
    if store_kind == "sqlite":
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S}}
    elif url.startswith(("postgresql", "postgres")):
        # An unreachable host answers nothing; without a limit libpq waits for minutes. A
        # restarted server leaves dead connections in the pool: ping before handing one out.
        kwargs["engine_kwargs"] = {"connect_args": {"connect_timeout": CONNECT_TIMEOUT_S},
                                   "pool_pre_ping": True}
    if heartbeat:
        kwargs.update(heartbeat_interval=HEARTBEAT_INTERVAL_S, grace_period=GRACE_PERIOD_S)
    with _creation_lock(url, kwargs.get("engine_kwargs", {})):
        if store_kind == "sqlite":
            # Under the lock: a store another process is creating right now would look like
            # "an SQLite database but not an Optuna store" half-way through.
            check_sqlite(sqlite_path(url), create=create)
        storage = _rdb_storage(url, kwargs)
    if store_kind == "sqlite" and create:
        # Only for workers (who pop trials): readers such as the dashboard, which polls every
        # few seconds, must not queue for the write lock.
        _serialize_sqlite_transactions(storage.engine)
    return storage


def _rdb_storage(url: str, kwargs: dict[str, Any]) -> Any:
    import optuna

    try:
        return optuna.storages.RDBStorage(driver_url(url), **kwargs)
    except ImportError as exc:  # Optuna re-raises the driver's ModuleNotFoundError as its cause
        cause = exc if isinstance(exc, ModuleNotFoundError) else exc.__cause__
        if isinstance(cause, ModuleNotFoundError):
            raise _missing_driver(url, cause) from None
        raise StoreError(f"cannot open store {mask(url)}: {mask(_first_line(exc))}") from None
    except Exception as exc:
        raise StoreError(f"cannot open store {mask(url)}: {mask(_first_line(exc))}") from None


# The pip package that provides each database driver module SQLAlchemy may ask for.
DRIVER_PACKAGES = {"psycopg2": "psycopg2-binary", "psycopg": "'psycopg[binary]'",
                   "MySQLdb": "mysqlclient", "pymysql": "PyMySQL", "oracledb": "oracledb",
                   "pyodbc": "pyodbc"}


def _missing_driver(url: str, exc: ModuleNotFoundError) -> StoreError:
    # SQLAlchemy 2.1 reads postgresql:// as psycopg (3); hpo's postgres extra is psycopg2.
    name = (exc.name or "").split(".")[0]
    package = DRIVER_PACKAGES.get(name, name)
    alternative = (" or name psycopg2 in the URL (postgresql+psycopg2://...) and pip install "
                   "psycopg2-binary" if name == "psycopg" else "")
    return StoreError(f"storage {mask(url)!r} needs the Python driver {name!r}; pip install "
                      f"{package}{alternative}")


@contextlib.contextmanager
def _creation_lock(url: str, engine_kwargs: dict[str, Any]) -> Iterator[None]:
    """The store-wide lock of :func:`exclusive`, taken before Optuna's storage object exists."""
    if kind(url) == "sqlite":
        with _file_lock(sqlite_path(url)):
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
        raise _missing_driver(url, exc) from None
    except Exception as exc:
        raise StoreError(f"cannot open store {mask(url)}: {mask(_first_line(exc))}") from None
    try:
        with _advisory_lock(engine, url):
            yield
    finally:
        engine.dispose()


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
def _file_lock(path: Path) -> Iterator[None]:
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
def _advisory_lock(engine: Any, url: str) -> Iterator[None]:
    """PostgreSQL's session advisory lock. It dies with its connection: a server restart frees
    it silently while its holder still writes, so two reconciles may then queue one cell twice.
    Workers therefore also check every trial they pop (runner.pop_waiting): a second run of a
    (cell, seed) is never started, whatever the lock did."""
    try:
        conn = engine.connect()
        conn.exec_driver_sql(f"SELECT pg_advisory_lock({LOCK_KEY})")
    except Exception as exc:
        raise StoreError(f"cannot open store {mask(url)}: {mask(_first_line(exc))}") from None
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
def exclusive(url: str, storage: Any) -> Iterator[None]:
    """Hold a store-wide lock: study creation and the re-queueing of cells happen once at a time.

    SQLite and journal files take an flock on the file itself (independent of SQLite's own
    POSIX locks); PostgreSQL a session advisory lock. Other engines run unlocked.
    """
    store_kind = kind(url)
    if store_kind in ("sqlite", "journal"):
        with _file_lock(sqlite_path(url) if store_kind == "sqlite" else journal_path(url)):
            yield
        return
    engine = getattr(storage, "engine", None)
    if engine is not None and engine.dialect.name == "postgresql":
        with _advisory_lock(engine, url):
            yield
        return
    yield


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
    return mask(_first_line(exc))


def unusable(url: str, exc: BaseException) -> StoreError | None:
    """A one-line StoreError for a full or read-only store, else None."""
    chain: BaseException | None = exc
    while chain is not None:
        # Not our own StoreError (it quotes the cause): the cause itself, so it is said once.
        if not isinstance(chain, StoreError) and full_or_readonly(chain):
            return StoreError(f"cannot write to store {mask(url)}: {_first_line(chain)}; free "
                              "space (or make it writable), then re-run the same command to "
                              "resume")
        chain = chain.__cause__ or chain.__context__
    return None


class Retry:
    """Bounded retrying of store operations: ``failed`` sleeps with backoff, or gives up.

    One warning when the store first fails, one when it answers again; after STORE_RETRY_S
    seconds without a success a StoreError (one line) stops the worker.
    """

    def __init__(self, url: str, limit_s: float | None = None) -> None:
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

    def call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` retried on transient store errors."""
        while True:
            try:
                result = fn(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - failed() re-raises what it cannot cure
                self.failed(exc)
                continue
            self.succeeded()
            return result


def finished_runs(url: str, name: str) -> tuple[set[tuple[str, int]], float | None]:
    """(cell, seed) runs already finished in study ``name`` and the largest peak_rss_mb of one
    worker, read with plain SQL and without Optuna (fast, before workers start); nothing
    known (an empty set, None) for a new store, a journal file or any surprise."""
    sql = ("SELECT a.trial_id, a.key, a.value_json FROM trial_user_attributes a "
           "JOIN trials t ON a.trial_id = t.trial_id JOIN studies s ON t.study_id = s.study_id "
           "WHERE s.study_name = :name AND t.state IN ('COMPLETE', 'PRUNED') "
           "AND a.key IN ('cell', 'seed', 'peak_rss_mb')")
    try:
        rows = _select(url, sql, name)
    except Exception:  # noqa: BLE001 - only an estimate: the run itself reports real errors
        return set(), None
    attrs: dict[int, dict[str, Any]] = {}
    for trial_id, key, value_json in rows:
        attrs.setdefault(trial_id, {})[key] = json.loads(value_json)
    runs = {(a["cell"], int(a["seed"])) for a in attrs.values() if "cell" in a and "seed" in a}
    peaks = [float(a["peak_rss_mb"]) for a in attrs.values() if "peak_rss_mb" in a]
    return runs, max(peaks) if peaks else None


def _select(url: str, sql: str, name: str) -> list[tuple[Any, ...]]:
    store_kind = kind(url)
    if store_kind == "sqlite":
        path = sqlite_path(url)
        if not path.is_file():
            return []
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute(sql.replace(":name", "?"), (name,)).fetchall()
        finally:
            con.close()
    if store_kind != "rdb":
        return []
    import sqlalchemy

    engine = sqlalchemy.create_engine(driver_url(url), poolclass=sqlalchemy.pool.NullPool,
                                      connect_args={"connect_timeout": CONNECT_TIMEOUT_S})
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sqlalchemy.text(sql), {"name": name})]
    finally:
        engine.dispose()


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
