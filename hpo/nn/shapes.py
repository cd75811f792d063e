"""Shapes without torch: the datasets' image shapes, the model configuration, and what reaches
the first fc layer. All that study validation (hpo.spec) needs of the networks; importing it
never imports torch.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

DEFAULT_IMAGE_SIZE = 224


@dataclass(frozen=True)
class DatasetInfo:
    shape: tuple[int, int, int]
    n_classes: int
    # For torchvision datasets: class name, folder under --data-dir, files that must be there.
    torchvision_class: str | None = None
    folder: str = ""
    files: tuple[str, ...] = ()


MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
# CIFAR-10 in the order hpo concatenates them: five training batches, then the test batch.
CIFAR_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)
CIFAR_RECORD = 1 + 3 * 32 * 32  # binary release: one label byte, then the R, G, B planes
CIFAR_PY_FOLDER = "cifar-10-batches-py"  # torchvision's download (pickled dicts)

DATASETS: dict[str, DatasetInfo] = {
    "digits": DatasetInfo((1, 8, 8), 10),
    "mnist": DatasetInfo((1, 28, 28), 10, "MNIST", "MNIST/raw", MNIST_FILES),
    "fashion_mnist": DatasetInfo((1, 28, 28), 10, "FashionMNIST", "FashionMNIST/raw",
                                 MNIST_FILES),
    "kmnist": DatasetInfo((1, 28, 28), 10, "KMNIST", "KMNIST/raw", MNIST_FILES),
    # Read from either release (see _cifar10): the binary one is what hpo names when missing.
    "cifar10": DatasetInfo((3, 32, 32), 10, "CIFAR10", "cifar-10-batches-bin",
                           tuple(f"{b}.bin" for b in CIFAR_BATCHES)),
    # ROOT/train/<class>/*.jpg, ROOT/val/<class>/*.jpg; size and classes come from the files.
    "imagefolder": DatasetInfo((3, DEFAULT_IMAGE_SIZE, DEFAULT_IMAGE_SIZE), 0),
}


def input_shape(name: str, config: Mapping[str, Any] | None = None) -> tuple[int, int, int]:
    """(C, H, W) of a dataset's images; ``imagefolder`` reads ``image_size`` from ``config``."""
    if name == "imagefolder":
        size = (config or {}).get("image_size", DEFAULT_IMAGE_SIZE)
        return 3, size, size
    return DATASETS[name].shape


class ShapeError(ValueError):
    """The architecture cannot process the dataset's input shape."""



# AlexNet's feature extractor: (kernel, stride, padding) of each conv and max-pool, in order.
ALEXNET_FEATURES = ((11, 4, 2), (3, 2, 0), (5, 1, 2), (3, 2, 0), (3, 1, 1), (3, 1, 1), (3, 1, 1),
                    (3, 2, 0))
ALEXNET_MIN_SIZE = 63  # the smallest input for which every layer above gets at least 1 pixel
# EfficientNet-Lite0 halves the image five times (224 -> 7): 32 leaves its head one pixel.
EFFICIENTNET_MIN_SIZE = 32
EFFICIENTNET_FEATURES = 1280


@functools.cache
def _model_keys(cls: type) -> tuple[tuple[str, str], ...]:
    """(``model.<field>``, field) for each field of ``cls``: from_config runs once per
    configuration a study can produce (validation walks up to 20,000), so computed once."""
    return tuple((f"model.{f.name}", f.name) for f in fields(cls))


