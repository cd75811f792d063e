"""`hpo delete STUDY`: remove a study, its trials and its artifact files; asks first."""

from __future__ import annotations

import argparse
import sys

from hpo import artifacts, store
from hpo.commands import add_artifacts, add_storage
from hpo.errors import HpoError

HELP = "delete a study (and its artifacts) from a store; asks first"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """This command's arguments (hpo.cli builds the parser from every command's)."""
    p.add_argument("name", metavar="STUDY", help="study name (see `hpo list`)")
    add_storage(p)
    add_artifacts(p)
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")


def confirm(question: str) -> bool:
    """Ask on stderr, read the answer from stdin; only a terminal may answer."""
    if not sys.stdin or not sys.stdin.isatty():
        raise HpoError("refusing to delete without confirmation: stdin is not a terminal; "
                       "pass --yes to delete anyway")
    print(f"{question} [y/N] ", end="", file=sys.stderr, flush=True)
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def main(args: argparse.Namespace) -> int:
    import optuna

    url = store.parse(store.resolve_url(args.storage))
    storage = store.open_storage(url, create=False)
    study_obj = store.load_study(storage, args.name)
    trials = len(study_obj.get_trials(deepcopy=False))
    metas = [meta for _, meta in artifacts.all_artifacts(study_obj)]
    where = f"{args.name!r} ({trials} trials, {len(metas)} artifacts) from {store.mask(url)}"
    if not args.yes and not confirm(f"delete study {where}?"):
        print("hpo: nothing deleted", file=sys.stderr)
        return 1
    optuna.delete_study(study_name=args.name, storage=storage)
    # Files go after the study, so a failed delete never leaves a study without its figures.
    removed = artifacts.remove_files(metas, artifacts.artifacts_dir(url, args.artifacts))
    print(f"hpo: deleted study {args.name!r} ({trials} trials, {removed} artifact files) from "
          f"{store.mask(url)}", file=sys.stderr)
    return 0
