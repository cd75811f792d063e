"""The private names of Optuna and optuna-dashboard that hpo needs, reached from here only.

hpo drives trials itself (not through ``Study.optimize``), lists and removes artifacts, locks
the journal file while it repairs it and writes the dashboard's study note; for that it needs a
study's storage and id, a trial's id, the artifacts' attribute prefix, the journal's lock and
the dashboard's note functions, which those libraries keep private. When a release moves one,
this module is the one place to change (issue 25), and the rest of hpo names none of them.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import optuna
    from optuna.storages import BaseStorage
    from optuna.trial import FrozenTrial


def study_storage(study: optuna.Study) -> BaseStorage:
    """The storage object behind a study (``Study._storage``)."""
    return study._storage


def study_id(study: optuna.Study) -> int:
    """The study's id in its storage (``Study._study_id``)."""
    return study._study_id


def trial_id(trial: FrozenTrial | optuna.Trial) -> int:
    """A trial's id in its storage (``_trial_id``, unique across the storage's studies)."""
    return trial._trial_id


def journal_backend(storage: BaseStorage) -> object | None:
    """The journal file backend behind a JournalStorage (``_backend``: its ``append_logs``
    writes one line per record); None for other storages."""
    return getattr(storage, "_backend", None)


def artifacts_attr_prefix() -> str:
    """The system-attribute prefix under which Optuna records an uploaded artifact's meta."""
    from optuna.artifacts._upload import ARTIFACTS_ATTR_PREFIX

    return ARTIFACTS_ATTR_PREFIX


def journal_lock(path: str | Path) -> AbstractContextManager[object]:
    """The lock Optuna's journal file storage takes while it appends to ``path``."""
    from optuna.storages.journal import JournalFileSymlinkLock
    from optuna.storages.journal._file import get_lock_file

    return get_lock_file(JournalFileSymlinkLock(str(path)))


NoteFunction = Callable[..., object]


@functools.cache
def dashboard_note_functions() -> tuple[NoteFunction, NoteFunction]:
    """optuna-dashboard's get_note and save_note, without importing the dashboard app.

    `import optuna_dashboard` loads its web app and optuna.importance (1.6 s on 2 cores, in
    the parent before any worker starts); its note format lives in one small module that
    needs only optuna, so that module is loaded on its own. Falls back to the package import
    if a future release moves it.
    """
    import importlib.util

    name = "optuna_dashboard._note"
    module = sys.modules.get(name)
    if module is None:
        package = importlib.util.find_spec("optuna_dashboard")
        locations = list(package.submodule_search_locations or []) if package else []
        path = Path(locations[0]) / "_note.py" if locations else None
        if path is None or not path.is_file():
            from optuna_dashboard import get_note, save_note

            return get_note, save_note
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return module.get_note, module.save_note


def set_study_system_attr(study: optuna.Study, key: str, value: object) -> None:
    """Copy a study-level system attribute (metric names, …): Optuna has no public setter."""
    study._storage.set_study_system_attr(study._study_id, key, value)


def study_system_attrs(study: optuna.Study) -> dict[str, object]:
    """A study's system attributes (Optuna 5 dropped ``Study.system_attrs``)."""
    return study._storage.get_study_system_attrs(study._study_id)
