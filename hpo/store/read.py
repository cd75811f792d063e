"""Reading a store: study names, a study, and the runs already finished (plain SQL)."""

from __future__ import annotations

import json
import sqlite3
from typing import TYPE_CHECKING, Any

from hpo.errors import StoreError
from hpo.store.url import CONNECT_TIMEOUT_S, StoreURL, driver_url

if TYPE_CHECKING:
    import optuna


def finished_runs(url: StoreURL, name: str) -> tuple[set[tuple[str, int]], float | None]:
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


def _select(url: StoreURL, sql: str, name: str) -> list[tuple[Any, ...]]:
    if url.kind == "sqlite":
        path = url.path
        if not path.is_file():
            return []
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute(sql.replace(":name", "?"), (name,)).fetchall()
        finally:
            con.close()
    if url.kind != "rdb":
        return []
    import sqlalchemy

    engine = sqlalchemy.create_engine(driver_url(url.url), poolclass=sqlalchemy.pool.NullPool,
                                      connect_args={"connect_timeout": CONNECT_TIMEOUT_S})
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sqlalchemy.text(sql), {"name": name})]
    finally:
        engine.dispose()


def study_names(storage: str | optuna.storages.BaseStorage) -> list[str]:
    import optuna

    # Names only: the summaries would copy every trial of every study (a second of a report's
    # few seconds on a large journal).
    return optuna.get_all_study_names(storage=storage)


def load_study(storage: str | optuna.storages.BaseStorage, name: str) -> optuna.Study:
    """Load an existing study; an unknown name lists the ones that exist."""
    import optuna

    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        names = study_names(storage)
        known = ", ".join(names) if names else "none yet"
        raise StoreError(f"no study {name!r} in the store (studies there: {known})") from None
