"""Loss along the straight line between a run's initial and final weights (plain PyTorch).

R3 (Fig. 21-22, after Goodfellow et al., "Qualitatively characterizing neural network
optimization problems") evaluates the loss at theta(alpha) = (1 - alpha) * theta_0 +
alpha * theta_final for alpha from before the start to past the end of training: a wide, flat
valley around alpha = 1 for real labels, a narrow, sharp one for memorised (shuffled) labels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from hpo.nn.data import Splits
from hpo.nn.models import ModelConfig, build_model
from hpo.nn.train import evaluate, finite_or_none

# 21 points, step 0.1 (alpha = 0 and alpha = 1 among them, written exactly), and four more
# close to theta_final, where the sharpness is read (the loss rise 0.05 of the way either side).
NEAR_FINAL = (0.95, 0.98, 1.02, 1.05)
ALPHAS = tuple(sorted({round(-0.5 + 0.1 * i, 10) for i in range(21)} | set(NEAR_FINAL)))


def interpolate(initial: Mapping[str, torch.Tensor], final: Mapping[str, torch.Tensor],
                alpha: float) -> dict[str, torch.Tensor]:
    """theta(alpha) = (1 - alpha) * theta_0 + alpha * theta_final, key by key.

    Floating-point buffers (batch-norm running mean and variance) are interpolated like the
    weights, so alpha = 0 is exactly the initial network and alpha = 1 the final one; a running
    variance extrapolated below zero (alpha outside [0, 1]) is clipped to 0. Integer buffers
    (``num_batches_tracked``) are the final ones: they do not enter the forward pass in eval.
    """
    out = {}
    for key, end in final.items():
        start = initial[key]
        if not torch.is_floating_point(end):
            out[key] = end.clone()
            continue
        value = (1.0 - alpha) * start + alpha * end
        if key.endswith("running_var"):
            value = value.clamp_min(0.0)
        out[key] = value
    return out


def flatness_curve(
    model_cfg: ModelConfig,
    data: Splits,
    initial: Mapping[str, torch.Tensor],
    final: Mapping[str, torch.Tensor],
    *,
    alphas: Sequence[float] = ALPHAS,
    train_y: torch.Tensor | None = None,
    precision: str = "fp32",
) -> dict[str, list[float | None]]:
    """Validation (and training) loss and error (%) at every alpha, JSON-ready.

    ``train_y`` is the labels the run was trained on (shuffled ones for a label-shuffle run),
    default the true labels. Non-finite losses are None.
    """
    device = data.train_x.device
    model = build_model(model_cfg, data.shape, data.n_classes).to(device)
    train_y = data.train_y if train_y is None else train_y
    out: dict[str, list[float | None]] = {
        "alpha": [float(a) for a in alphas], "val_loss": [], "val_err": [],
        "train_loss": [], "train_err": [],
    }
    with torch.no_grad():
        for alpha in alphas:
            state = interpolate(initial, final, float(alpha))
            model.load_state_dict({k: v.to(device) for k, v in state.items()})
            for split, x, y in (("val", data.val_x, data.val_y),
                                ("train", data.train_x, train_y)):
                loss, acc = evaluate(model, x, y, precision)
                out[f"{split}_loss"].append(finite_or_none(loss))
                out[f"{split}_err"].append(100.0 - acc)
    return out
