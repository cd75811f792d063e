"""Datasets as tensors resident on the training device (plain PyTorch: no Optuna here).

Each dataset is read once per process, converted to float32, normalised once with the
training split's own mean and std (ImageNet's for ``imagefolder``), and kept on the device, so
that a training step is an index into a tensor: no DataLoader, no per-sample transform in the
hot loop.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

# torch and torchvision stay inside the functions here, unlike in models/train/flatness: the
# parent of `hpo run --jobs N` calls ensure_available() before it starts its workers, and a
# top-level torch import (~3-4 s) there would delay them; torchvision costs ~3 s more.
from hpo.errors import DataError
from hpo.nn.shapes import (  # noqa: F401  (the dataset table lives there, torch-free)
    CIFAR_BATCHES,
    DATASETS,
    DEFAULT_IMAGE_SIZE,
    MNIST_FILES,
    DatasetInfo,
    input_shape,
)

if TYPE_CHECKING:
    import torchvision.datasets
    from torch import Tensor

SPLIT_SEED = 20_240_601  # fixed: every trial of every study sees the same train/val split
DIGITS_TEST_FRACTION = 0.2
# imagefolder: pretrained ImageNet weights expect ImageNet's channel statistics (RGB, 0..1).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".ppm", ".tif", ".tiff", ".webp")
CIFAR_RECORD = 1 + 3 * 32 * 32  # binary release: one label byte, then the R, G, B planes
CIFAR_PY_FOLDER = "cifar-10-batches-py"  # torchvision's download (pickled dicts)


def default_data_dir() -> Path:
    return Path(os.environ.get("HPO_DATA_DIR", "data"))


@dataclass
class Splits:
    """Train, validation and test tensors on one device: x float32 (N, C, H, W), y int64 (N,)."""

    name: str
    train_x: Tensor
    train_y: Tensor
    val_x: Tensor
    val_y: Tensor
    test_x: Tensor
    test_y: Tensor
    n_classes: int

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.train_x.shape[1:])

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train_y), "val": len(self.val_y), "test": len(self.test_y)}


def load(
    name: str,
    *,
    data_dir: str | Path | None = None,
    device: str = "cpu",
    val_fraction: float = 0.2,
    train_subset: int = 0,
    download: bool = True,
    image_size: int = DEFAULT_IMAGE_SIZE,
) -> Splits:
    """Load a dataset once per process (cached) and return its splits on ``device``.

    ``imagefolder`` reads ``data_dir`` itself as ROOT (``ROOT/train``, ``ROOT/val``).
    """
    root = str(Path(data_dir) if data_dir else default_data_dir())
    return _load_cached(name, root, str(device), float(val_fraction), int(train_subset), download,
                        int(image_size))


def read_arrays(name: str, root: Path, download: bool = False, image_size: int = DEFAULT_IMAGE_SIZE
                ) -> tuple[Tensor, Tensor, Tensor, Tensor, int]:
    """(train_x, train_y, test_x, test_y, n_classes) as stored: NCHW uint8 images (digits:
    0..16), int64 labels; no split, no normalisation."""
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    n_classes = DATASETS[name].n_classes
    if name == "digits":
        return (*_digits(), n_classes)
    if name == "imagefolder":
        return _imagefolder(root, image_size)
    if name == "cifar10":
        return (*read_cifar10(root, download), n_classes)
    return (*_torchvision(name, root, download), n_classes)


@functools.lru_cache(maxsize=4)
def _load_cached(
    name: str, root: str, device: str, val_fraction: float, train_subset: int, download: bool,
    image_size: int = DEFAULT_IMAGE_SIZE,
) -> Splits:
    import torch

    train_x, train_y, test_x, test_y, n_classes = read_arrays(name, Path(root), download,
                                                              image_size)

    generator = torch.Generator().manual_seed(SPLIT_SEED)
    order = torch.randperm(len(train_y), generator=generator)
    n_val = max(1, round(len(order) * val_fraction))
    val_idx, train_idx = order[:n_val], order[n_val:]
    if train_subset:
        train_idx = train_idx[:train_subset]

    if name == "imagefolder":
        # What pretrained weights were trained on; uint8 pixels, hence the 255.
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255
    else:
        # Normalise with the training split's statistics only (no peeking at val/test).
        train = train_x[train_idx].float()
        mean = train.mean(dim=(0, 2, 3), keepdim=True)
        std = train.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)

    def prepare(x: Tensor) -> Tensor:
        return ((x.float() - mean) / std).contiguous().to(device)

    return Splits(
        name=name,
        train_x=prepare(train_x[train_idx]),
        train_y=train_y[train_idx].to(device),
        val_x=prepare(train_x[val_idx]),
        val_y=train_y[val_idx].to(device),
        test_x=prepare(test_x),
        test_y=test_y.to(device),
        n_classes=n_classes,
    )


def _digits() -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """scikit-learn's bundled 8x8 digits (1,797 images, values 0..16): no network needed."""
    import importlib.util

    import numpy as np
    import torch

    # The CSV that sklearn.datasets.load_digits reads, read without importing scikit-learn
    # (2 s per process, paid again by every worker of `hpo run --jobs N`).
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the digits dataset needs scikit-learn; pip install scikit-learn")
    csv = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "digits.csv.gz"
    table = np.loadtxt(csv, delimiter=",", dtype=np.int64)
    x = torch.tensor(table[:, :-1].reshape(-1, 1, 8, 8), dtype=torch.uint8)
    y = torch.tensor(table[:, -1], dtype=torch.int64)
    # Digits ships no test set: hold out a fixed 20% once, before the train/val split.
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(SPLIT_SEED + 1))
    n_test = round(len(y) * DIGITS_TEST_FRACTION)
    test, train = order[:n_test], order[n_test:]
    return x[train], y[train], x[test], y[test]


