from __future__ import annotations

import struct

import numpy as np
import pytest
import torch

from hpo.errors import DataError
from hpo.nn import data


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
        data.load("kmnist", data_dir=tmp_path, download=False)
    assert str(info.value) == (
        f"dataset 'kmnist' not found: {tmp_path}/KMNIST/raw lacks "
        "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
        "t10k-labels-idx1-ubyte; download it with network access, or copy those files there "
        f"and pass --data-dir {tmp_path}"
    )


def test_missing_fashion_mnist_names_the_debian_package(tmp_path):
    with pytest.raises(DataError) as info:
        data.load("fashion_mnist", data_dir=tmp_path, download=False)
    assert str(info.value) == (
        f"dataset 'fashion_mnist' not found: {tmp_path}/FashionMNIST/raw lacks "
        "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
        "t10k-labels-idx1-ubyte; download it with network access, or `apt-get install "
        "dataset-fashion-mnist` and copy /usr/share/datasets/fashion-mnist/*.gz there "
        f"(gzipped or not), and pass --data-dir {tmp_path}"
    )


@pytest.mark.parametrize("gzipped", [False, True])
def test_fashion_mnist_from_raw_or_gzipped_idx_files(tmp_path, gzipped):
    # torchvision's layout holds both; Debian's dataset-fashion-mnist ships only the .gz.
    import gzip

    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(1)
    arrays = {"train-images-idx3-ubyte": rng.integers(0, 256, (30, 28, 28)),
              "train-labels-idx1-ubyte": (np.arange(30) * 7) % 10,
              "t10k-images-idx3-ubyte": rng.integers(0, 256, (10, 28, 28)),
              "t10k-labels-idx1-ubyte": np.arange(10)[::-1]}
    for name, array in arrays.items():
        write_idx(raw / name, array)
        if gzipped:
            path = raw / name
            (raw / f"{name}.gz").write_bytes(gzip.compress(path.read_bytes()))
            path.unlink()
    splits = data.load("fashion_mnist", data_dir=tmp_path, download=False, val_fraction=0.2)
    assert splits.sizes() == {"train": 24, "val": 6, "test": 10}
    assert splits.test_y.tolist() == [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]
    images = data.read_idx(raw / "t10k-images-idx3-ubyte")
    assert torch.equal(images, torch.from_numpy(arrays["t10k-images-idx3-ubyte"].astype(np.uint8)))


def test_truncated_gzip_is_a_data_error(tmp_path):
    import gzip

    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for name in data.MNIST_FILES:
        write_idx(raw / name, np.zeros((4, 28, 28)) if "images" in name else np.arange(4))
    full = gzip.compress((raw / "t10k-labels-idx1-ubyte").read_bytes())
    (raw / "t10k-labels-idx1-ubyte").unlink()
    (raw / "t10k-labels-idx1-ubyte.gz").write_bytes(full[:-6])
    with pytest.raises(DataError) as info:
        data.load("fashion_mnist", data_dir=tmp_path, download=False)
    assert str(info.value) == (
        f"dataset 'fashion_mnist' in {raw} cannot be read (t10k-labels-idx1-ubyte.gz is not a "
        "complete gzip file (Compressed file ended before the end-of-stream marker was "
        "reached)); delete the files and download them again"
    )


CIFAR_BATCHES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def cifar_arrays(n: int = 4) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """n random 3x32x32 images and labels per batch, different in every batch."""
    rng = np.random.default_rng(2)
    return {b: (rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8),
                rng.integers(0, 10, n).astype(np.uint8)) for b in CIFAR_BATCHES}


def write_cifar_bin(root, arrays) -> None:
    """The official binary release: per image a label byte, then the R, G, B 32x32 planes."""
    folder = root / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    for name, (x, y) in arrays.items():
        records = np.concatenate([y[:, None], x.reshape(len(y), -1)], axis=1)
        (folder / f"{name}.bin").write_bytes(records.tobytes())


