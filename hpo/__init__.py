"""hpo: reproducible Optuna studies of what hyperparameters do to small CNNs and MLPs.

The Python API (``hpo.run``, ``hpo.results``, ``hpo.report``, ``hpo.load_study_file``) is
defined in ``hpo.api`` and reached here, imported on first use so that ``hpo --help`` stays
instant. No module of the package carries those names (the trial records are ``hpo.records``,
the report package ``hpo.reporting``), so the attributes are always the functions.
"""

from __future__ import annotations

from typing import Any

from hpo.version import __version__ as __version__

__all__ = ["load_study_file", "report", "results", "run"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from hpo import api

        return getattr(api, name)
    raise AttributeError(f"module 'hpo' has no attribute {name!r}")
