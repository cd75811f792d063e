from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

TINY_STUDY = """
name = "tiny"
question = "Does dropout placement matter on a tiny net?"
dataset = "digits"
epochs = 1
batch_size = 32
repeats = 2
train_subset = 200
sampler = "grid"

[model]
channels = [4, 4]
dropout = 0.2

[space]
"model.dropout_location" = ["none", "before_fc"]
"""


@pytest.fixture
def write_study(tmp_path: Path):
    """Write a study file into tmp_path and return its path."""

    def write(text: str = TINY_STUDY, name: str = "tiny.toml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path

    return write


@pytest.fixture
def storage_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store.db'}"
