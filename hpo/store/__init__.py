"""Storage URLs: resolve, check, open, lock, retry, read; and never show a password.

Checks run before Optuna touches anything, so that a wrong URL or a file that is not an
Optuna store gives one line and leaves the file exactly as it was.

``url`` (resolve, parse, mask, check) → ``connect`` (open_storage) → ``locks`` (exclusive) →
``retry`` (a store that went away) → ``read`` (plain-SQL reads before workers start) →
``fetch`` (every trial of a study, fast). Everything is re-exported here: ``store.open_storage``.
"""

from __future__ import annotations

from hpo.store.connect import (  # noqa: F401
    open_storage,
)
from hpo.store.fetch import (  # noqa: F401
    TrialRow,
    fetch_trials,
    unique_runs,
)
from hpo.store.locks import (  # noqa: F401
    advisory_lock,
    exclusive,
    file_lock,
)
from hpo.store.read import (  # noqa: F401
    finished_runs,
    load_study,
    study_names,
)
from hpo.store.retry import (  # noqa: F401
    Retry,
    full_or_readonly,
    root_message,
    transient,
    unusable,
)
from hpo.store.url import (  # noqa: F401
    CONNECT_TIMEOUT_S,
    DEFAULT_URL,
    DRIVER_PACKAGES,
    FULL_OR_READONLY,
    GRACE_PERIOD_S,
    HEARTBEAT_INTERVAL_S,
    LOCK_KEY,
    RETRY_BACKOFF_S,
    SCHEMES,
    SQLITE_BUSY_TIMEOUT_S,
    SQLITE_MAGIC,
    STORE_RETRY_S,
    StoreURL,
    check_journal,
    check_sqlite,
    check_url,
    driver_url,
    first_line,
    hot_journal,
    journal_path,
    mask,
    missing_driver,
    parse,
    resolve_url,
    sqlite_path,
)

__all__ = [  # the API other packages use; the rest is reached through the submodules
    "GRACE_PERIOD_S", "HEARTBEAT_INTERVAL_S", "Retry", "StoreURL", "check_sqlite", "check_url",
    "driver_url", "exclusive", "finished_runs", "hot_journal", "load_study", "mask",
    "open_storage", "parse", "resolve_url", "study_names", "transient",
]
