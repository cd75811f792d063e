"""One module per `hpo` command: each declares ``HELP``, ``add_arguments(parser)`` and
``main(args) -> int`` side by side, and imports no other command (shared pieces are here).

A command module imports only what its arguments need at the top (no torch, pandas or
Optuna): hpo.cli imports every one of them to build the parser, and ``hpo --help`` stays
instant. What its handler needs it imports inside ``main``.
"""

from __future__ import annotations

import argparse

from hpo.errors import HpoError

# `hpo --help` lists the commands in this order.
NAMES = ("studies", "keys", "run", "campaign", "bench", "list", "show", "export", "delete",
         "dashboard", "report")

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


DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str, flag: str = "--budget") -> float:
    """Seconds in ``90m``, ``2h``, ``1h30m``, ``45s`` or a plain number of seconds."""
    import re

    cleaned = text.strip().lower()
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([smhd])", cleaned)
    if re.fullmatch(r"\d+(?:\.\d+)?", cleaned):
        seconds = float(cleaned)
    elif parts and re.fullmatch(r"(?:\s*\d+(?:\.\d+)?\s*[smhd])+\s*", cleaned):
        seconds = sum(float(n) * DURATION_UNITS[u] for n, u in parts)
    else:
        raise HpoError(f"{flag} must be a duration such as 90m, 2h or 1h30m, got {text!r}")
    if not 0 < seconds <= 366 * 86400:
        raise HpoError(f"{flag} must be more than 0 and at most a year, got {text!r}")
    return seconds


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
