"""Journal files (``journal:FILE``) as hpo keeps them: every line one complete JSON record.

A machine that died mid-write leaves a cut last line. Optuna skips it when reading, but
appends the next record after it, and from then on no command can read the file. So before a
writer opens a journal its cut tail is cut off (under the journal's own lock, with one warning
naming the bytes dropped), and a garbled line anywhere else is one error, the file untouched.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from hpo.errors import StoreError


def _is_record(line: bytes) -> bool:
    try:
        return isinstance(rec := json.loads(line), dict) and "op_code" in rec
    except (ValueError, UnicodeDecodeError):
        return False


def good_length(path: Path) -> tuple[int, int]:
    """(bytes of complete records from the start, the file's size); a StoreError names the
    first garbled line that is not the last."""
    good = 0
    with path.open("rb") as fh:
        data = fh.read()
    lines = data.split(b"\n")
    # data ends with b"\n" when complete: the last split item is then b"".
    for number, line in enumerate(lines[:-1], start=1):
        if not _is_record(line):
            if number == len(lines) - 1 and not lines[-1]:
                break  # the last complete-looking line is garbage: a cut tail too
            raise StoreError(
                f"{path} line {number} is not a journal record (garbled); hpo reads and writes "
                "nothing in it: restore the file from git or a backup")
        good += len(line) + 1
    return good, len(data)


def warn_cut_tail(path: Path) -> None:
    """For readers: say what a cut tail drops (Optuna reads the complete records)."""
    good, size = good_length(path)
    if size > good:
        print(f"hpo: warning: {path} ends in a cut record ({size - good} bytes, a write that "
              "did not finish): it is left out; every complete record is read", file=sys.stderr)


def repair_cut_tail(path: Path) -> None:
    """For writers: cut a cut tail off, under the journal's lock (no record being appended
    right now is taken for one), saying so in one line."""
    from hpo.store.internals import journal_lock

    good, size = good_length(path)
    if size == good:
        return
    with journal_lock(path):
        good, size = good_length(path)  # again, now that no one appends
        if size == good:
            return
        with path.open("r+b") as fh:
            fh.truncate(good)
    print(f"hpo: warning: {path} ended in a cut record ({size - good} bytes, a write that did "
          "not finish); cut off, every complete record kept", file=sys.stderr)


def widen_choices(path: Path, name: str, choices: dict[str, list[object]],
                  identity: dict[str, object]) -> int:
    """Rewrite journal ``path`` so that study ``name``'s stored trials take a wider grid: each
    key in ``choices`` gets those choices (a superset of the stored ones), and the study's
    stored identity becomes ``identity``. Optuna keeps a categorical parameter's choices fixed
    for a study's life, so a grid that gains a value (a reading the seed leaves open) cannot
    run its new cells next to the stored ones otherwise. Every trial is kept as it was (number,
    state, values, attributes, times). Written to a temporary file and moved into place under
    the journal's lock: a reader sees the old file or the new one; one that holds the file open
    across the rewrite (optuna-dashboard) must be restarted, as Optuna reads a journal from the
    byte offsets it last saw. Returns the trials kept."""
    import os

    import optuna
    from optuna.distributions import CategoricalDistribution

    from hpo.schema import IDENTITY_ATTR
    from hpo.store.connect import open_storage
    from hpo.store.internals import journal_lock, set_study_system_attr, study_system_attrs
    from hpo.store.read import load_study
    from hpo.store.url import parse

    old = load_study(open_storage(parse(f"journal:{path}"), create=False), name)
    tmp = path.with_name(path.name + ".widening")
    tmp.unlink(missing_ok=True)
    with journal_lock(path):
        trials = old.get_trials(deepcopy=True)
        try:
            new = optuna.create_study(study_name=name, directions=old.directions,
                                      storage=open_storage(parse(f"journal:{tmp}"), create=True))
            for key, value in study_system_attrs(old).items():
                set_study_system_attr(new, key, value)
            for key, value in old.user_attrs.items():
                new.set_user_attr(key, value)
            new.set_user_attr(IDENTITY_ATTR, identity)
            for trial in trials:
                trial.distributions = {
                    k: CategoricalDistribution(choices[k]) if k in choices else d
                    for k, d in trial.distributions.items()}
                new.add_trial(trial)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)  # a rewrite cut short (a full disk) leaves the original
    return len(trials)
