"""One builder for every CNN and MLP a study can ask for (plain PyTorch: no Optuna here).

Dropout locations, in the order a sample meets them:
``input`` on the image; ``before_conv`` before every conv layer but the first (the first one
sees the input: use ``input`` for that); ``before_pool`` between a block's activation and its
pooling (blocks without pooling get none); ``after_conv`` at the end of every conv block, after
its pooling; ``before_fc`` on the flattened features; ``between_fc`` after each hidden fc layer.
A conv block is conv -> [batch norm] -> activation -> [pooling].
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

ACTIVATION_MODULES = {
    "relu": "ReLU",
    "leaky_relu": "LeakyReLU",
    "elu": "ELU",
    "gelu": "GELU",
    "sigmoid": "Sigmoid",
    "tanh": "Tanh",
}


class ShapeError(ValueError):
    """The architecture cannot process the dataset's input shape."""


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
    dropout: float = 0.0
    dropout_location: str = "none"
    fc_layers: int = 0
    fc_width: int = 128
    fc_units: Sequence[int] = ()
    bias: bool = True

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ModelConfig:
        """Pick the ``model.*`` keys of a flat study configuration."""
        names = {f.name for f in fields(cls)}
        return cls(**{k[6:]: v for k, v in config.items() if k[6:] in names and k[:6] == "model."})

    def conv_channels(self) -> list[int]:
        if self.channels:
            return list(self.channels)
        return [max(1, round(self.width * self.growth**i)) for i in range(self.conv_layers)]

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


def build_model(cfg: ModelConfig, input_shape: tuple[int, int, int], n_classes: int):
    """A ``torch.nn.Sequential`` producing logits of shape (batch, n_classes)."""
    from torch import nn

    c, h, w = feature_shape(cfg, input_shape)
    activation = getattr(nn, ACTIVATION_MODULES[cfg.activation])
    from hpo.layers import FastDropout
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
                layers.append(nn.BatchNorm2d(out_c))
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
            layers.append(nn.BatchNorm1d(units))
        layers.append(activation())
        add_dropout("between_fc")
        features = units
    layers.append(nn.Linear(features, n_classes, bias=cfg.bias))
    return nn.Sequential(*layers)


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())
