"""`hpo list`: the studies in a store, one line each."""

from __future__ import annotations

import argparse
import sys

from hpo import inspection, store
from hpo.commands import add_format, add_storage

HELP = "list the studies in a store: trials by state, best value, last activity"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """This command's arguments (hpo.cli builds the parser from every command's)."""
    add_storage(p)
    add_format(p, "text", "json")


def main(args: argparse.Namespace) -> int:
    url = store.parse(store.resolve_url(args.storage))
    rows = inspection.study_rows(store.open_storage(url, create=False))
    if args.format == "json":
        print(inspection.dumps(rows))
        return 0
    if not rows:
        print(f"hpo: no studies in {store.mask(url)}; create one with `hpo run --study NAME`",
              file=sys.stderr)
        return 0
    headers = ["STUDY", "TRIALS", *inspection.STATES, "BEST", "LAST ACTIVITY"]
    lines = []
    for row in rows:
        best = "-"
        if row["best_value"] is not None:
            best = f"{row['metric']} {row['best_value']:.2f} (#{row['best_trial']})"
        lines.append([row["name"], row["trials"], *row["states"].values(), best,
                      row["last_activity"] or "-"])
    print(inspection.table(headers, lines, right=set(range(1, 2 + len(inspection.STATES)))))
    return 0
