"""Reports that ship with their trials: a report folder holds ``trials.journal`` (an Optuna
journal file) and everything `hpo report --trials` renders from it and the current study file.

``render`` writes a folder's report from its trials; ``check`` renders it into a temporary
folder and names every file that differs from the committed one, so CI can prove that no
committed report has outlived the trials behind it.
"""

from __future__ import annotations

import filecmp
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from hpo import store
from hpo.errors import HpoError
from hpo.schema import END_ATTR, TRIALS_FILE, VERSIONS_ATTR
from hpo.store import internals
from hpo.version import __version__

if TYPE_CHECKING:
    import optuna

    from hpo.reporting.tables import Summary
    from hpo.reporting.write import Written


def trial_folders(paths: Iterable[str | Path]) -> list[Path]:
    """Report folders named by ``paths``: a folder holding TRIALS_FILE, or every such folder
    below a folder that holds none itself."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if (path / TRIALS_FILE).is_file():
            found.append(path)
        elif path.is_dir():
            below = sorted(p.parent for p in path.rglob(TRIALS_FILE))
            if not below:
                raise HpoError(f"{path} holds no {TRIALS_FILE} (nor does any folder below it); "
                               "name a report folder that ships its trials")
            found.extend(below)
        else:
            what = "is not a folder" if path.exists() else "does not exist"
            raise HpoError(f"{path} {what}; name report folders that hold {TRIALS_FILE} (or a "
                           "folder with such folders below it)")
    return list(dict.fromkeys(found))


def trials_url(folder: Path) -> store.StoreURL:
    return store.parse(f"journal:{folder / TRIALS_FILE}")


def load_folder_study(folder: Path) -> optuna.Study:
    """The one study in ``folder``'s trials file, whose name must be the folder's."""
    url = trials_url(folder)
    storage = store.open_storage(url, create=False)
    names = store.study_names(storage)
    path = folder / TRIALS_FILE
    if not names:
        raise HpoError(f"{path} holds no study; delete it, or run the study into it again")
    if names != [folder.name]:
        raise HpoError(f"{path} holds the trials of {', '.join(repr(n) for n in names)}, not "
                       f"of {folder.name!r}: a trials file from another study; move it to its "
                       "own report folder, or restore this one (git checkout)")
    study_obj = store.load_study(storage, folder.name)
    written_by = (study_obj.user_attrs.get(VERSIONS_ATTR) or {}).get("hpo", "0")
    if _version(written_by) > _version(__version__):
        raise HpoError(f"{path} was written by hpo {written_by}, newer than this hpo "
                       f"{__version__}; upgrade hpo (pip install -U hpo) to read it")
    return study_obj


def _version(text: str) -> tuple[int, ...]:
    parts = []
    for part in str(text).split("."):
        digits = "".join(ch for ch in part if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def display(folder: Path) -> str:
    """The folder as a command in a README names it: relative to the working folder if inside
    it, so a report renders the same in any clone."""
    try:
        return str(folder.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(folder.resolve())


def runs_left(folder: Path) -> tuple[int, int]:
    """(runs ``folder``'s grid still lacks, runs it has in all), each (configuration, seed)
    once; a study adding seeds until decided lacks one more while its looks go on."""
    from hpo import records

    study_obj = load_folder_study(folder)
    study = records.study_spec(study_obj)
    done = {(t.user_attrs.get("cell"), t.user_attrs.get("seed"))
            for t in study_obj.get_trials(deepcopy=False) if t.state.name == "COMPLETE"}
    if not study.is_grid:
        return 0, len(done)
    total = max(len(study.cells()) * len(study.seeds()), len(done))
    if study.config.get("until_decided") and looks_go_on(study_obj):
        total = max(total, len(done) + 1)
    return total - len(done), total


def looks_go_on(study_obj: optuna.Study) -> bool:
    """A study deciding its seeds is not finished: no look has said why its seeds stopped (or
    a later look reopened it), seeds a look queued are still waiting or running, or the last
    look stopped earlier than today's rules would."""
    from optuna.trial import TrialState

    from hpo.reporting import tables, verdicts

    if study_obj.user_attrs.get(END_ATTR) is None:
        return True
    if study_obj.get_trials(deepcopy=False, states=(TrialState.WAITING, TrialState.RUNNING)):
        return True
    return verdicts.looks_would_go_on(tables.summarize(study_obj))


def render(folder: Path, formats: Sequence[str],
           out_root: Path | None = None) -> tuple[Summary, Written]:
    """Write ``folder``'s report (into ``out_root/<name>/``, default the folder itself) from
    its trials and the current study file; returns (summary, written)."""
    from hpo.reporting import tables, write

    study_obj = load_folder_study(folder)
    summary = tables.summarize(study_obj)
    written = write.write_report(summary, out_root or folder.parent, formats,
                                 command=f"hpo report --trials {display(folder)}")
    return summary, written


def check(folder: Path, formats: Sequence[str]) -> list[str]:
    """What differs between ``folder``'s committed report and a fresh render from its trials:
    one line per file (changed, missing from the folder, or not rendered from the trials)."""
    with tempfile.TemporaryDirectory(prefix="hpo-check-") as tmp:
        _, written = render(folder, formats, Path(tmp))
        fresh_root = written.folder
        fresh = {p.relative_to(fresh_root) for p in fresh_root.rglob("*") if p.is_file()}
        committed = {p.relative_to(folder) for p in folder.rglob("*") if p.is_file()
                     and p.name != TRIALS_FILE and not p.name.startswith(TRIALS_FILE + ".")}
        problems = []
        for rel in sorted(fresh | committed):
            if rel not in committed:
                problems.append(f"{folder / rel}: missing (the trials render it)")
            elif rel not in fresh:
                problems.append(f"{folder / rel}: not rendered from the trials (delete it)")
            elif not filecmp.cmp(fresh_root / rel, folder / rel, shallow=False):
                problems.append(f"{folder / rel}: differs from a fresh render of its trials")
        return problems


def merged_storage(folders: Sequence[Path]) -> optuna.storages.InMemoryStorage:
    """One in-memory store holding a copy of every folder's study (for claims × datasets,
    which reads several studies from one store)."""
    import optuna

    merged = optuna.storages.InMemoryStorage()
    for folder in folders:
        study_obj = load_folder_study(folder)
        optuna.copy_study(from_study_name=study_obj.study_name,
                          from_storage=internals.study_storage(study_obj), to_storage=merged)
    return merged
