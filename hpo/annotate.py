"""What hpo adds to a stored study for optuna-dashboard: a note, learning curves, report figures.

The runner calls two hooks: ``update_study_note`` when a study is created or resumed, and
``save_trial_curve`` when a trial has trained (before it is told, while Optuna still lets
attributes be written). Both are best effort: a figure that cannot be drawn or stored prints one
warning line and never fails the trial.

Artifacts (PNG files) live in a folder next to the store, so that copying ``hpo.db`` together with
``hpo-artifacts/`` keeps the pictures: see ``artifacts_dir`` for the rule.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from hpo import store
from hpo.errors import HpoError

ARTIFACTS_ENV = "HPO_ARTIFACTS"  # read, never written: runs pass the folder in RunOptions
RDB_ARTIFACTS = "hpo/artifacts"  # under $XDG_DATA_HOME (~/.local/share)
NOTE_HASH_ATTR = "hpo:note_sha256"
REPORT_PREFIX = "report_"


# ---------------------------------------------------------------------------------------------
# Where artifacts live


def artifacts_dir(url: str, explicit: str | None = None) -> Path:
    """--artifacts DIR, else $HPO_ARTIFACTS, else a folder derived from the store.

    ``sqlite:///runs/hpo.db`` and ``journal:runs/hpo.log`` -> ``runs/hpo-artifacts``; a database
    server (PostgreSQL, MySQL) -> ``$XDG_DATA_HOME/hpo/artifacts``. Artifact files are named by
    UUID, so several stores may share one folder without clashes.
    """
    chosen = explicit or os.environ.get(ARTIFACTS_ENV)
    if chosen:
        return Path(chosen).expanduser()
    match store.kind(url):
        case "sqlite":
            path = store.sqlite_path(url)
        case "journal":
            path = store.journal_path(url)
        case _:
            base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
            return Path(base) / RDB_ARTIFACTS
    return path.parent / f"{path.stem}-artifacts"


def artifact_store(directory: Path, *, create: bool = True) -> Any:
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


# ---------------------------------------------------------------------------------------------
# The study note


def spec_toml(spec: Mapping[str, Any]) -> str:
    """A study file (TOML) for a stored ``hpo.spec``; `hpo run --study FILE` reads it back."""
    config = spec["config"]
    lines = []
    sections: dict[str, list[str]] = {}
    for key, value in config.items():
        if value is None:
            continue  # TOML has no null; a missing key takes the same default
        section, _, sub = key.rpartition(".")
        if section:
            sections.setdefault(section, []).append(f"{sub} = {_toml_value(value)}")
        else:
            lines.append(f"{key} = {_toml_value(value)}")
    for section, entries in sections.items():
        lines += ["", f"[{section}]", *entries]
    if spec.get("space"):
        lines += ["", "[space]"]
        for param in spec["space"]:
            entry = {k: v for k, v in param.items() if k != "key" and v is not None}
            lines.append(f"{_toml_value(param['key'])} = {_toml_value(entry)}")
    ref = spec.get("reference")
    if ref:
        lines += _reference_toml("[reference]", ref)
    for more in spec.get("references") or ():
        lines += _reference_toml("[[references]]", more)
    for claim in spec.get("claims") or ():
        lines += ["", "[[claims]]"]
        lines += [f"{k} = {_toml_value(v)}" for k, v in claim.items()]
    return "\n".join(lines) + "\n"


def _reference_toml(header: str, ref: Mapping[str, Any]) -> list[str]:
    lines = ["", header]
    lines += [f"{k} = {_toml_value(ref[k])}" for k in ("source", "metric", "note")
              if ref[k] is not None]
    rows = [{**params, "value": value} for params, value in ref["rows"]]
    return [*lines, "rows = [", *(f"  {_toml_value(row)}," for row in rows), "]"]


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)  # Python's float repr round-trips and is valid TOML (1e-05, 0.001)
    if isinstance(value, str) and "\n" in value:  # keep paragraphs readable in the note
        escaped = value.replace("\\", "\\\\").replace('"""', '\\"""')
        return '"""\n' + escaped + '"""'
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        items = (f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items() if v is not None)
        return "{ " + ", ".join(items) + " }"
    raise TypeError(f"cannot write {value!r} as TOML")


def _toml_key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else json.dumps(key)


def study_note(study_obj: Any) -> str:
    """The Markdown note: the question, how to reproduce the study, and its resolved study file."""
    attrs = study_obj.user_attrs
    spec = attrs["hpo.spec"]
    config = spec["config"]
    name = study_obj.study_name
    description = " ".join((config.get("description") or "").split())
    command = attrs.get("hpo.command") or f"hpo run --study {name}"
    versions = ", ".join(f"{k} {v}" for k, v in (attrs.get("hpo.versions") or {}).items())
    parts = [
        f"## {config.get('question') or name}",
        "",
        *([description, ""] if description else []),
        f"Dataset **{config['dataset']}**, {config['epochs']} epochs, {config['repeats']} seed(s) "
        f"per configuration, objective **{config['metric']}** "
        "(the intermediate values are its per-epoch validation counterpart).",
        "",
        "Started with:",
        "",
        "```sh",
        command,
        "```",
        "",
        f"Reproduce it anywhere: save the study file below as `{name}.toml`, then run "
        f"`hpo run --study {name}.toml --storage URL`.",
        "",
        "```toml",
        spec_toml(spec).rstrip("\n"),
        "```",
        "",
        f"Device {attrs.get('hpo.device', '?')}; git commit {attrs.get('hpo.git_commit') or '?'}"
        + (f"; {versions}." if versions else "."),
        "Each trial's learning curve is among its artifacts; `hpo report` adds the study figures.",
    ]
    return store.mask("\n".join(parts))


def update_study_note(study_obj: Any) -> bool:
    """Write hpo's note on a study; runner hook at creation and resume. Returns True if written.

    The note is rewritten when the stored spec changed (repeats grow between runs), but never
    over a note someone edited in the dashboard: hpo keeps the hash of what it last wrote.
    """
    get_note, save_note = _dashboard_note_functions()
    if "hpo.spec" not in study_obj.user_attrs:
        return False
    body = study_note(study_obj)
    storage, study_id = study_obj._storage, study_obj._study_id
    current = get_note(study_obj)
    last_written = storage.get_study_system_attrs(study_id).get(NOTE_HASH_ATTR)
    if current == body or (current and _sha(current) != last_written):
        return False
    save_note(study_obj, body)
    storage.set_study_system_attr(study_id, NOTE_HASH_ATTR, _sha(body))
    return True


@functools.cache
def _dashboard_note_functions() -> tuple[Any, Any]:
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


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# ---------------------------------------------------------------------------------------------
# Learning-curve figures


class CurveData(NamedTuple):
    """One trial's learning curve as plain numbers (None where a value was not finite)."""

    epochs: list[int]
    train_loss: list[float | None]
    val_loss: list[float | None]
    train_acc: list[float | None]
    val_acc: list[float | None]


