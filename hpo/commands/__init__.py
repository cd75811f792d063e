"""One module per `hpo` command: each declares ``HELP``, ``add_arguments(parser)`` and
``main(args) -> int`` side by side, and imports no other command (shared pieces are here).

A command module imports only what its arguments need at the top (no torch, pandas or
Optuna): hpo.cli imports every one of them to build the parser, and ``hpo --help`` stays
instant. What its handler needs it imports inside ``main``.
"""

from __future__ import annotations

import argparse

# `hpo --help` lists the commands in this order.
NAMES = ("studies", "keys", "run", "bench", "list", "show", "export", "delete", "dashboard",
         "report")

# Command-line shortcuts (hpo run, hpo bench) and the study-file key each one sets.
SHORTCUTS = {
    "dataset": "dataset",
    "epochs": "epochs",
    "repeats": "repeats",
    "n_trials": "n_trials",
    "pruner": "pruner",
    "precision": "train.precision",
    "name": "name",
    "max_repeats": "max_repeats",
}


def overrides_from(args: argparse.Namespace) -> list[str]:
    """``--set`` items plus the shortcuts given, as ``key=value`` overrides of the study file."""
    # Not list(...): once hpo.commands.list is imported, "list" in this module names it.
    items = [*getattr(args, "overrides", [])]
    for attr, key in SHORTCUTS.items():
        value = getattr(args, attr, None)
        if value is not None:
            items.append(f"{key}={value!r}" if isinstance(value, str) else f"{key}={value}")
    if getattr(args, "until_decided", False):
        items.append("until_decided=true")
    return items


def add_storage(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--storage", metavar="URL",
        help="Optuna storage URL (default: $HPO_STORAGE, else sqlite:///hpo.db)",
    )


def add_artifacts(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--artifacts", metavar="DIR",
        help="folder of figures shown in the dashboard (default: $HPO_ARTIFACTS, else "
        "<store>-artifacts beside an SQLite/journal file, else ~/.local/share/hpo/artifacts)",
    )


def add_format(parser: argparse.ArgumentParser, *choices: str) -> None:
    parser.add_argument("--format", choices=choices, default=choices[0],
                        help=f"output format (default: {choices[0]})")