def missing_files(name: str, root: Path) -> list[Path]:
    """Files of a torchvision-layout dataset that are not under ``root`` (MNIST-likes: raw or
    gzipped; CIFAR-10: the files of the release that is more complete, the binary one on a tie)."""
    info = DATASETS[name]
    if name == "cifar10":
        layouts = [_cifar_layout(root, py) for py in (False, True)]
        return min((missing for _, missing in layouts), key=len)
    folder = root / info.folder
    return [folder / f for f in info.files
            if not (folder / f).is_file() and not (folder / f"{f}.gz").is_file()]


def _cifar_layout(root: Path, python_release: bool) -> tuple[list[Path], list[Path]]:
    """(files, missing files) of one CIFAR-10 release under ``root``."""
    if python_release:
        files = [root / CIFAR_PY_FOLDER / b for b in CIFAR_BATCHES]
    else:
        files = [root / DATASETS["cifar10"].folder / f for f in DATASETS["cifar10"].files]
    return files, [f for f in files if not f.is_file()]


def _missing_advice(name: str, root: Path) -> str:
    """How to get a dataset that is not there, for the one-line error."""
    if name == "cifar10":
        return (f"with network access torchvision downloads it (to {root / CIFAR_PY_FOLDER}); "
                "offline, unpack the official release (the binary or the python version, "
                f"from the CIFAR-10 page) into {root}, or pass --data-dir DIR holding "
                "cifar-10-batches-bin/ or cifar-10-batches-py/")
    if name == "fashion_mnist":
        return ("download it with network access, or `apt-get install dataset-fashion-mnist` "
                "and copy /usr/share/datasets/fashion-mnist/*.gz there (gzipped or not), and "
                f"pass --data-dir {root}")
    return f"download it with network access, or copy those files there and pass --data-dir {root}"


