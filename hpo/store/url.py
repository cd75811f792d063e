"""Storage URLs: resolve, parse once (kind and file), mask passwords, check files and drivers
before use."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from hpo.errors import StoreError, mask  # noqa: F401  (re-exported: store.mask)

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


@dataclass(frozen=True)
class StoreURL:
    """A storage URL parsed once (by :func:`parse`): each command parses its ``--storage`` and
    passes this down. Frozen and plain, so RunOptions holding one still pickles to workers."""

    url: str
    kind: Literal["sqlite", "journal", "rdb"]
    path: Path | None = None  # the store's file (sqlite, journal); None for a database server

    def __str__(self) -> str:
        return self.url


def parse(url: str) -> StoreURL:
    """``url`` parsed: its kind and file, or one line for an unknown scheme or a URL without a
    file. Parsed once, at the edge (a command's ``--storage``, the Python API, a benchmark's
    own store); library functions take the StoreURL."""
    if url.startswith("sqlite:///"):
        return StoreURL(url, "sqlite", sqlite_path(url))
    if url.startswith("journal:"):
        return StoreURL(url, "journal", journal_path(url))
    if re.match(r"(postgresql|postgres|mysql|mariadb|oracle|mssql)(\+\w+)?://", url):
        return StoreURL(url, "rdb")
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
        if not create:  # reading it would make Optuna write its tables into the file
            raise StoreError(f"store {path} is empty: no study has run into it yet; run `hpo "
                             f"run --study NAME --storage sqlite:///{path}` first")
        return  # an empty file is a valid, empty SQLite database
    # A crash mid-commit leaves a hot rollback journal beside the file: the store's own
    # connection rolls it back, so the file's sizes are not judged until then.
    cut = None if hot_journal(path) else _cut_short(path)
    if cut:
        raise StoreError(f"store {path} is corrupt ({cut}); restore it from a backup")
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=SQLITE_BUSY_TIMEOUT_S)
        try:
            rows = con.execute("SELECT name FROM sqlite_master WHERE type='table'")
            tables = {r[0] for r in rows}
            problem = _first_problem(con.execute("PRAGMA quick_check(1)").fetchone())
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        if hot_journal(path) and "readonly" in str(exc):
            # A process killed mid-write left its rollback journal: this read-only look cannot
            # roll it back, the store's own read-write connection does (SQLite recovery).
            return
        raise StoreError(f"store {path} is corrupt ({exc}); restore it from a backup") from None
    if problem:  # scribbled pages: the check reports them in rows, it does not raise
        raise StoreError(f"store {path} is corrupt ({problem}); restore it from a backup")
    if tables and "studies" not in tables:
        raise StoreError(
            f"{path} is an SQLite database but not an Optuna store (no 'studies' table); "
            "use another --storage file"
        )


def _cut_short(path: Path) -> str | None:
    """Why an SQLite file is cut short, read from its header; None when whole. SQLite reads a
    cut page's missing bytes as zeros and its own quick_check passes, so the sizes decide: the
    file must be whole pages, and (where the header's page count is valid) all of them."""
    with path.open("rb") as fh:
        header = fh.read(100)
    size = path.stat().st_size
    if len(header) < 100:
        return f"{size} bytes, less than SQLite's 100-byte header"
    page = int.from_bytes(header[16:18], "big")
    page = 65536 if page == 1 else page
    if page < 512 or page & (page - 1):
        return f"its header's page size {page} is not one SQLite writes"
    if size % page:
        return f"{size:,} bytes is not a whole number of its {page:,}-byte pages: cut short"
    pages = int.from_bytes(header[28:32], "big")
    counter_valid = header[24:28] == header[92:96]
    if counter_valid and pages and pages * page > size:
        return (f"its header counts {pages:,} pages of {page:,} bytes, the file holds "
                f"{size // page:,}")
    return None


def _first_problem(row: tuple | None) -> str | None:
    """The first problem a ``PRAGMA quick_check`` row names; None when it says 'ok'."""
    text = str(row[0]) if row else "ok"
    if text == "ok":
        return None
    lines = [line for line in text.splitlines() if line and not line.startswith("***")]
    return lines[0] if lines else text


def hot_journal(path: Path) -> bool:
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


def check_url(url: StoreURL) -> None:
    """What can be said of a store without opening it: the scheme, the file (read, never
    written) or the database driver. `hpo run --jobs N` asks this before it starts workers,
    which a bad store would otherwise have to stop again."""
    if url.kind == "journal":
        check_journal(url.path, create=True)
    elif url.kind == "sqlite":
        check_sqlite(url.path, create=True)
    else:
        from sqlalchemy.engine import make_url

        try:
            make_url(driver_url(url.url)).get_dialect().import_dbapi()
        except ModuleNotFoundError as exc:
            raise missing_driver(url.url, exc) from None
        except Exception:  # noqa: BLE001 - anything else is reported when the store is opened
            pass


# The pip package that provides each database driver module SQLAlchemy may ask for.
DRIVER_PACKAGES = {"psycopg2": "psycopg2-binary", "psycopg": "'psycopg[binary]'",
                   "MySQLdb": "mysqlclient", "pymysql": "PyMySQL", "oracledb": "oracledb",
                   "pyodbc": "pyodbc"}


def missing_driver(url: str, exc: ModuleNotFoundError) -> StoreError:
    # SQLAlchemy 2.1 reads postgresql:// as psycopg (3); hpo's postgres extra is psycopg2.
    name = (exc.name or "").split(".")[0]
    package = DRIVER_PACKAGES.get(name, name)
    alternative = (" or name psycopg2 in the URL (postgresql+psycopg2://...) and pip install "
                   "psycopg2-binary" if name == "psycopg" else "")
    return StoreError(f"storage {mask(url)!r} needs the Python driver {name!r}; pip install "
                      f"{package}{alternative}")


def first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
