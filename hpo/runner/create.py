"""Creating a study in the store once (or checking the stored one matches), its sampler and
pruner, and the metadata stored with it."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpo import dashboard, store
from hpo.errors import SpecError
from hpo.runner.plan import RunOptions
from hpo.runner.queue import reconcile
from hpo.schema import (
    COMMAND_ATTR,
    DATASET_ATTR,
    DEVICE_ATTR,
    GIT_COMMIT_ATTR,
    IDENTITY_ATTR,
    SOURCE_ATTR,
    SPEC_ATTR,
    VERSIONS_ATTR,
)
from hpo.spec import Study, added_choices, identity_diff
from hpo.version import __version__

if TYPE_CHECKING:
    import optuna
    from optuna.pruners import BasePruner
    from optuna.samplers import BaseSampler
    from optuna.storages import BaseStorage


def study_metadata(study: Study, device: str, command: str) -> dict[str, Any]:
    import optuna

    return {
        SPEC_ATTR: study.to_dict(),
        IDENTITY_ATTR: study.identity(),
        VERSIONS_ATTR: {
            "hpo": __version__, "torch": torch_version(), "optuna": optuna.__version__,
            "python": sys.version.split()[0],
        },
        GIT_COMMIT_ATTR: _git_commit(),
        DATASET_ATTR: study.config["dataset"],
        DEVICE_ATTR: device,
        COMMAND_ATTR: store.mask(command),
    }


def torch_version() -> str:
    """``torch.__version__`` without importing torch (~2 CPU s the parent of `hpo run --jobs N`
    would spend for one string): read from torch/version.py, which the import would run, else
    the installed distribution's version."""
    import importlib.metadata
    import importlib.util
    import re

    if "torch" in sys.modules:
        return str(sys.modules["torch"].__version__)
    spec = importlib.util.find_spec("torch")
    if spec is not None and spec.origin:
        with contextlib.suppress(OSError):
            text = (Path(spec.origin).parent / "version.py").read_text()
            found = re.search(r"^__version__\s*(?::\s*str\s*)?=\s*['\"]([^'\"]+)['\"]", text, re.M)
            if found:
                return found.group(1)
    return importlib.metadata.version("torch")


def provenance(study: Study, device: str, threads: int) -> dict[str, Any]:
    """What runs a worker's trials: stored with each trial (PROVENANCE_ATTR)."""
    import hashlib
    import platform

    import optuna
    import torch

    spec_text = json.dumps(study.to_dict(), sort_keys=True, default=str)
    return {
        "hpo": __version__, "git_commit": _git_commit(), "torch": torch.__version__,
        "optuna": optuna.__version__, "python": sys.version.split()[0],
        "device": device, "threads": threads, "machine": platform.machine(),
        "study_sha256": hashlib.sha256(spec_text.encode()).hexdigest(),
    }


def _git_commit() -> str | None:
    import subprocess

    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
            cwd=os.path.dirname(os.path.abspath(__file__)),
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", "."],
            capture_output=True, text=True, timeout=5,
            cwd=os.path.dirname(os.path.abspath(__file__)) + "/../..",
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip() if out.returncode == 0 else ""
    if not commit:
        return None
    # Uncommitted changes to hpo/ or studies/: the commit alone does not say what ran.
    changed = [line for line in dirty.stdout.splitlines()
               if line[3:].startswith(("hpo/", "studies/"))]
    return commit + ("-dirty" if changed else "")


def prepare_study(study: Study, storage: BaseStorage, opts: RunOptions, device: str
                  ) -> optuna.Study:
    """Create the Optuna study once (or check the stored one matches) and queue missing cells."""
    import optuna

    with store.exclusive(opts.storage_url, storage):
        study_obj = optuna.create_study(
            study_name=study.name, storage=storage, direction=study.direction,
            sampler=make_sampler(study), pruner=make_pruner(study), load_if_exists=True,
        )
        stored_identity = study_obj.user_attrs.get(IDENTITY_ATTR)
        if stored_identity is None:
            for key, value in study_metadata(study, device, opts.command).items():
                study_obj.set_user_attr(key, value)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                study_obj.set_metric_names([study.config["metric"]])
        else:
            identity = json.loads(json.dumps(study.identity()))
            diffs = identity_diff(stored_identity, identity)
            if diffs:
                raise SpecError(
                    f"study {study.name!r} in the store was run with other settings "
                    f"({'; '.join(diffs[:4])}); run it under a new name with --name NEW, or "
                    f"`hpo delete {study.name}` first"
                )
            if stored_identity.get("space") != identity["space"] and study_obj.get_trials(
                    deepcopy=False):
                raise SpecError(
                    f"study {study.name!r} in the store was run on a smaller grid (now "
                    f"{added_choices(stored_identity['space'], identity['space'])}); Optuna "
                    "keeps a stored parameter's choices, so its new cells cannot run next to "
                    "the stored runs: `hpo campaign` widens a report folder's trials file in "
                    "place, or run it under a new name with --name NEW")
            # Repeats, n_trials and a grid's choices may grow between runs: keep the stored
            # spec and identity current, and the command that ran it last (the report's
            # "Reproduce" shows it).
            study_obj.set_user_attr(SPEC_ATTR, study.to_dict())
            study_obj.set_user_attr(IDENTITY_ATTR, json.loads(json.dumps(study.identity())))
            if opts.command:
                study_obj.set_user_attr(COMMAND_ATTR, store.mask(opts.command))
        if opts.source is not None:
            study_obj.set_user_attr(SOURCE_ATTR, {"study": opts.source,
                                                  "overrides": list(opts.overrides)})
        dashboard.update_study_note(study_obj)
        reconcile(study_obj, study)
    return study_obj


def make_sampler(study: Study, worker: int = 0) -> BaseSampler:
    """The study's sampler; worker i of a ``--jobs N`` run seeds it with sampler_seed + i.

    With one seed for all, every worker drew the same random start-up trials: with --jobs 2
    the first ten TPE trials came in identical pairs. Worker 0 keeps the study's own seed, so
    a --jobs 1 run is unchanged and reproducible.
    """
    import optuna

    seed = study.config["sampler_seed"] + worker
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        match study.config["sampler"]:
            case "tpe":
                return optuna.samplers.TPESampler(seed=seed)
            case "random" | "grid":  # grid cells arrive as enqueued fixed parameters
                return optuna.samplers.RandomSampler(seed=seed)
            case "gp":
                return optuna.samplers.GPSampler(seed=seed)
            case "cmaes":
                return optuna.samplers.CmaEsSampler(seed=seed)
    raise SpecError(f"unknown sampler {study.config['sampler']!r}")


def make_pruner(study: Study) -> BasePruner:
    import optuna

    match study.config["pruner"]:
        case "none":
            return optuna.pruners.NopPruner()
        case "median":
            # Steps are epochs, numbered from 1; Optuna prunes from step == n_warmup_steps on.
            return optuna.pruners.MedianPruner(
                n_startup_trials=study.config["pruner_startup_trials"],
                n_warmup_steps=study.config["pruner_min_epochs"],
            )
        case "percentile":
            # Optuna's percentile is the share kept: 25.0 keeps the top quarter.
            return optuna.pruners.PercentilePruner(
                percentile=study.config["pruner_keep_percent"],
                n_startup_trials=study.config["pruner_startup_trials"],
                n_warmup_steps=study.config["pruner_min_epochs"],
            )
        case "hyperband":
            return optuna.pruners.HyperbandPruner(min_resource=1,
                                                  max_resource=study.config["epochs"])
    raise SpecError(f"unknown pruner {study.config['pruner']!r}")
