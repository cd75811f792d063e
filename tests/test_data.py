from __future__ import annotations

import struct

import numpy as np
import pytest
import torch

from hpo import data
from hpo.errors import DataError


def write_idx(path, array: np.ndarray) -> None:
    """Write an IDX file exactly as MNIST ships it (big-endian header, uint8 data)."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(
        f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def fake_mnist(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    write_idx(raw / "train-images-idx3-ubyte", rng.integers(0, 256, (50, 28, 28)))
    write_idx(raw / "train-labels-idx1-ubyte", np.arange(50) % 10)
    write_idx(raw / "t10k-images-idx3-ubyte", rng.integers(0, 256, (20, 28, 28)))
    write_idx(raw / "t10k-labels-idx1-ubyte", np.arange(20) % 10)
    return tmp_path


def test_digits_is_embedded_and_split():
    splits = data.load("digits", val_fraction=0.2)
    assert splits.shape == (1, 8, 8)
    assert splits.sizes() == {"train": 1150, "val": 288, "test": 359}
    assert splits.train_x.dtype == torch.float32
    assert abs(splits.train_x.mean().item()) < 1e-4
    assert splits.train_x.std().item() == pytest.approx(1.0, abs=1e-3)
    assert splits.n_classes == 10


def test_split_is_fixed_across_calls():
    a = data._load_cached.__wrapped__("digits", "data", "cpu", 0.2, 0, True)
    b = data._load_cached.__wrapped__("digits", "data", "cpu", 0.2, 0, True)
    assert torch.equal(a.val_y, b.val_y)


def test_train_subset():
    assert data.load("digits", train_subset=100).sizes()["train"] == 100


def test_mnist_from_idx_files(fake_mnist):
    splits = data.load("mnist", data_dir=fake_mnist, download=False, val_fraction=0.2)
    assert splits.sizes() == {"train": 40, "val": 10, "test": 20}
    assert splits.shape == (1, 28, 28)
    assert sorted(torch.cat([splits.train_y, splits.val_y]).tolist()) == sorted(
        (np.arange(50) % 10).tolist())
    assert splits.test_y.tolist() == (np.arange(20) % 10).tolist()


def test_missing_dataset_says_which_files_where(tmp_path):
    with pytest.raises(DataError) as info:
        data.load("fashion_mnist", data_dir=tmp_path, download=False)
    assert str(info.value) == (
        f"dataset 'fashion_mnist' not found: {tmp_path}/FashionMNIST/raw lacks "
        "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
        "t10k-labels-idx1-ubyte; download it with network access, or copy those files there "
        f"and pass --data-dir {tmp_path}"
    )


def test_corrupt_dataset(fake_mnist):
    (fake_mnist / "MNIST" / "raw" / "train-images-idx3-ubyte").write_bytes(b"\x00\x01")
    with pytest.raises(DataError) as info:
        data.load("mnist", data_dir=fake_mnist, download=False)
    assert str(info.value).startswith(f"dataset 'mnist' in {fake_mnist}/MNIST/raw cannot be read")


def test_mnist_imagefolder_script_writes_a_two_class_folder_hpo_reads(fake_mnist, tmp_path):
    # reports/mnist_imagefolder.py makes the offline stand-in for ants/bees (transfer report).
    import importlib.util
    from pathlib import Path

    script = Path(__file__).parents[1] / "reports" / "mnist_imagefolder.py"
    spec = importlib.util.spec_from_file_location("mnist_imagefolder", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "four_nine"
    # 50 training labels 0..9 repeated: five 4s and five 9s; 20 test labels: two of each.
    assert module.write_folder(fake_mnist, out) == 14
    assert sorted(p.name for p in (out / "train").iterdir()) == ["four", "nine"]
    assert len(list((out / "val" / "nine").glob("*.png"))) == 2
    splits = data.load("imagefolder", data_dir=out, val_fraction=0.2, image_size=32)
    assert splits.n_classes == 2 and splits.shape == (3, 32, 32)
    assert splits.sizes() == {"train": 8, "val": 2, "test": 4}
