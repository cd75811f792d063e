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
