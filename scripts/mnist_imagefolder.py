"""Write a two-class image folder cut from MNIST: the offline stand-in for R1's ants/bees.

    python scripts/mnist_imagefolder.py DATA_DIR runs/mnist_4_9

hymenoptera_data (PyTorch's transfer-learning tutorial) cannot be downloaded here, so the
`transfer` report runs on an image folder of the same shape: two classes, 122 training and
~77 validation images per class (244 / 153 in the tutorial), PNG files in
ROOT/{train,val}/<class>/. Digits 4 and 9 are the classes: the pair MNIST confuses most, so
the task is not trivial. The images are the first ones of each class in MNIST's training
file (train/) and test file (val/), so the folder is the same on every machine.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image

from hpo.nn.data import read_idx

CLASSES = {"four": 4, "nine": 9}
PER_CLASS = {"train": 122, "val": 77}
FILES = {"train": "train", "val": "t10k"}  # MNIST's file prefixes


def write_folder(mnist_root: Path, out: Path) -> int:
    raw = mnist_root / "MNIST" / "raw"
    written = 0
    for split, prefix in FILES.items():
        images = read_idx(raw / f"{prefix}-images-idx3-ubyte")
        labels = read_idx(raw / f"{prefix}-labels-idx1-ubyte")
        for name, digit in CLASSES.items():
            folder = out / split / name
            folder.mkdir(parents=True, exist_ok=True)
            picked = (labels == digit).nonzero().flatten()[:PER_CLASS[split]]
            for i in picked.tolist():
                Image.fromarray(images[i].numpy(), mode="L").save(folder / f"{i:05d}.png")
                written += 1
    return written


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python scripts/mnist_imagefolder.py MNIST_ROOT OUT_DIR")
    count = write_folder(Path(sys.argv[1]), Path(sys.argv[2]))
    print(f"wrote {count} images under {sys.argv[2]}")
