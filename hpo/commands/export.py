"""`hpo export STUDY --format csv|json`: a stored study's trials for other tools."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hpo import inspection, store
from hpo.commands import add_storage
from hpo.errors import HpoError

HELP = "write a stored study's trials as CSV or JSON to stdout (or --output FILE)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """This command's arguments (hpo.cli builds the parser from every command's)."""
    p.add_argument("name", metavar="STUDY", help="study name (see `hpo list`)")
    add_storage(p)
    p.add_argument("--format", choices=("csv", "json"), default="csv",
                   help="csv: one row per trial; json: the study's settings and every trial "
                   "with its per-epoch history (default: csv)")
    p.add_argument("--output", "-o", metavar="FILE", help="write here instead of stdout")


def render(study_obj: object, fmt: str, url: store.StoreURL) -> str:
    if fmt == "json":
        text = inspection.dumps(inspection.export_json(study_obj, store.mask(url))) + "\n"
    else:
        text = inspection.export_frame(study_obj).to_csv(index=False)
    # Commands and paths stored by other tools may hold a URL with a password.
    return store.mask(text)


def main(args: argparse.Namespace) -> int:
    url = store.parse(store.resolve_url(args.storage))
    study_obj = store.load_study(store.open_storage(url, create=False), args.name)
    text = render(study_obj, args.format, url)
    if args.output is None:
        sys.stdout.write(text)
        return 0
    path = Path(args.output)
    if _is_store(path, url):
        raise HpoError(f"--output {path} is a store (it would be overwritten); pick another "
                       "--output, e.g. trials.csv")
    # Into a temporary file beside it, renamed only once written: a failed write leaves what was
    # there before.
    tmp = path.with_name(f".{path.name}.hpo-tmp")
    try:
        tmp.write_text(text)
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise HpoError(f"cannot write {path}: {exc.strerror}; pick another --output") from None
    trials = len(study_obj.get_trials(deepcopy=False))
    print(f"hpo: wrote {trials} trials of {args.name!r} to {path}", file=sys.stderr)
    return 0


def _is_store(path: Path, url: store.StoreURL) -> bool:
    """``path`` is the store read (its file) or any SQLite or journal store file."""
    if url.path is not None and path.exists() and url.path.exists():
        try:
            if path.samefile(url.path):
                return True
        except OSError:
            pass
    if not path.is_file():
        return False
    try:
        with path.open("rb") as fh:
            head = fh.read(256)
    except OSError:
        return False
    return head.startswith(b"SQLite format 3\x00") or b'"op_code"' in head
