"""The package version: the lowest layer, so any module may name it."""

__version__ = "0.1.0"