def curve_data(history: Sequence[Mapping[str, Any]]) -> CurveData:
    def column(key: str) -> list[float | None]:
        out = []
        for row in history:
            value = row.get(key)
            ok = isinstance(value, (int, float)) and value == value and abs(value) != float("inf")
            out.append(float(value) if ok else None)
        return out

    return CurveData([int(row["epoch"]) for row in history], column("train_loss"),
                     column("val_loss"), column("train_acc"), column("val_acc"))


def plot_curve(data: CurveData, title: str) -> Any:
    """Loss and accuracy per epoch, train vs validation; a matplotlib Figure (Agg, no pyplot)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.0, 2.8), dpi=90, layout="constrained")
    loss_ax, acc_ax = fig.subplots(1, 2)
    for ax, kind in ((loss_ax, "loss"), (acc_ax, "acc")):
        for split, style in (("train", "--"), ("val", "-")):
            values = [float("nan") if v is None else v for v in getattr(data, f"{split}_{kind}")]
            ax.plot(data.epochs, values, style, marker="o", markersize=3, label=split)
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss" if kind == "loss" else "accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        if data.epochs:
            ax.set_xticks(data.epochs if len(data.epochs) <= 12 else ax.get_xticks())
    fig.suptitle(title, fontsize=9)
    return fig


def trial_title(study_name: str, number: int, attrs: Mapping[str, Any]) -> str:
    try:
        cell = json.loads(attrs.get("cell") or "{}")  # the cell key: JSON of the configuration
        label = ", ".join(f"{k.split('.')[-1]}={v}" for k, v in cell.items()) or "base"
    except (TypeError, ValueError, AttributeError):
        label = str(attrs.get("cell"))
    return f"{study_name} · trial {number} · {label} · seed {attrs.get('seed', '?')}"


def save_trial_curve(trial: Any, folder: Path | None) -> str | None:
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
        fig = plot_curve(curve_data(history),
                         trial_title(trial.study.study_name, trial.number, attrs))
        with tempfile.TemporaryDirectory(prefix="hpo-curve-") as tmp:
            path = Path(tmp) / f"learning_curve_trial_{trial.number}.png"
            fig.savefig(path)
            return _upload(artifact_store(folder), path, trial)
    except Exception as exc:  # noqa: BLE001 - see the docstring
        _warn(f"learning curves not saved (first failure: trial "
              f"{getattr(trial, 'number', '?')}): {type(exc).__name__}: {exc}", key="curve")
        return None


WEIGHT_FILES = ("theta_0", "theta_final")  # artifact file names: <name>_trial_<number>.pt


def save_trial_weights(trial: Any, folder: Path | None, initial: Mapping[str, Any] | None,
                       final: Mapping[str, Any] | None) -> list[str]:
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


def load_trial_weights(trial: Any, directory: Path) -> tuple[dict, dict]:
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


def _upload(artifacts: Any, path: Path, study_or_trial: Any) -> str:
    from optuna.artifacts import upload_artifact

    return upload_artifact(artifact_store=artifacts, file_path=str(path),
                           study_or_trial=study_or_trial)


def upload_report_figures(study_obj: Any, figure_paths: Iterable[str | Path],
                          artifacts: Any) -> list[str]:
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


def study_artifacts(study_obj: Any) -> list[dict[str, Any]]:
    """Artifacts attached to the study itself (not its trials): dicts with artifact_id etc."""
    attrs = study_obj._storage.get_study_system_attrs(study_obj._study_id)
    return _metas(attrs)


def all_artifacts(study_obj: Any) -> list[tuple[int | None, dict[str, Any]]]:
    """Every artifact of a study and its trials as (trial_id or None, meta)."""
    out: list[tuple[int | None, dict[str, Any]]] = [(None, m) for m in study_artifacts(study_obj)]
    for trial in study_obj.get_trials(deepcopy=False):
        out += [(trial._trial_id, m) for m in _metas(trial.system_attrs)]
    return out


def _metas(system_attrs: Mapping[str, Any]) -> list[dict[str, Any]]:
    from optuna.artifacts._upload import ARTIFACTS_ATTR_PREFIX

    metas = (json.loads(v) for k, v in system_attrs.items() if k.startswith(ARTIFACTS_ATTR_PREFIX))
    return [m for m in metas if m is not None]  # None: removed (see _remove_artifact)


def _remove_artifact(study_obj: Any, trial_id: int | None, artifact_id: str,
                     artifacts: Any) -> None:
    from optuna.artifacts.exceptions import ArtifactNotFound

    with contextlib.suppress(ArtifactNotFound):
        artifacts.remove(artifact_id)
    if trial_id is None:  # Optuna has no "delete attribute": a null meta is skipped by listings
        from optuna.artifacts._upload import ARTIFACTS_ATTR_PREFIX

        study_obj._storage.set_study_system_attr(
            study_obj._study_id, ARTIFACTS_ATTR_PREFIX + artifact_id, json.dumps(None))


def remove_files(metas: Iterable[dict[str, Any]], directory: Path) -> int:
    """Delete the files of ``metas`` from ``directory``; returns how many existed."""
    removed = 0
    for meta in metas:
        path = directory / meta["artifact_id"]
        if path.is_file():
            path.unlink()
            removed += 1
    return removed
