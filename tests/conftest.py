"""Shared helpers: tiny study files, the real CLI in a subprocess, and what a store holds."""

from __future__ import annotations

import atexit
import contextlib
import os
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from hpo.store import StoreURL

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_URL = os.environ.get("HPO_TEST_POSTGRES_URL")
# One torch thread for the runs made in this process too (a subprocess gets it from cli_env):
# these networks gain nothing from a second, and beside other busy processes lose up to 30x.
os.environ.setdefault("OMP_NUM_THREADS", "1")

STUDY = """\
name = "{name}"
question = "test study"
dataset = "digits"
epochs = {epochs}
batch_size = 64
repeats = {repeats}
metric = "val_acc"
sampler = "grid"
train_subset = {subset}

[model]
family = "mlp"

[space]
"train.lr" = {lrs}
"""


def make_grid_study(folder: Path, name: str = "tiny", *, epochs: int = 1, repeats: int = 2,
                cells: int = 3, subset: int = 100) -> Path:
    lrs = [round(0.001 * 2 ** i, 6) for i in range(cells)]
    path = folder / f"{name}.toml"
    path.write_text(STUDY.format(name=name, epochs=epochs, repeats=repeats, subset=subset,
                                 lrs=lrs))
    return path


def cli_env(**extra: str) -> dict[str, str]:
    """The environment of a subprocess `hpo`: this checkout, quick heartbeats, no stray store."""
    env = {k: v for k, v in os.environ.items() if k != "HPO_STORAGE"}
    env.update(PYTHONPATH=str(ROOT), HPO_HEARTBEAT_INTERVAL="1", HPO_GRACE_PERIOD="3",
               OMP_NUM_THREADS="1")
    env.update(extra)
    return env


def hpo_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "hpo", *args]


def start_hpo(*args: str, cwd: Path, **popen: Any) -> subprocess.Popen:
    return subprocess.Popen(hpo_cmd(*args), cwd=cwd, env=cli_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **popen)


def run_hpo(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(hpo_cmd(*args), cwd=cwd, env=cli_env(), capture_output=True,
                          text=True, timeout=timeout)


_BUILT: dict[str, Path] = {}


def cached_store(path: Path, key: Any, build: Any) -> StoreURL:
    """An SQLite store at ``path`` holding what ``build(url)`` writes (``url`` parsed, as the
    library takes it): built once per test session for each ``key`` (JSON-able: whatever the
    content depends on) and copied, so every test still gets a store file of its own, as if
    built for it. Filling a store through Optuna costs ~0.06 s of CPU per trial; a copy costs
    next to nothing. A store at ``path`` already (a second fixture adding its study) is built
    on, as before. Returns the store's parsed URL (``str()`` of it for `--storage`)."""
    import json
    import shutil
    import tempfile

    from hpo import store

    url = store.parse(f"sqlite:///{path}")
    if path.exists():
        build(url)
        return url
    name = json.dumps(key, sort_keys=True, default=repr)
    if name not in _BUILT:
        folder = Path(tempfile.mkdtemp(prefix="hpo-test-stores-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        build(store.parse(f"sqlite:///{folder / 'store.db'}"))
        _BUILT[name] = folder / "store.db"
    shutil.copyfile(_BUILT[name], path)
    return url


_STORAGES: dict[str, Any] = {}


def trials(url: str, name: str) -> list[Any]:
    """Every trial of study ``name`` in the store at ``url`` (a fresh read each call); ``url``
    is the string the tests hand to `hpo --storage`, parsed here as a command would."""
    import optuna

    from hpo import store
    from hpo.errors import StoreError

    if url not in _STORAGES:
        try:
            _STORAGES[url] = store.open_storage(store.parse(url), create=False)
        except StoreError:
            return []  # not created yet
    storage = _STORAGES[url]
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        return []
    return study.get_trials(deepcopy=False)


def states(url: str, name: str) -> Counter:
    return Counter(t.state.name for t in trials(url, name))


def completed_runs(url: str, name: str) -> Counter:
    """How often each (cell, seed) completed: exactly-once means every count is 1."""
    return Counter((t.user_attrs["cell"], t.user_attrs["seed"])
                   for t in trials(url, name) if t.state.name == "COMPLETE")


def wait_for(predicate: Any, timeout: float = 60, every: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the store to reach the expected state")
        time.sleep(every)


@contextlib.contextmanager
def postgres_lock(exclusive: bool) -> Iterator[None]:
    """The test PostgreSQL server, shared by every test that uses it (a shared lock) or held
    alone by one that restarts it (exclusive), across xdist workers and pytest runs. The
    xdist_group below keeps them in one worker, but only under pytest 8 (pyproject pins it):
    pytest 9 ignores the node id that pytest-xdist 3.8 renames to group them, and the two
    restart tests ran side by side, one cutting the other's connections ("server closed the
    connection unexpectedly"). With the lock, a wrong pytest is slower, never wrong."""
    import fcntl
    import tempfile

    path = Path(tempfile.gettempdir()) / f"hpo-tests-postgres-{os.getuid()}.lock"
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    if not POSTGRES_URL:
        pytest.skip("set HPO_TEST_POSTGRES_URL=postgresql+psycopg2://USER:PW@HOST:PORT/DB")
    with postgres_lock(exclusive=False):
        yield POSTGRES_URL

TINY_STUDY = """
name = "tiny"
question = "Does dropout placement matter on a tiny net?"
dataset = "digits"
epochs = 1
batch_size = 32
repeats = 2
train_subset = 200
sampler = "grid"

[model]
channels = [4, 4]
dropout = 0.2

[space]
"model.dropout_location" = ["none", "before_fc"]
"""


@pytest.fixture
def write_study(tmp_path: Path):
    """Write a study file into tmp_path and return its path."""

    def write(text: str = TINY_STUDY, name: str = "tiny.toml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path

    return write


@pytest.fixture
def storage_url(tmp_path: Path) -> StoreURL:
    from hpo import store

    return store.parse(f"sqlite:///{tmp_path / 'store.db'}")


# Tests that share a service are meant to run in one xdist worker, one after another (pytest's
# `--dist loadgroup`, pyproject's addopts): the PostgreSQL database (test_robustness restarts it
# under running workers, which would cut every other test's connections) and the headless
# browser. Under pytest 9 the group is ignored (see postgres_lock, which keeps the database
# tests apart whatever the scheduling; pyproject pins pytest 8). Everything else, the SIGKILL
# and full-disk tests included, works in its own tmp_path.
SERVICE_FIXTURES = ("postgres_url", "restartable_postgres")


# tryfirst: xdist's worker renames each grouped test (nodeid@group) in its own hook of this name,
# which pluggy called before this one; a marker added after that renaming grouped nothing.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if any(f in fixtures for f in SERVICE_FIXTURES) or "browser" in item.name:
            item.add_marker(pytest.mark.xdist_group("services"))
    # The slow tests first (a stable sort: each file's order kept), so that xdist hands them
    # out while both workers are fresh and the quick ones fill the end: in file order, one
    # worker was left finishing a 30-40 s multi-process test while the other sat idle.
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
