"""`hpo keys`: every study-file key with its default and meaning."""

from __future__ import annotations

import argparse
import json

from hpo.commands import add_format
from hpo.spec import KEYS

HELP = "list every study-file key with its default and meaning"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """This command's arguments (hpo.cli builds the parser from every command's)."""
    add_format(p, "text", "json")


def main(args: argparse.Namespace) -> int:
    if args.format == "json":
        print(json.dumps({k: {"default": v.default, "doc": v.doc} for k, v in KEYS.items()},
                         indent=2))
        return 0
    for key, entry in KEYS.items():
        print(f"{key:<22} {json.dumps(entry.default):<10} {entry.doc}")
    return 0