@dataclass(frozen=True)
class ModelConfig:
    family: str = "cnn"
    conv_layers: int = 2
    channels: Sequence[int] = ()
    width: int = 16
    growth: float = 2.0
    kernel_size: int = 3
    stride: int = 1
    padding: int | str = "same"
    pool: str | Sequence[str] = "max"
    pool_size: int = 2
    activation: str = "relu"
    batch_norm: str = "none"
    bn_affine: bool = True
    dropout: float = 0.0
    dropout_location: str = "none"
    fc_layers: int = 0
    fc_width: int = 128
    fc_units: Sequence[int] = ()
    bias: bool = True
    out_init_scale: float = 1.0
    pretrained: str = "none"
    finetune: bool = True
    finetune_bn: str = "train"
    weights_file: str | None = None

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ModelConfig:
        """Pick the ``model.*`` keys of a flat study configuration."""
        return cls(**{name: config[key] for key, name in _model_keys(cls) if key in config})

    def conv_channels(self) -> list[int]:
        if self.channels:
            return list(self.channels)
        out = []
        for i in range(self.conv_layers):
            try:
                out.append(max(1, round(self.width * self.growth**i)))
            except OverflowError:  # width x growth^i past a float: no machine holds it
                raise ShapeError(
                    f"model: conv layer {i + 1} would have {self.width} x {self.growth}^{i} "
                    "channels (model.width x model.growth^(layer - 1)), more than any machine "
                    "holds; use fewer model.conv_layers, a smaller model.growth or list "
                    "model.channels") from None
        return out

    def pool_of(self, block: int) -> str:
        if isinstance(self.pool, str):
            return self.pool
        return self.pool[block] if block < len(self.pool) else "none"

    def conv_padding(self) -> int:
        return self.kernel_size // 2 if self.padding == "same" else int(self.padding)

    def hidden_units(self) -> list[int]:
        return list(self.fc_units) if self.fc_units else [self.fc_width] * self.fc_layers

    def dropout_at(self, location: str) -> bool:
        return self.dropout > 0 and self.dropout_location == location


def feature_shape(cfg: ModelConfig, input_shape: tuple[int, int, int]) -> tuple[int, int, int]:
    """Shape (C, H, W) of what reaches the first fc layer; ShapeError if the input cannot fit."""
    c, h, w = input_shape
    if cfg.family == "mlp":
        return c, h, w
    if cfg.family == "alexnet":
        return alexnet_features(input_shape)
    if cfg.family == "efficientnet_lite0":
        return efficientnet_features(input_shape)
    pad = cfg.conv_padding()
    for block, out_c in enumerate(cfg.conv_channels()):
        h = (h + 2 * pad - cfg.kernel_size) // cfg.stride + 1
        w = (w + 2 * pad - cfg.kernel_size) // cfg.stride + 1
        if h < 1 or w < 1:
            raise ShapeError(
                f"model: conv layer {block + 1} (kernel {cfg.kernel_size}, padding {pad}, stride "
                f"{cfg.stride}) does not fit its {_size_before(h, w, cfg, pad)} input of a "
                f"{'x'.join(map(str, input_shape[1:]))} image; use fewer conv layers, less "
                "pooling, a smaller kernel or more padding"
            )
        c = out_c
        if cfg.pool_of(block) != "none":
            if h < cfg.pool_size or w < cfg.pool_size:
                raise ShapeError(
                    f"model: pooling after conv layer {block + 1} needs at least "
                    f"{cfg.pool_size}x{cfg.pool_size}, but the layer outputs {h}x{w} for a "
                    f"{'x'.join(map(str, input_shape[1:]))} image; use fewer conv layers or "
                    "less pooling"
                )
            h, w = h // cfg.pool_size, w // cfg.pool_size
    return c, h, w


def _size_before(h_out: int, w_out: int, cfg: ModelConfig, pad: int) -> str:
    # Invert the conv formula for the message: the smallest input that produced h_out.
    h_in = (h_out - 1) * cfg.stride + cfg.kernel_size - 2 * pad
    w_in = (w_out - 1) * cfg.stride + cfg.kernel_size - 2 * pad
    return f"{max(h_in, 0)}x{max(w_in, 0)}"


def alexnet_features(input_shape: tuple[int, int, int]) -> tuple[int, int, int]:
    c, h, w = input_shape
    if c != 3 or min(h, w) < ALEXNET_MIN_SIZE:
        raise ShapeError(
            f"model: alexnet needs RGB images of at least {ALEXNET_MIN_SIZE}x{ALEXNET_MIN_SIZE}, "
            f"got {c}x{h}x{w}; use dataset 'imagefolder' with image_size >= {ALEXNET_MIN_SIZE}"
        )
    for kernel, stride, pad in ALEXNET_FEATURES:
        h, w = (h + 2 * pad - kernel) // stride + 1, (w + 2 * pad - kernel) // stride + 1
    assert h >= 1 and w >= 1, (input_shape, h, w)
    return 256, 6, 6  # after AlexNet's adaptive average pooling


