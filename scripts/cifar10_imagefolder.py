"""Write a two-class natural-image folder cut from CIFAR-10: the offline stand-in for ants/bees.

    python scripts/cifar10_imagefolder.py DATA_DIR runs/cifar10_cat_dog

DATA_DIR holds cifar-10-batches-bin/ (the official binary release, from the CIFAR-10 page) or
torchvision's cifar-10-batches-py/. hymenoptera_data (PyTorch's transfer-learning tutorial)
cannot be downloaded here, so the `transfer` study runs on an image folder of its shape: two
classes, 122 training and 77 validation images per class (244 / 153 in the tutorial), PNG files
in ROOT/{train,val}/<class>/. Cat and dog are the classes: like ants and bees, two kinds of one
sort of animal, and the CIFAR-10 pair networks confuse most. The images are the first ones of
each class in the training batches (train/) and the test batch (val/), so the folder is the same
on every machine, upscaled (bicubic) from 32x32 to 224x224, the pretrained networks' input.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image

from hpo.nn.data import read_cifar10

CLASSES = {"cat": 3, "dog": 5}  # CIFAR-10's label numbers
PER_CLASS = {"train": 122, "val": 77}
SIZE = 224


def write_folder(cifar_root: Path, out: Path, size: int = SIZE) -> int:
    train_x, train_y, test_x, test_y = read_cifar10(cifar_root)
    written = 0
    for split, (images, labels) in (("train", (train_x, train_y)), ("val", (test_x, test_y))):
        for name, label in CLASSES.items():
            folder = out / split / name
            folder.mkdir(parents=True, exist_ok=True)
            picked = (labels == label).nonzero().flatten()[:PER_CLASS[split]]
            for i in picked.tolist():
                pixels = images[i].permute(1, 2, 0).numpy()  # CHW -> HWC for PIL
                image = Image.fromarray(pixels, mode="RGB").resize((size, size), Image.BICUBIC)
                image.save(folder / f"{i:05d}.png")
                written += 1
    return written


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python scripts/cifar10_imagefolder.py CIFAR10_DIR OUT_DIR")
    count = write_folder(Path(sys.argv[1]), Path(sys.argv[2]))
    print(f"wrote {count} images under {sys.argv[2]}")