def ensure_available(name: str, data_dir: str | Path | None = None, download: bool = True) -> None:
    """Download a torchvision dataset if it is missing; one-line DataError if that fails.

    Cheap when the files are there: run it before touching a store, so a missing dataset
    never leaves a half-created study behind.
    """
    info = DATASETS.get(name)
    if info is None:
        raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    root = Path(data_dir) if data_dir else default_data_dir()
    if name != "digits" and root.exists() and not root.is_dir():
        raise DataError(f"dataset {name!r}: the data folder {root} is a file, not a folder; "
                        "pass --data-dir a folder (or leave it out for $HPO_DATA_DIR or ./data)")
    if name == "imagefolder":
        imagefolder_files(root)
        return
    if info.torchvision_class is None:
        return
    missing = missing_files(name, root)
    if missing and download:
        import torchvision.datasets as tvd

        cls = getattr(tvd, info.torchvision_class)
        try:
            cls(str(root), train=True, download=True)
            cls(str(root), train=False, download=True)
        except Exception:  # no network, proxy, disk: all end in the same advice below
            pass
        missing = missing_files(name, root)
    if missing:
        names = ", ".join(p.name for p in missing)
        raise DataError(f"dataset {name!r} not found: {missing[0].parent} lacks {names}; "
                        f"{_missing_advice(name, root)}")
    if name != "cifar10":
        check_idx_files(name, root)


def _idx_bytes(path: Path) -> bytes:
    """An IDX file's bytes: the raw file, else its .gz (torchvision keeps the .gz beside what
    it unpacks; Debian ships only the .gz)."""
    if path.is_file():
        return path.read_bytes()
    import gzip

    gz = path.with_name(path.name + ".gz")
    try:
        return gzip.decompress(gz.read_bytes())
    except (EOFError, gzip.BadGzipFile) as exc:
        raise ValueError(f"{gz.name} is not a complete gzip file ({exc})") from None


def idx_shape(head: bytes, size: int, name: str) -> tuple[int, ...]:
    """The shape an IDX file of unsigned bytes declares in ``head`` (its first bytes); a
    ValueError saying what is wrong when it is no such file or its ``size`` disagrees. MNIST's
    images (``*-images-*``) have 3 dimensions, its labels 1."""
    ndim = 3 if "-images-" in name else 1 if "-labels-" in name else None
    if len(head) < 4 or head[:3] != b"\0\0\x08" or head[3] != (ndim or head[3]):
        want = f"00 00 08 {ndim:02x}" if ndim else "00 00 08 then the number of dimensions"
        raise ValueError(f"{name} is not an IDX file of unsigned bytes (its magic number is "
                         f"{head[:4].hex(' ') or 'missing'}, not {want})")
    n = head[3]
    shape = tuple(int.from_bytes(head[4 + 4 * i:8 + 4 * i], "big") for i in range(n))
    expected = 4 + 4 * n + math.prod(shape)
    if size < expected:
        raise ValueError(f"{name} is truncated: {size} bytes, its header says {expected}")
    if size > expected:
        raise ValueError(f"{name} has {size - expected} bytes past the {expected} its header "
                         "says")
    return shape


def read_idx(path: Path) -> Tensor:
    """An IDX file (MNIST's format: big-endian header, then uint8 data) as a uint8 tensor."""
    import numpy as np
    import torch

    raw = _idx_bytes(path)
    shape = idx_shape(raw[:4 + 4 * 255], len(raw), path.name)
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * len(shape))
    return torch.from_numpy(data.reshape(shape).copy())


def check_idx_files(name: str, root: Path) -> None:
    """The IDX files of an MNIST-like dataset are whole (header and size agree), read without
    loading them where unpacked: a truncated file is found before a store is touched."""
    folder = root / DATASETS[name].folder
    for f in MNIST_FILES:
        path = folder / f
        try:
            if path.is_file():
                with path.open("rb") as fh:
                    head = fh.read(4 + 4 * 3)
                idx_shape(head, path.stat().st_size, f)
            else:
                read_idx(path)
        except (OSError, ValueError) as exc:
            raise DataError(f"dataset {name!r} in {folder} cannot be read ({exc}); delete the "
                            "files and download them again") from None