def efficientnet_features(input_shape: tuple[int, int, int]) -> tuple[int, int, int]:
    c, h, w = input_shape
    if c != 3 or min(h, w) < EFFICIENTNET_MIN_SIZE:
        raise ShapeError(
            f"model: efficientnet_lite0 needs RGB images of at least {EFFICIENTNET_MIN_SIZE}x"
            f"{EFFICIENTNET_MIN_SIZE}, got {c}x{h}x{w}; use dataset 'imagefolder' (its "
            "ImageNet-normalised images are what the network's input is mapped from)"
        )
    return EFFICIENTNET_FEATURES, 1, 1  # after its global average pooling


# Images in each dataset's files: the largest batch (batch_size = 'full') it can give.
DATASET_IMAGES = {"digits": 1797, "mnist": 70000, "fashion_mnist": 70000, "kmnist": 70000,
                  "cifar10": 60000}
# Floats kept per parameter while training: the weight, its gradient, two optimizer states.
FLOATS_PER_PARAMETER = 4
# Floats kept per output value of a layer per sample: the output and its gradient.
FLOATS_PER_ACTIVATION = 2


def layer_sizes(cfg: ModelConfig, input_shape: tuple[int, int, int],
                n_classes: int) -> list[tuple[str, int, int]]:
    """(key that sets its size, parameters, output values per sample) of each layer of a cnn or
    mlp, from the same shapes as feature_shape (which must accept ``cfg``); alexnet and
    efficientnet_lite0 have fixed sizes and give []."""
    if cfg.family not in ("cnn", "mlp"):
        return []
    out, (c, h, w) = [], input_shape
    if cfg.family == "cnn":
        pad, k = cfg.conv_padding(), cfg.kernel_size
        for block, out_c in enumerate(cfg.conv_channels()):
            h, w = (h + 2 * pad - k) // cfg.stride + 1, (w + 2 * pad - k) // cfg.stride + 1
            key = ("model.channels" if cfg.channels else
                   "model.width" if block == 0 or cfg.growth <= 1 else "model.growth")
            bn = cfg.batch_norm in ("conv", "both")
            values = out_c * h * w * (2 + bn)  # conv, [batch norm], activation
            if cfg.pool_of(block) != "none":
                h, w = h // cfg.pool_size, w // cfg.pool_size
                values += out_c * h * w
            out.append((key, c * out_c * k * k + (out_c if cfg.bias else 0) + 2 * out_c * bn,
                        values))
            c = out_c
    features = c * h * w
    key = "model.fc_units" if cfg.fc_units else "model.fc_width"
    if not cfg.hidden_units():  # the output layer's size is set by what reaches it
        key = out[-1][0] if out else "image_size"
    for units in [*cfg.hidden_units(), n_classes]:
        bn = cfg.batch_norm in ("fc", "both") and units != n_classes
        out.append((key, features * units + units * cfg.bias + 2 * units * bn, units * (2 + bn)))
        features = units
    return out


def training_bytes(config: Mapping[str, Any]) -> tuple[int, str, int]:
    """(bytes, key, parameters): what one worker holds to train the model of a resolved study
    configuration (weights, gradients and optimizer states; each layer's outputs and their
    gradients for one batch), and the key behind the largest part of it."""
    cfg = ModelConfig.from_config(config)
    dataset = config["dataset"]
    images = DATASET_IMAGES.get(dataset)  # imagefolder: unknown until read
    if config.get("train_subset"):
        images = min(images or config["train_subset"], config["train_subset"])
    batch = config.get("batch_size", 64)
    batch = (images or 1) if batch == "full" else min(int(batch), images or int(batch))
    layers = layer_sizes(cfg, input_shape(dataset, config), DATASETS[dataset].n_classes or 1000)
    if not layers:
        return 0, "", 0
    parts = [(4 * (FLOATS_PER_PARAMETER * p + FLOATS_PER_ACTIVATION * v * batch), key)
             for key, p, v in layers]
    return sum(b for b, _ in parts), max(parts)[1], sum(p for _, p, _ in layers)
