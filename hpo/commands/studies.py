"""`hpo studies`: the shipped studies, one line each."""

from __future__ import annotations

import argparse
import json

from hpo import spec
from hpo.commands import add_format

HELP = "list the shipped studies: name, question, dataset, size"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """This command's arguments (hpo.cli builds the parser from every command's)."""
    add_format(p, "text", "json")


def describe(name: str) -> dict:
    study = spec.load(name)
    config = study.config
    if study.is_grid:
        configurations = len(study.cells())
        trials = configurations * config["repeats"]
    else:
        configurations, trials = None, config["n_trials"]
    return {
        "name": name,
        "question": config["question"],
        "dataset": config["dataset"],
        "sampler": config["sampler"],
        "configurations": configurations,
        "repeats": config["repeats"],
        "trials": trials,
        "epochs": config["epochs"],
    }


def main(args: argparse.Namespace) -> int:
    rows = [describe(name) for name in spec.shipped_studies()]
    if args.format == "json":
        print(json.dumps(rows, indent=2))
        return 0
    width = max((len(row["name"]) for row in rows), default=0)
    for row in rows:
        if row["configurations"] is None:
            size = f"{row['trials']} trials ({row['sampler']})"
        else:
            plural = "s" if row["configurations"] != 1 else ""
            size = f"{row['configurations']} config{plural} x {row['repeats']} seeds"
        print(f"{row['name']:<{width}} {size:<22} {row['dataset']:<11} {row['question']}")
    return 0