def _mnist_like(name: str, root: Path) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """MNIST-layout IDX files read directly: importing torchvision costs each worker ~1.5 s."""
    folder = root / DATASETS[name].folder
    try:
        arrays = [read_idx(folder / f) for f in MNIST_FILES]
    except (OSError, ValueError) as exc:
        raise DataError(
            f"dataset {name!r} in {folder} cannot be read ({exc}); delete the files and "
            "download them again"
        ) from None
    train_x, train_y, test_x, test_y = arrays
    if len(train_x) != len(train_y) or len(test_x) != len(test_y):
        raise DataError(f"dataset {name!r} in {folder}: images and labels differ in number; "
                        "delete the files and download them again")
    return train_x.unsqueeze(1), train_y.long(), test_x.unsqueeze(1), test_y.long()


def read_cifar10(root: Path, download: bool = False) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """CIFAR-10 from the binary release if complete, else torchvision's python release.

    Both hold the same images in the same order (data_batch_1..5, then test_batch), so either
    gives the same tensors; read directly, without torchvision (which checks the python
    release's md5s and cannot read the binary one).
    """
    import torch

    ensure_available("cifar10", root, download)
    files, missing = _cifar_layout(root, python_release=False)
    read = _cifar_bin
    if missing:
        files, _ = _cifar_layout(root, python_release=True)
        read = _cifar_py
    batches = [read(f, root) for f in files]
    train_x = torch.cat([x for x, _ in batches[:-1]])
    train_y = torch.cat([y for _, y in batches[:-1]])
    return train_x, train_y, *batches[-1]


def _cifar_error(path: Path, root: Path, problem: str) -> DataError:
    return DataError(f"dataset 'cifar10': {path} {problem}; delete it and unpack the official "
                     f"release into {root} again (or download it with torchvision)")


def _cifar_bin(path: Path, root: Path) -> tuple[Tensor, Tensor]:
    """One batch of the binary release: records of a label byte and the R, G, B 32x32 planes."""
    import numpy as np
    import torch

    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0 or raw.size % CIFAR_RECORD:
        raise _cifar_error(path, root, f"is truncated ({raw.size} bytes, not a whole number of "
                           f"{CIFAR_RECORD}-byte records)")
    records = raw.reshape(-1, CIFAR_RECORD)
    x = torch.from_numpy(records[:, 1:].reshape(-1, 3, 32, 32).copy())
    return x, torch.from_numpy(records[:, 0].astype(np.int64))


# What CIFAR-10's pickled batches hold besides plain types: numpy arrays (and, when Python 3
# wrote them at protocol 2, bytes rebuilt through _codecs.encode).
_PICKLE_ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")} | {
    (module, name) for module in ("numpy.core.multiarray", "numpy._core.multiarray")
    for name in ("_reconstruct", "scalar")}


