"""What hpo shows in optuna-dashboard: the study note, and each trial's learning curve.

The runner calls ``update_study_note`` when a study is created or resumed (never over a note
someone edited in the dashboard). The curve is drawn here (``curve_data`` -> ``plot_curve``);
``hpo.artifacts`` stores it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from hpo import store
from hpo.schema import (
    CELL_ATTR,
    COMMAND_ATTR,
    DEVICE_ATTR,
    GIT_COMMIT_ATTR,
    SEED_ATTR,
    SPEC_ATTR,
    VERSIONS_ATTR,
    trial_label,
)
from hpo.spec.dump import spec_toml
from hpo.store import internals

if TYPE_CHECKING:
    import optuna
    from matplotlib.figure import Figure

NOTE_HASH_ATTR = "hpo:note_sha256"


def study_note(study_obj: optuna.Study) -> str:
    """The Markdown note: the question, how to reproduce the study, and its resolved study file."""
    attrs = study_obj.user_attrs
    spec = attrs[SPEC_ATTR]
    config = spec["config"]
    name = study_obj.study_name
    description = " ".join((config.get("description") or "").split())
    command = attrs.get(COMMAND_ATTR) or f"hpo run --study {name}"
    versions = ", ".join(f"{k} {v}" for k, v in (attrs.get(VERSIONS_ATTR) or {}).items())
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
        f"Device {attrs.get(DEVICE_ATTR, '?')}; git commit {attrs.get(GIT_COMMIT_ATTR) or '?'}"
        + (f"; {versions}." if versions else "."),
        "Each trial's learning curve is among its artifacts; `hpo report` adds the study figures.",
    ]
    return store.mask("\n".join(parts))


def update_study_note(study_obj: optuna.Study) -> bool:
    """Write hpo's note on a study; runner hook at creation and resume. Returns True if written.

    The note is rewritten when the stored spec changed (repeats grow between runs), but never
    over a note someone edited in the dashboard: hpo keeps the hash of what it last wrote.
    """
    get_note, save_note = internals.dashboard_note_functions()
    if SPEC_ATTR not in study_obj.user_attrs:
        return False
    body = study_note(study_obj)
    storage, study_id = internals.study_storage(study_obj), internals.study_id(study_obj)
    current = get_note(study_obj)
    last_written = storage.get_study_system_attrs(study_id).get(NOTE_HASH_ATTR)
    if current == body or (current and _sha(current) != last_written):
        return False
    save_note(study_obj, body)
    storage.set_study_system_attr(study_id, NOTE_HASH_ATTR, _sha(body))
    return True


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


def plot_curve(data: CurveData, title: str) -> Figure:
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
        cell = json.loads(attrs.get(CELL_ATTR) or "{}")  # the cell key: JSON of the configuration
        label = trial_label(cell)
    except (TypeError, ValueError, AttributeError):
        label = str(attrs.get(CELL_ATTR))
    return f"{study_name} · trial {number} · {label} · seed {attrs.get(SEED_ATTR, '?')}"
