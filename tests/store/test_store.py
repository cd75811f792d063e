"""Storage URLs: every bad store is one line, exit 1, and leaves the file exactly as it was."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from hpo import cli, store
from hpo.errors import StoreError
from tests.conftest import POSTGRES_URL, make_grid_study


@pytest.fixture(autouse=True)
def _quick_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HPO_STORAGE", raising=False)


def _run(tmp_path: Path, url: str, capsys: pytest.CaptureFixture) -> tuple[int, str]:
    study = make_grid_study(tmp_path)
    code = cli.main(["run", "--study", str(study), "--storage", url, "--no-progress"])
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    return code, err.strip()


def _snapshot(path: Path) -> tuple[bytes, int]:
    return path.read_bytes(), path.stat().st_mtime_ns


def _optuna_store(path: Path) -> None:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE studies (study_id INTEGER PRIMARY KEY)")
    con.commit()
    con.close()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"hello world\n", "{path} is not an SQLite database; point --storage at an hpo store"),
        (b"SQLite format 3\x00" + b"\xff" * 200,
         "store {path} is corrupt (its header's page size 65535 is not one SQLite writes); "
         "restore it from a backup"),
        (b"SQLite format 3\x00\x10\x00" + b"\x00" * 200,
         "store {path} is corrupt (218 bytes is not a whole number of its 4,096-byte pages: "
         "cut short); restore it from a backup"),
        (b"SQLite format 3\x00", "store {path} is corrupt (16 bytes, less than SQLite's "
         "100-byte header); restore it from a backup"),
    ],
    ids=["not-sqlite", "corrupt", "cut-in-a-page", "cut-in-the-header"],
)
def test_bad_sqlite_file(tmp_path: Path, capsys: pytest.CaptureFixture, content: bytes,
                         message: str) -> None:
    path = tmp_path / "hpo.db"
    path.write_bytes(content)
    before = _snapshot(path)
    code, err = _run(tmp_path, f"sqlite:///{path}", capsys)
    assert code == 1
    assert err == "hpo: error: " + message.format(path=path)
    assert _snapshot(path) == before


def test_sqlite_that_is_not_an_optuna_store(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "other.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE users (id INTEGER)")
    con.commit()
    con.close()
    before = _snapshot(path)
    code, err = _run(tmp_path, f"sqlite:///{path}", capsys)
    assert (code, err) == (1, f"hpo: error: {path} is an SQLite database but not an Optuna "
                              "store (no 'studies' table); use another --storage file")
    assert _snapshot(path) == before


def test_read_only_store_even_for_root(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "hpo.db"
    _optuna_store(path)
    path.chmod(0o444)
    before = _snapshot(path)
    code, err = _run(tmp_path, f"sqlite:///{path}", capsys)
    assert (code, err) == (1, f"hpo: error: store {path} is read-only; make it writable or "
                              "use another --storage")
    assert _snapshot(path) == before


def test_missing_folder(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "nowhere" / "hpo.db"
    code, err = _run(tmp_path, f"sqlite:///{path}", capsys)
    assert (code, err) == (1, f"hpo: error: cannot create store {path}: folder {path.parent} "
                              "does not exist")
    assert not path.parent.exists()


def test_unknown_scheme(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code, err = _run(tmp_path, "redis://user:hunter2@localhost/0", capsys)
    assert (code, err) == (1, "hpo: error: unknown storage URL 'redis://user:***@localhost/0'; "
                              "use sqlite:///FILE, postgresql://USER:PASSWORD@HOST/DB, "
                              "mysql://..., or journal:FILE")


def test_not_a_journal(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "runs.log"
    path.write_bytes(b"some log line\n")
    before = _snapshot(path)
    code, err = _run(tmp_path, f"journal:{path}", capsys)
    assert (code, err) == (1, f"hpo: error: {path} is not an Optuna journal file; point "
                              "--storage at an hpo store")
    assert _snapshot(path) == before


def test_unreachable_database(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    pytest.importorskip("psycopg2")
    code, err = _run(tmp_path, "postgresql+psycopg2://hpo:hunter2@127.0.0.1:1/hpo", capsys)
    assert (code, err) == (1, "hpo: error: cannot open store "
                              "postgresql+psycopg2://hpo:***@127.0.0.1:1/hpo: connection to "
                              'server at "127.0.0.1", port 1 failed: Connection refused')


@pytest.mark.slow
def test_wrong_password(tmp_path: Path, capsys: pytest.CaptureFixture, postgres_url: str) -> None:
    user_host = postgres_url.split("://", 1)[1]
    user, host = user_host.split(":", 1)[0], user_host.rsplit("@", 1)[1]
    url = f"postgresql+psycopg2://{user}:wrong-hunter2@{host}"
    hostname, port = host.split("/")[0].split(":")
    code, err = _run(tmp_path, url, capsys)
    assert (code, err) == (1, f"hpo: error: cannot open store postgresql+psycopg2://{user}:***@"
                              f'{host}: connection to server at "{hostname}", port {port} '
                              f'failed: FATAL:  password authentication failed for user "{user}"')


def test_missing_driver(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    pytest.importorskip("psycopg2")
    code, err = _run(tmp_path, "mysql://u:hunter2@127.0.0.1:1/x", capsys)
    assert (code, err) == (1, "hpo: error: storage 'mysql://u:***@127.0.0.1:1/x' needs the "
                              "Python driver 'MySQLdb'; pip install mysqlclient")


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("postgresql://u:pw@h/db", "postgresql://u:***@h/db"),
        ("postgresql+psycopg2://u:p@ss:w/rd@h:5432/db", "postgresql+psycopg2://u:***@h:5432/db"),
        ("'mysql://u:pw@h/x' and sqlite:///a.db", "'mysql://u:***@h/x' and sqlite:///a.db"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        ("hpo run --storage postgresql://a:b@c/d --jobs 2",
         "hpo run --storage postgresql://a:***@c/d --jobs 2"),
    ],
)
def test_mask(text: str, masked: str) -> None:
    assert store.mask(text) == masked


@pytest.mark.parametrize(
    ("url", "kind", "path"),
    [
        ("sqlite:///runs/hpo.db", "sqlite", Path("runs/hpo.db")),
        ("sqlite:////abs/x.db?timeout=5", "sqlite", Path("/abs/x.db")),
        ("journal:runs.log", "journal", Path("runs.log")),
        ("journal:///abs/runs.log", "journal", Path("/abs/runs.log")),
        ("postgresql+psycopg2://u:pw@h:5432/db", "rdb", None),
        ("postgres://u@h/db", "rdb", None),
        ("mysql://u:pw@h/x", "rdb", None),
    ],
)
def test_parse_each_kind(url: str, kind: str, path: Path | None) -> None:
    parsed = store.parse(url)
    assert (parsed.url, parsed.kind, parsed.path) == (url, kind, path)
    assert str(parsed) == url  # round trip: the string it was parsed from
    assert store.parse(str(parsed)) == parsed
    assert store.mask(parsed) == store.mask(url)


def test_parse_unknown_scheme_is_the_one_line_error() -> None:
    with pytest.raises(StoreError) as info:
        store.parse("redis://user:hunter2@localhost/0")
    assert str(info.value) == ("unknown storage URL 'redis://user:***@localhost/0'; use "
                               "sqlite:///FILE, postgresql://USER:PASSWORD@HOST/DB, mysql://..., "
                               "or journal:FILE")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite:///", "storage 'sqlite:///' has no file; use sqlite:///FILE (e.g. "
                       "sqlite:///hpo.db)"),
        ("sqlite:///:memory:", "storage 'sqlite:///:memory:' has no file; use sqlite:///FILE "
                               "(e.g. sqlite:///hpo.db)"),
        ("journal:", "storage 'journal:' has no file; use journal:FILE (e.g. journal:runs.log)"),
    ],
)
def test_parse_a_url_without_a_file(url: str, message: str) -> None:
    with pytest.raises(StoreError) as info:
        store.parse(url)
    assert str(info.value) == message


def test_parsed_url_pickles_for_the_workers() -> None:
    import pickle

    from hpo import runner

    opts = runner.RunOptions(storage_url=store.parse("sqlite:///runs/hpo.db"))
    assert pickle.loads(pickle.dumps(opts)) == opts


@pytest.mark.slow
def test_password_never_stored_in_the_study(tmp_path: Path, postgres_url: str) -> None:
    import optuna

    from hpo import runner, spec

    study = spec.load(str(make_grid_study(tmp_path, name=f"mask_{os.getpid()}")))
    url = store.parse(postgres_url)
    opts = runner.RunOptions(storage_url=url, command=f"hpo run --storage {postgres_url}")
    storage = store.open_storage(url)
    study_obj = runner.prepare_study(study, storage, opts, "cpu")
    try:
        password = postgres_url.split("://", 1)[1].split("@")[0].split(":", 1)[1]
        assert password not in repr(study_obj.user_attrs)
        assert study_obj.user_attrs["hpo.command"].startswith("hpo run --storage postgresql")
    finally:
        optuna.delete_study(study_name=study.name, storage=storage)


def test_open_storage_missing_store_without_create(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no store at"):
        store.open_storage(store.parse(f"sqlite:///{tmp_path / 'none.db'}"), create=False)
    assert not (tmp_path / "none.db").exists()


def test_postgres_url_for_ci_is_used() -> None:
    # CI exports the URL; a silent skip there would hide every PostgreSQL test.
    if os.environ.get("CI") == "true":
        assert POSTGRES_URL, "CI must set HPO_TEST_POSTGRES_URL"


@pytest.mark.parametrize(("installed", "url", "expected"), [
    ({"psycopg2"}, "postgresql://u:p@h/db", "postgresql+psycopg2://u:p@h/db"),
    ({"psycopg2"}, "postgres://u:p@h/db", "postgresql+psycopg2://u:p@h/db"),
    ({"psycopg", "psycopg2"}, "postgresql://u:p@h/db", "postgresql://u:p@h/db"),
    (set(), "postgres://u:p@h/db", "postgresql://u:p@h/db"),
    ({"psycopg2"}, "postgresql+psycopg://u:p@h/db", "postgresql+psycopg://u:p@h/db"),
    ({"psycopg2"}, "mysql://u:p@h/db", "mysql://u:p@h/db"),
])
def test_a_bare_postgresql_url_uses_the_installed_driver(monkeypatch, installed, url, expected):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name: object() if name in installed else None)
    assert store.driver_url(url) == expected


@pytest.mark.slow
def test_a_bare_postgresql_url_opens_the_test_database(postgres_url):
    url = postgres_url.replace("postgresql+psycopg2://", "postgresql://", 1)
    assert cli.main(["list", "--storage", url]) == 0


def _die_mid_write(path: str) -> None:
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA cache_size = 1")  # spill to the file: the journal must hold the pages
    con.execute("BEGIN IMMEDIATE")
    con.execute("CREATE TABLE half_written (x BLOB)")
    con.execute("INSERT INTO half_written VALUES (zeroblob(1000000))")
    os._exit(9)  # killed inside the transaction, as SIGKILL would


def test_a_store_left_mid_write_by_a_killed_run_is_recovered(tmp_path: Path) -> None:
    import multiprocessing

    path = tmp_path / "hpo.db"
    _optuna_store(path)
    proc = multiprocessing.get_context("spawn").Process(target=_die_mid_write, args=(str(path),))
    proc.start()
    proc.join()
    if not store.hot_journal(path):
        pytest.skip("SQLite kept the transaction in memory: no journal to recover from")
    store.check_sqlite(path, create=True)  # no "corrupt" error: the journal is recoverable
    store.open_storage(store.parse(f"sqlite:///{path}"))
    con = sqlite3.connect(path)
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    con.close()
    assert "studies" in tables and "half_written" not in tables  # rolled back


def test_reading_an_empty_sqlite_file_writes_nothing(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "hpo.db"
    path.touch()
    assert cli.main(["show", "x", "--storage", f"sqlite:///{path}"]) == 1
    assert capsys.readouterr().err == (
        f"hpo: error: store {path} is empty: no study has run into it yet; run `hpo run "
        f"--study NAME --storage sqlite:///{path}` first\n")
    assert path.read_bytes() == b""
