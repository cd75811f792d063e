"""`hpo show STUDY`: one line per trial: configuration, seed, state, metrics."""

from __future__ import annotations

import argparse

from hpo import inspection, store
from hpo.commands import add_format, add_storage

HELP = "show one line per trial of a stored study: configuration, seed, state, metrics"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """This command's arguments (hpo.cli builds the parser from every command's)."""
    p.add_argument("name", metavar="STUDY", help="study name (see `hpo list`)")
    add_storage(p)
    add_format(p, "text", "json")


def main(args: argparse.Namespace) -> int:
    url = store.parse(store.resolve_url(args.storage))
    study_obj = store.load_study(store.open_storage(url, create=False), args.name)
    rows = inspection.trial_rows(study_obj)
    if args.format == "json":
        print(inspection.dumps(rows))
        return 0
    metric = inspection.metric_name(study_obj)
    extra = [m for m in inspection.SHOW_METRICS
             if m != metric and any(r[m] is not None for r in rows)]
    headers = ["#", "STATE", "CONFIGURATION", "SEED", metric.upper(),
               *(m.upper() for m in extra), "EPOCHS", "SECONDS"]
    lines = []
    for r in rows:
        lines.append([
            r["number"], r["state"], inspection.configuration_label(r["params"]),
            inspection.fmt(r["seed"]), inspection.fmt(r["value"]),
            *(inspection.fmt(r[m], 4 if m.endswith("loss") else 2) for m in extra),
            inspection.fmt(r["epochs_run"]), inspection.fmt(r["wall_time"], 1),
        ])
    right = {0, 3, 4, *range(5, len(headers))}
    print(inspection.table(headers, lines, right=right))
    return 0