def _load_pickle(path: Path) -> object:
    """Unpickle ``path`` allowing numpy arrays only: a pickle can run any code it names, and a
    data folder is not trusted code."""
    import pickle

    class Restricted(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> object:
            if (module, name) not in _PICKLE_ALLOWED:
                raise pickle.UnpicklingError(f"{module}.{name} is not allowed")
            return super().find_class(module, name)

    with path.open("rb") as f:
        return Restricted(f, encoding="latin1").load()  # torchvision's encoding (Python 2)


def _cifar_py(path: Path, root: Path) -> tuple[Tensor, Tensor]:
    """One batch of torchvision's python release: a pickled dict of data (N, 3072) and labels."""
    import numpy as np
    import torch

    try:
        batch = _load_pickle(path)
    except Exception as exc:  # truncated (EOFError), corrupt, or not a CIFAR-10 pickle
        raise _cifar_error(path, root, f"cannot be read ({type(exc).__name__}: {exc})") from None
    batch = {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()} \
        if isinstance(batch, dict) else {}
    x = np.asarray(batch.get("data", np.zeros((0, 0))), dtype=np.uint8)
    y = np.asarray(batch.get("labels", []), dtype=np.int64)
    if x.ndim != 2 or x.shape[1] != CIFAR_RECORD - 1 or len(x) != len(y) or not len(y):
        raise _cifar_error(path, root, f"is not a CIFAR-10 batch (data {x.shape}, "
                           f"{len(y)} labels)")
    return torch.from_numpy(x.reshape(-1, 3, 32, 32).copy()), torch.from_numpy(y)


def _torchvision(name: str, root: Path, download: bool) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    import torch

    info = DATASETS[name]
    ensure_available(name, root, download)
    if info.files == MNIST_FILES:
        return _mnist_like(name, root)
    import torchvision.datasets as tvd

    cls = getattr(tvd, info.torchvision_class)
    try:
        train, test = cls(str(root), train=True), cls(str(root), train=False)
    except Exception as exc:  # truncated or corrupt files
        raise DataError(
            f"dataset {name!r} in {root / info.folder} cannot be read ({exc}); delete the "
            "files and download them again"
        ) from None

    def tensors(ds: torchvision.datasets.MNIST | torchvision.datasets.CIFAR10
                ) -> tuple[Tensor, Tensor]:
        x = torch.as_tensor(ds.data)
        x = x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2)  # CIFAR is NHWC
        return x.contiguous(), torch.as_tensor(ds.targets, dtype=torch.int64)

    return (*tensors(train), *tensors(test))


def imagefolder_files(root: Path) -> tuple[list[str], dict[str, list[tuple[Path, int]]]]:
    """Class names (train/'s class folders, sorted) and (file, label) lists of train and val.

    One-line DataError when the layout is not ROOT/train/<class>/*.jpg + ROOT/val/<class>/*.jpg.
    """
    layout = (f"expected {root}/train/<class>/*.jpg and {root}/val/<class>/*.jpg (val/ is the "
              "test set); pass --data-dir ROOT")
    found: dict[str, dict[str, list[Path]]] = {}
    for split in ("train", "val"):
        folder = root / split
        classes = {}
        if folder.is_dir():
            for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
                images = sorted(f for f in sub.iterdir()
                                if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)
                if images:
                    classes[sub.name] = images
        if not classes:
            raise DataError(f"dataset 'imagefolder': {folder} is missing or has no class folders "
                            f"with images; {layout}")
        found[split] = classes
    names = sorted(found["train"])
    for cls in found["val"]:
        if cls not in found["train"]:
            raise DataError(f"dataset 'imagefolder': {root / 'val' / cls} has no counterpart "
                            f"in {root / 'train'}; val/ must use the class folders of train/")
    files = {split: [(f, names.index(cls)) for cls, fs in found[split].items() for f in fs]
             for split in found}
    return names, files


def _imagefolder(root: Path, size: int) -> tuple[Tensor, Tensor, Tensor, Tensor, int]:
    """Decode every image once (PIL): shorter side to size·256/224, center crop, uint8 RGB.

    The resize-then-crop ratio is torchvision's ImageNet evaluation transform. No augmentation:
    the tensors are fixed for the whole process, like every other dataset.
    """
    import torch
    import torchvision.transforms.functional as TF
    from PIL import Image

    names, files = imagefolder_files(root)

    def decode(items: list[tuple[Path, int]]) -> tuple[Tensor, Tensor]:
        images = []
        for path, _ in items:
            try:
                with Image.open(path) as img:
                    img = TF.resize(img.convert("RGB"), round(size * 256 / 224))
                    images.append(TF.pil_to_tensor(TF.center_crop(img, size)))
            except OSError as exc:
                raise DataError(f"dataset 'imagefolder': cannot read {path} ({exc}); remove "
                                "or replace it") from None
        return torch.stack(images), torch.tensor([label for _, label in items])

    return (*decode(files["train"]), *decode(files["val"]), len(names))