def write_cifar_py(root, arrays) -> None:
    """torchvision's python release: pickled dicts with bytes keys, data as (N, 3072) rows."""
    import pickle

    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name, (x, y) in arrays.items():
        batch = {b"batch_label": name.encode(), b"labels": [int(v) for v in y],
                 b"data": x.reshape(len(y), -1), b"filenames": [b"a.png"] * len(y)}
        with (folder / name).open("wb") as f:
            pickle.dump(batch, f, protocol=2)


def cifar_tensors(root) -> tuple[torch.Tensor, ...]:
    return tuple(t.clone() for t in data.read_cifar10(root))


def test_both_cifar10_releases_read_into_the_same_tensors(tmp_path):
    arrays = cifar_arrays()
    write_cifar_bin(tmp_path / "bin", arrays)
    write_cifar_py(tmp_path / "py", arrays)
    from_bin, from_py = cifar_tensors(tmp_path / "bin"), cifar_tensors(tmp_path / "py")
    for a, b in zip(from_bin, from_py):
        assert a.dtype == b.dtype and torch.equal(a, b)
    train_x, train_y, test_x, test_y = from_bin
    assert train_x.shape == (20, 3, 32, 32) and test_x.shape == (4, 3, 32, 32)
    assert torch.equal(train_x[4:8], torch.from_numpy(arrays["data_batch_2"][0]))
    assert train_y.dtype == torch.int64
    assert test_y.tolist() == arrays["test_batch"][1].tolist()
    splits = data.load("cifar10", data_dir=tmp_path / "py", download=False, val_fraction=0.25)
    assert splits.sizes() == {"train": 15, "val": 5, "test": 4} and splits.shape == (3, 32, 32)


def test_missing_cifar10_is_one_line_with_the_fixes(tmp_path):
    with pytest.raises(DataError) as info:
        data.load("cifar10", data_dir=tmp_path, download=False)
    assert str(info.value) == (
        f"dataset 'cifar10' not found: {tmp_path}/cifar-10-batches-bin lacks data_batch_1.bin, "
        "data_batch_2.bin, data_batch_3.bin, data_batch_4.bin, data_batch_5.bin, "
        "test_batch.bin; with network access torchvision downloads it (to "
        f"{tmp_path}/cifar-10-batches-py); offline, unpack the official release (the binary or "
        f"the python version, from the CIFAR-10 page) into {tmp_path}, or pass --data-dir DIR "
        "holding cifar-10-batches-bin/ or cifar-10-batches-py/"
    )


def test_a_cifar10_release_missing_one_file_names_that_file(tmp_path):
    write_cifar_py(tmp_path, cifar_arrays())
    (tmp_path / "cifar-10-batches-py" / "test_batch").unlink()
    with pytest.raises(DataError) as info:
        data.ensure_available("cifar10", tmp_path, download=False)
    assert str(info.value).startswith(
        f"dataset 'cifar10' not found: {tmp_path}/cifar-10-batches-py lacks test_batch; ")


def test_truncated_cifar10_binary_file_is_one_line(tmp_path):
    write_cifar_bin(tmp_path, cifar_arrays())
    path = tmp_path / "cifar-10-batches-bin" / "data_batch_3.bin"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError) as info:
        data.load("cifar10", data_dir=tmp_path, download=False)
    assert str(info.value) == (
        f"dataset 'cifar10': {path} is truncated (12192 bytes, not a whole number of 3073-byte "
        f"records); delete it and unpack the official release into {tmp_path} again (or "
        "download it with torchvision)"
    )


def test_truncated_cifar10_pickle_is_one_line(tmp_path):
    write_cifar_py(tmp_path, cifar_arrays())
    path = tmp_path / "cifar-10-batches-py" / "test_batch"
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DataError) as info:
        data.load("cifar10", data_dir=tmp_path, download=False)
    assert str(info.value) == (
        f"dataset 'cifar10': {path} cannot be read (UnpicklingError: pickle data was "
        f"truncated); delete it and unpack the official release into {tmp_path} again (or "
        "download it with torchvision)"
    )


