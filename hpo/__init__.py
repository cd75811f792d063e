"""hpo: reproducible Optuna studies of what hyperparameters do to small CNNs and MLPs.

The Python API lives in ``hpo.api`` (``run``, ``results``, ``report``, ``load_study_file``);
``hpo.run`` and ``hpo.load_study_file`` are also here, imported on first use so that
``hpo --help`` stays instant. (``hpo.results`` and ``hpo.report`` name the internal module and
package of the same names, so their API functions are reached as ``hpo.api.results`` and
``hpo.api.report`` until those are renamed.)
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["load_study_file", "run"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from hpo import api

        return getattr(api, name)
    raise AttributeError(f"module 'hpo' has no attribute {name!r}")
