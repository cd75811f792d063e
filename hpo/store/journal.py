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
