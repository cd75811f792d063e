"""Artifacts: the files hpo attaches to a stored study for optuna-dashboard (learning
curves, report figures, flatness weights), where they live, and removing them.

The runner calls ``save_trial_curve`` (and, for flatness, ``save_trial_weights``) when a
trial has trained, before it is told, while Optuna still lets attributes be written. Both are
best effort: a figure that cannot be drawn or stored prints one warning line and never fails
the trial. Artifact files live in a folder next to the store, so that copying ``hpo.db``
together with ``hpo-artifacts/`` keeps the pictures: see ``artifacts_dir`` for the rule."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpo import dashboard, store
from hpo.errors import HpoError
from hpo.store import internals

if TYPE_CHECKING:
    import optuna
    from optuna.artifacts import FileSystemArtifactStore
    from optuna.trial import FrozenTrial
    from torch import Tensor

ARTIFACTS_ENV = "HPO_ARTIFACTS"  # read, never written: runs pass the folder in RunOptions
RDB_ARTIFACTS = "hpo/artifacts"  # under $XDG_DATA_HOME (~/.local/share)


REPORT_PREFIX = "report_"


# ---------------------------------------------------------------------------------------------
# Where artifacts live


def artifacts_dir(url: store.StoreURL, explicit: str | None = None) -> Path:
    """--artifacts DIR, else $HPO_ARTIFACTS, else a folder derived from the store.

    ``sqlite:///runs/hpo.db`` and ``journal:runs/hpo.log`` -> ``runs/hpo-artifacts``; a database
    server (PostgreSQL, MySQL) -> ``$XDG_DATA_HOME/hpo/artifacts``. Artifact files are named by
    UUID, so several stores may share one folder without clashes.
    """
    chosen = explicit or os.environ.get(ARTIFACTS_ENV)
    if chosen:
        return Path(chosen).expanduser()
    path = url.path
    if path is None:  # a database server
        base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
        return Path(base) / RDB_ARTIFACTS
    return path.parent / f"{path.stem}-artifacts"


def artifact_store(directory: Path, *, create: bool = True) -> FileSystemArtifactStore:
    """A FileSystemArtifactStore on ``directory`` (created, with its parent, if asked)."""
    from optuna.artifacts import FileSystemArtifactStore

    if directory.exists() and not directory.is_dir():
        raise HpoError(f"artifact folder {directory} is a file; pass --artifacts DIR (a folder)")
    if create:
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise HpoError(f"cannot create artifact folder {directory}: {exc.strerror}; "
                           "pass --artifacts DIR or --no-artifacts") from None
    return FileSystemArtifactStore(directory)


_warned: set[str] = set()


def _warn(message: str, key: str | None = None) -> None:
    """One line on stderr; with ``key``, once per process (not once per trial)."""
    if key is not None:
        if key in _warned:
            return
        _warned.add(key)
    print(f"hpo: warning: {store.mask(message)}", file=sys.stderr)


def save_trial_curve(trial: optuna.Trial, folder: Path | None) -> str | None:
    """Runner hook: upload ``trial``'s learning curve (PNG) as an artifact in ``folder`` (None:
    artifacts are off); returns its id.

    Must run before the trial is told. Never raises an Exception: a trial's result matters more
    than its picture, so a failure prints one warning line instead.
    """
    if folder is None:
        return None
    try:
        attrs = trial.user_attrs
        history = attrs.get("history") or []
        if not history:
            return None
        fig = dashboard.plot_curve(dashboard.curve_data(history),
                         dashboard.trial_title(trial.study.study_name, trial.number, attrs))
        with tempfile.TemporaryDirectory(prefix="hpo-curve-") as tmp:
            path = Path(tmp) / f"learning_curve_trial_{trial.number}.png"
            fig.savefig(path)
            return _upload(artifact_store(folder), path, trial)
    except Exception as exc:  # noqa: BLE001 - see the docstring
        _warn(f"learning curves not saved (first failure: trial "
              f"{getattr(trial, 'number', '?')}): {type(exc).__name__}: {exc}", key="curve")
        return None


WEIGHT_FILES = ("theta_0", "theta_final")  # artifact file names: <name>_trial_<number>.pt


def save_trial_weights(trial: optuna.Trial, folder: Path | None,
                       initial: Mapping[str, Tensor] | None,
                       final: Mapping[str, Tensor] | None) -> list[str]:
    """Runner hook (analysis = "flatness"): upload the initial and final state dicts of
    ``trial`` as artifacts (``torch.save``); returns their ids. Like the learning curve: before
    tell, skipped by --no-artifacts, and a failure is one warning line, never a failed trial.
    """
    if folder is None or initial is None or final is None:
        return []
    try:
        import torch

        artifacts = artifact_store(folder)
        ids = []
        with tempfile.TemporaryDirectory(prefix="hpo-weights-") as tmp:
            for name, state in zip(WEIGHT_FILES, (initial, final)):
                path = Path(tmp) / f"{name}_trial_{trial.number}.pt"
                torch.save(dict(state), path)
                ids.append(_upload(artifacts, path, trial))
        return ids
    except Exception as exc:  # noqa: BLE001 - see the docstring
        _warn(f"weights not saved (first failure: trial {getattr(trial, 'number', '?')}): "
              f"{type(exc).__name__}: {exc}", key="weights")
        return []


def load_trial_weights(trial: FrozenTrial, directory: Path
                       ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """The (theta_0, theta_final) state dicts saved for ``trial`` (a FrozenTrial) under the
    artifact folder ``directory``, loaded with ``torch.load(weights_only=True)`` on the CPU."""
    import torch
    from optuna.artifacts import download_artifact

    metas = {m["filename"]: m["artifact_id"] for m in _metas(trial.system_attrs)}
    states = []
    with tempfile.TemporaryDirectory(prefix="hpo-weights-") as tmp:
        for name in WEIGHT_FILES:
            filename = f"{name}_trial_{trial.number}.pt"
            if filename not in metas:
                raise HpoError(f"trial {trial.number} has no {filename} artifact; run its study "
                               "with analysis = \"flatness\" and without --no-artifacts")
            path = Path(tmp) / filename
            download_artifact(artifact_store=artifact_store(directory, create=False),
                              artifact_id=metas[filename], file_path=str(path))
            states.append(torch.load(path, map_location="cpu", weights_only=True))
    return states[0], states[1]


def _upload(artifacts: FileSystemArtifactStore, path: Path,
            study_or_trial: optuna.Study | optuna.Trial) -> str:
    from optuna.artifacts import upload_artifact

    return upload_artifact(artifact_store=artifacts, file_path=str(path),
                           study_or_trial=study_or_trial)


def upload_report_figures(study_obj: optuna.Study, figure_paths: Iterable[str | Path],
                          artifacts: FileSystemArtifactStore) -> list[str]:
    """Attach a report's figures to the study (for `hpo report`); returns the artifact ids.

    A figure uploaded again replaces the earlier one of the same file name, so re-running a
    report does not pile up copies. Stored as ``report_<file name>``.
    """
    paths = [Path(p) for p in figure_paths]
    for path in paths:
        if not path.is_file():
            raise HpoError(f"report figure {path} does not exist; run the report again")
    existing = study_artifacts(study_obj)
    ids = []
    for path in paths:
        name = REPORT_PREFIX + path.name
        for meta in existing:
            if meta["filename"] == name:
                _remove_artifact(study_obj, None, meta["artifact_id"], artifacts)
        with tempfile.TemporaryDirectory(prefix="hpo-report-") as tmp:
            staged = Path(tmp) / name
            staged.write_bytes(path.read_bytes())
            ids.append(_upload(artifacts, staged, study_obj))
    return ids


# ---------------------------------------------------------------------------------------------
# Listing and deleting a study's artifacts


def study_artifacts(study_obj: optuna.Study) -> list[dict[str, Any]]:
    """Artifacts attached to the study itself (not its trials): dicts with artifact_id etc."""
    attrs = internals.study_storage(study_obj).get_study_system_attrs(
        internals.study_id(study_obj))
    return _metas(attrs)


def all_artifacts(study_obj: optuna.Study) -> list[tuple[int | None, dict[str, Any]]]:
    """Every artifact of a study and its trials as (trial_id or None, meta)."""
    out: list[tuple[int | None, dict[str, Any]]] = [(None, m) for m in study_artifacts(study_obj)]
    for trial in study_obj.get_trials(deepcopy=False):
        out += [(internals.trial_id(trial), m) for m in _metas(trial.system_attrs)]
    return out


def _metas(system_attrs: Mapping[str, Any]) -> list[dict[str, Any]]:
    prefix = internals.artifacts_attr_prefix()
    metas = (json.loads(v) for k, v in system_attrs.items() if k.startswith(prefix))
    return [m for m in metas if m is not None]  # None: removed (see _remove_artifact)


def _remove_artifact(study_obj: optuna.Study, trial_id: int | None, artifact_id: str,
                     artifacts: FileSystemArtifactStore) -> None:
    from optuna.artifacts.exceptions import ArtifactNotFound

    with contextlib.suppress(ArtifactNotFound):
        artifacts.remove(artifact_id)
    if trial_id is None:  # Optuna has no "delete attribute": a null meta is skipped by listings
        internals.study_storage(study_obj).set_study_system_attr(
            internals.study_id(study_obj), internals.artifacts_attr_prefix() + artifact_id,
            json.dumps(None))


def remove_files(metas: Iterable[dict[str, Any]], directory: Path) -> int:
    """Delete the files of ``metas`` from ``directory``; returns how many existed."""
    removed = 0
    for meta in metas:
        path = directory / meta["artifact_id"]
        if path.is_file():
            path.unlink()
            removed += 1
    return removed
