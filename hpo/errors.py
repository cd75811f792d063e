"""The one error type users see: a single line saying what is wrong and how to fix it."""

from __future__ import annotations


class HpoError(Exception):
    """An error caused by the user's input or environment, shown as one line without traceback."""


class SpecError(HpoError):
    """A study file (or a ``--set`` override) breaks a rule."""


class DataError(HpoError):
    """A dataset is missing, unreadable or not what its name promises."""


class StoreError(HpoError):
    """A storage URL is malformed, unreachable, or the store is not usable."""


OS_ERROR_HINTS = {
    "ENOSPC": "the disk is full; free space, then re-run the same command",
    "EDQUOT": "the disk quota is used up; free space, then re-run the same command",
    "EROFS": "the file system is read-only; choose a path on a writable one",
    "EACCES": "permission denied; choose a path you may write, or change its permissions",
    "EPERM": "not permitted; choose a path you may write",
    "EISDIR": "it is a folder; give a file path",
    "ENOTDIR": "a part of the path is a file, not a folder; fix the path",
    "ENOENT": "it does not exist; create its folder or fix the path",
    "EEXIST": "it already exists; remove it or choose another path",
}


def mask(text: object) -> str:
    """Hide passwords of every URL in ``text`` (``user:***@host``)."""
    import re

    # Greedy: a password may hold an unescaped "@"; the host is what follows the last one.
    return re.sub(r"(\w[\w+.-]*://[^:/@\s]*:)(\S*)(@[^@\s]*)", r"\1***\3", str(text))


def one_line(text: str) -> str:
    """``text`` with line breaks and other control characters escaped (``\\r``, ``\\n``):
    a message quoting what the user typed stays on one line."""
    import unicodedata

    return "".join(ch.encode("unicode_escape").decode("ascii")
                   if unicodedata.category(ch) in ("Cc", "Zl", "Zp") else ch for ch in text)


def os_error_line(exc: OSError) -> str:
    """``path: what the system said; what to do`` for an OSError (never a traceback)."""
    import errno

    name = errno.errorcode.get(exc.errno or 0, "")
    what = exc.strerror or type(exc).__name__
    where = f"{mask(str(exc.filename))}: " if exc.filename is not None else ""
    hint = OS_ERROR_HINTS.get(name)
    return f"{where}{what}" + (f" ({hint})" if hint else "")


def first_line_of(exc: BaseException) -> str:
    """``Type: the first line of its message`` (passwords masked), for a warning."""
    first = (str(exc).strip().splitlines() or [""])[0]
    return mask(f"{type(exc).__name__}: {first}" if first else type(exc).__name__)
