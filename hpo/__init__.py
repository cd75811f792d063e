"""hpo: reproducible Optuna studies of what hyperparameters do to small CNNs and MLPs."""

from __future__ import annotations

__version__ = "0.1.0"
