"""Layers hpo builds that torch does not have in the form it needs (imports torch)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

# Masks compare 16-bit random draws with p * 2**16: the dropout rate is exact to 1/65536.
MASK_LEVELS = 1 << 16


class _Scaled(torch.autograd.Function):
    """x * m and grad * m for a float mask m of x's dtype and memory layout.

    One same-layout, same-dtype multiply each way: multiplying a channels_last activation by
    a bool mask in the default layout took torch's slow mixed-type, mixed-stride path (42% of
    a training step's CPU time for dropout before pooling in R0's CNN).
    """

    @staticmethod
    def forward(ctx, x, scaled_mask):  # autograd's signature
        ctx.save_for_backward(scaled_mask)
        return x * scaled_mask

    @staticmethod
    def backward(ctx, grad):
        (scaled_mask,) = ctx.saved_tensors
        return grad * scaled_mask, None


class FastDropout(nn.Module):
    """Inverted dropout whose CPU mask comes from numpy's PCG64 raw bits.

    On the CPU, torch's Bernoulli sampling costs about ten activations: with R0's CNN and
    dropout before pooling it took more time than the convolutions. Raw 64-bit draws split into
    four 16-bit numbers give the same independent Bernoulli(1 - p) mask several times faster.
    The generator is seeded from torch's RNG when the layer is built, so a trial stays
    reproducible from its seed. On other devices torch's own dropout (fast there) runs.
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"dropout rate must be in [0, 1), got {p}")
        self.p = p
        # Draws are int16 in [-2**15, 2**15): keep those >= threshold, a fraction 1 - p.
        self.threshold = round(p * MASK_LEVELS) - MASK_LEVELS // 2
        seed = int(torch.randint(0, 2**62, (1,)).item())
        self._bits = np.random.default_rng(seed).bit_generator

    def mask(self, shape: torch.Size, channels_last: bool = False) -> torch.Tensor:
        """Bool keep-mask of ``shape``; laid out as NHWC in memory when ``channels_last``."""
        n = int(np.prod(shape))
        words = self._bits.random_raw((n + 3) // 4)
        draws = torch.from_numpy(words.view(np.int16)[:n])
        if channels_last:
            batch, channels, height, width = shape
            return (draws.view(batch, height, width, channels) >= self.threshold).permute(
                0, 3, 1, 2)
        return draws.view(shape) >= self.threshold

    def scaled_mask(self, x: torch.Tensor) -> torch.Tensor:
        """The keep-mask times 1 / (1 - p), in x's dtype and memory layout."""
        nhwc = x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(
            memory_format=torch.channels_last)
        keep = self.mask(x.shape, channels_last=nhwc)
        return keep.to(x.dtype) * (1.0 / (1.0 - self.p))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        if x.device.type != "cpu":
            return F.dropout(x, self.p, training=True)
        return _Scaled.apply(x, self.scaled_mask(x))

    def extra_repr(self) -> str:
        return f"p={self.p}"


class PretrainedNet(nn.Module):
    """A pretrained network whose last layer ``head`` was replaced; frozen but for that layer
    unless ``finetune``.

    ``scale`` and ``shift`` (per channel) map the ImageNet-normalised images of the imagefolder
    dataset to the input statistics the weights were trained with. A frozen network stays in
    eval mode whatever ``train()`` asks, so its batch-norm statistics and drop-connect stay
    those of the pretrained weights: a fixed feature extractor, as the transfer tutorial's.
    ``freeze_bn`` keeps a fine-tuned network's batch-norm layers in inference mode (their
    pretrained statistics; their scale and shift still train): Keras's advice for fine-tuning
    EfficientNet, whose ported layers move their statistics only 1% per step (TF's momentum
    0.99), so that statistics gathered in training mode lag the weights for hundreds of steps.
    """

    def __init__(self, net: nn.Module, head: str, finetune: bool, scale: tuple[float, ...],
                 shift: tuple[float, ...], freeze_bn: bool = False) -> None:
        super().__init__()
        self.net, self.head, self.finetune, self.freeze_bn = net, head, finetune, freeze_bn
        self.register_buffer("scale", torch.tensor(scale).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("shift", torch.tensor(shift).view(1, -1, 1, 1), persistent=False)
        if not finetune:
            for name, p in net.named_parameters():
                p.requires_grad_(name.startswith(f"{head}."))

    def train(self, mode: bool = True) -> PretrainedNet:
        super().train(mode)
        if not self.finetune:
            self.net.eval()
            getattr(self.net, self.head).train(mode)
        elif self.freeze_bn:
            for module in self.net.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x * self.scale + self.shift)
