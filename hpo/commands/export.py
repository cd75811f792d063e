"""`hpo export STUDY --format csv|json`: a stored study's trials for other tools."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hpo import inspection, store
from hpo.errors import HpoError


def render(study_obj: object, fmt: str, url: str) -> str:
    if fmt == "json":
        text = inspection.dumps(inspection.export_json(study_obj, store.mask(url))) + "\n"
    else:
        text = inspection.export_frame(study_obj).to_csv(index=False)
    # Commands and paths stored by other tools may hold a URL with a password.
    return store.mask(text)


def main(args: argparse.Namespace) -> int:
    url = store.resolve_url(args.storage)
    study_obj = store.load_study(store.open_storage(url, create=False), args.name)
    text = render(study_obj, args.format, url)
    if args.output is None:
        sys.stdout.write(text)
        return 0
    path = Path(args.output)
    try:
        path.write_text(text)
    except OSError as exc:
        raise HpoError(f"cannot write {path}: {exc.strerror}; pick another --output") from None
    trials = len(study_obj.get_trials(deepcopy=False))
    print(f"hpo: wrote {trials} trials of {args.name!r} to {path}", file=sys.stderr)
    return 0