def test_a_cifar10_pickle_that_names_code_is_refused(tmp_path):
    import pickle

    write_cifar_py(tmp_path, cifar_arrays())
    path = tmp_path / "cifar-10-batches-py" / "data_batch_1"
    path.write_bytes(pickle.dumps({"data": print}))  # unpickling would import builtins.print
    with pytest.raises(DataError, match=r"cannot be read \(UnpicklingError: builtins.print is "
                       r"not allowed\)"):
        data.load("cifar10", data_dir=tmp_path, download=False)


def test_corrupt_dataset(fake_mnist):
    (fake_mnist / "MNIST" / "raw" / "train-images-idx3-ubyte").write_bytes(b"\x00\x01")
    with pytest.raises(DataError) as info:
        data.load("mnist", data_dir=fake_mnist, download=False)
    assert str(info.value).startswith(f"dataset 'mnist' in {fake_mnist}/MNIST/raw cannot be read")


def test_mnist_imagefolder_script_writes_a_two_class_folder_hpo_reads(fake_mnist, tmp_path):
    # scripts/mnist_imagefolder.py makes the offline stand-in for ants/bees (transfer report).
    import importlib.util
    from pathlib import Path

    script = Path(__file__).parents[2] / "scripts" / "mnist_imagefolder.py"
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


def test_cifar10_imagefolder_script_writes_cat_and_dog_upscaled(tmp_path):
    # scripts/cifar10_imagefolder.py makes the natural-image stand-in for ants/bees (transfer).
    import importlib.util
    from pathlib import Path

    from PIL import Image

    script = Path(__file__).parents[2] / "scripts" / "cifar10_imagefolder.py"
    spec = importlib.util.spec_from_file_location("cifar10_imagefolder", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    arrays = cifar_arrays(n=6)
    labels = np.array([3, 5, 3, 1, 5, 5], dtype=np.uint8)  # cat=3, dog=5 in CIFAR-10
    arrays = {name: (x, labels) for name, (x, _) in arrays.items()}
    write_cifar_bin(tmp_path / "cifar", arrays)
    out = tmp_path / "cat_dog"
    # 5 training batches x (2 cats + 3 dogs), 1 test batch x (2 + 3).
    assert module.write_folder(tmp_path / "cifar", out, size=40) == 30
    assert sorted(p.name for p in (out / "train").iterdir()) == ["cat", "dog"]
    assert len(list((out / "val" / "dog").glob("*.png"))) == 3
    with Image.open(out / "val" / "cat" / "00000.png") as image:
        assert image.size == (40, 40) and image.mode == "RGB"
    splits = data.load("imagefolder", data_dir=out, val_fraction=0.2, image_size=32)
    assert splits.n_classes == 2 and splits.sizes() == {"train": 20, "val": 5, "test": 5}
    assert splits.test_y.tolist() == [0, 0, 1, 1, 1]


def test_bench_seeds_way_reads_the_cifar10_binary_release_torchvision_cannot(tmp_path):
    """`hpo bench` times the seeds' per-sample PIL path; its pixels come from hpo's readers."""
    from hpo.benchmarks.training import _seeds_datasets

    arrays = cifar_arrays()
    write_cifar_bin(tmp_path, arrays)
    train, test = _seeds_datasets("cifar10", tmp_path)
    assert (len(train), len(test)) == (20, 4)
    image, label = test[1]
    x, y = arrays["test_batch"]
    assert image.shape == (3, 32, 32) and label == int(y[1])
    # ToTensor then Normalize(0.5, 0.5): pixel p becomes p / 255 * 2 - 1.
    expected = torch.from_numpy(x[1]).float() / 255 * 2 - 1
    assert torch.allclose(image, expected, atol=1e-6)
