"""The Python API: what `hpo run`, `hpo report` and `hpo export` do, callable from a notebook.

>>> import hpo
>>> study = hpo.load_study_file("dropout_location")
>>> hpo.run(study, storage="sqlite:///runs.db", epochs=2, **{"train.lr": 0.01})
>>> frame = hpo.results("sqlite:///runs.db", "dropout_location")   # one row per trial
>>> hpo.report("sqlite:///runs.db", "dropout_location", out="reports")

Overrides are study-file keys (dotted keys through ``**{...}``), checked exactly as ``--set`` is;
errors raise ``hpo.errors.HpoError`` with the one-line message the CLI prints.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from hpo import spec, store
from hpo.schema import JSON

if TYPE_CHECKING:
    import optuna
    import pandas as pd


def load_study_file(name_or_path: str, overrides: dict[str, JSON] | None = None) -> spec.Study:
    """A shipped study (by name) or a study file (by path), validated, with overrides."""
    return spec.load(name_or_path, [_override(k, v) for k, v in (overrides or {}).items()])


def run(study: str | spec.Study, *, storage: str | None = None, jobs: int = 1,
        data_dir: str | None = None, device: str = "auto", artifacts: bool = False,
        **overrides: JSON) -> optuna.Study:
    """Run (or resume) ``study`` to completion; returns the ``optuna.Study``.

    ``storage`` defaults as the CLI's (``$HPO_STORAGE``, else ``sqlite:///hpo.db``);
    ``artifacts`` stores a learning-curve figure per trial for the dashboard (off by default:
    a notebook has its own figures)."""
    from hpo import runner

    if isinstance(study, spec.Study):
        study = _with_overrides(study, overrides)
    else:
        study = load_study_file(study, overrides)
    url = store.parse(store.resolve_url(storage))  # the edge: parsed once, here
    opts = runner.RunOptions(storage_url=url, device=device, jobs=jobs,
                             data_dir=data_dir, progress=False,
                             command=f"hpo.run({study.source!r}, jobs={jobs})",
                             save_artifacts=artifacts)
    from hpo import decide

    return runner.run(study, decide.with_hook(opts, study))


def results(storage: str, name: str) -> pd.DataFrame:
    """One row per trial of the stored study ``name`` (a pandas DataFrame): number, state, the
    varied keys, seed and the trial record (losses, accuracies, times, epochs, history)."""
    from hpo import records

    study_obj = store.load_study(store.open_storage(store.parse(storage), create=False), name)
    return records.trials_frame(study_obj)


def report(storage: str, name: str, out: str | Path = "reports") -> Path:
    """Write ``out/<name>/`` (README.md with tables, claims and figures; table.csv/.tex);
    returns that folder."""
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    from hpo.reporting import tables, write

    study_obj = store.load_study(store.open_storage(store.parse(storage), create=False), name)
    summary = tables.summarize(study_obj)
    command = f"hpo report --study {name} --storage {store.mask(storage)} --out {out}"
    return write.write_report(summary, out, command=command).folder


def _with_overrides(study: spec.Study, overrides: dict[str, JSON]) -> spec.Study:
    """``study`` (already loaded, its own overrides kept) with more overrides, re-validated."""
    if not overrides:
        return study
    from hpo.spec.dump import spec_toml

    raw = spec.tomllib.loads(spec_toml(study.to_dict()))  # the study file it stands for
    for key, value in overrides.items():
        spec.apply_override(raw, _override(key, value), study.source)
    return spec.validate(raw, study.source)


def _override(key: str, value: JSON) -> str:
    """``key=value`` in the TOML that ``--set`` reads (strings quoted, lists kept)."""
    if isinstance(value, bool):
        return f"{key}={'true' if value else 'false'}"
    return f"{key}={json.dumps(value)}"
