from __future__ import annotations

import pytest
import torch
from torch import nn

from hpo.nn.layers import FastDropout
from hpo.nn.models import ModelConfig, ShapeError, build_model, count_parameters, feature_shape
from hpo.spec import DROPOUT_LOCATIONS

R0_CNN = ModelConfig(family="cnn", conv_layers=2, channels=(16, 4), kernel_size=3, padding=1,
                     pool="max", activation="relu", fc_layers=0)


def test_r0_cnn_has_2710_parameters():
    model = build_model(R0_CNN, (1, 28, 28), 10)
    assert count_parameters(model) == 2710
    assert model(torch.zeros(3, 1, 28, 28)).shape == (3, 10)


def test_r0_mlp_has_238510_parameters():
    mlp = ModelConfig(family="mlp", fc_layers=1, fc_width=300, activation="sigmoid")
    assert count_parameters(build_model(mlp, (1, 28, 28), 10)) == 238_510


def test_r3_cnn_flattens_to_320():
    r3 = ModelConfig(conv_layers=2, channels=(10, 20), kernel_size=5, padding=0, fc_layers=1,
                     fc_width=100)
    assert feature_shape(r3, (1, 28, 28)) == (20, 4, 4)


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32)])
@pytest.mark.parametrize(
    "cfg",
    [
        R0_CNN,
        ModelConfig(conv_layers=3, width=8, growth=2.0, fc_layers=2, fc_width=16,
                    batch_norm="both", dropout=0.3, dropout_location="between_fc"),
        ModelConfig(conv_layers=1, kernel_size=5, stride=2, pool="avg", activation="gelu"),
        ModelConfig(conv_layers=2, pool=["none", "max"], padding=0, activation="elu"),
        ModelConfig(family="mlp", fc_layers=2, fc_units=(32, 16), batch_norm="fc",
                    dropout=0.5, dropout_location="input"),
    ],
)
def test_output_shape_for_any_input(cfg, shape):
    model = build_model(cfg, shape, 10)
    assert model(torch.randn(4, *shape)).shape == (4, 10)


def test_channels_from_width_and_growth():
    cfg = ModelConfig(conv_layers=3, width=8, growth=1.5)
    assert cfg.conv_channels() == [8, 12, 18]


def test_pool_list_shorter_than_blocks_means_no_pool():
    cfg = ModelConfig(conv_layers=3, pool=["max"], channels=(4, 4, 4))
    assert feature_shape(cfg, (1, 28, 28)) == (4, 14, 14)


def _dropout_positions(model: nn.Sequential) -> list[str]:
    """Name of the layer right after each dropout (or 'end')."""
    layers = list(model)
    out = []
    for i, layer in enumerate(layers):
        if isinstance(layer, FastDropout):
            out.append(type(layers[i + 1]).__name__ if i + 1 < len(layers) else "end")
    return out


@pytest.mark.parametrize(
    ("location", "followers"),
    [
        ("none", []),
        ("input", ["Conv2d"]),
        ("before_conv", ["Conv2d"]),
        ("before_pool", ["MaxPool2d", "MaxPool2d"]),
        ("after_conv", ["Conv2d", "Flatten"]),
        ("before_fc", ["Linear"]),
        ("between_fc", ["Linear"]),
    ],
)
def test_dropout_locations(location, followers):
    cfg = ModelConfig(channels=(4, 4), dropout=0.2, dropout_location=location, fc_layers=1,
                      fc_width=8)
    assert _dropout_positions(build_model(cfg, (1, 8, 8), 10)) == followers


def test_every_dropout_location_is_covered():
    assert set(DROPOUT_LOCATIONS) == {"none", "input", "before_conv", "after_conv",
                                      "before_pool", "before_fc", "between_fc"}


@pytest.mark.parametrize(
    ("placement", "bn2d", "bn1d"),
    [("none", 0, 0), ("conv", 2, 0), ("fc", 0, 1), ("both", 2, 1)],
)
def test_batch_norm_placement(placement, bn2d, bn1d):
    cfg = ModelConfig(channels=(4, 4), batch_norm=placement, fc_layers=1, fc_width=8)
    layers = list(build_model(cfg, (1, 8, 8), 10))
    assert sum(isinstance(m, nn.BatchNorm2d) for m in layers) == bn2d
    assert sum(isinstance(m, nn.BatchNorm1d) for m in layers) == bn1d


def test_no_bias():
    cfg = ModelConfig(channels=(4, 4), bias=False)
    assert all(p.dim() > 1 for p in build_model(cfg, (1, 8, 8), 10).parameters())


def test_too_deep_for_input_is_a_shape_error():
    cfg = ModelConfig(conv_layers=3, channels=(2, 2, 2), kernel_size=3, padding=0, pool="none")
    with pytest.raises(ShapeError) as info:
        feature_shape(cfg, (1, 5, 5))
    assert str(info.value) == (
        "model: conv layer 3 (kernel 3, padding 0, stride 1) does not fit its 1x1 input of a "
        "5x5 image; use fewer conv layers, less pooling, a smaller kernel or more padding"
    )


def test_fast_dropout_drops_p_and_keeps_the_mean():
    torch.manual_seed(0)
    layer = FastDropout(0.2)
    x = torch.ones(200_000)
    out = layer(x)
    dropped = (out == 0).float().mean().item()
    assert abs(dropped - 0.2) < 0.005
    assert out.mean().item() == pytest.approx(1.0, abs=0.01)
    assert set(out.unique().tolist()) == {0.0, 1.25}
    layer.eval()
    assert torch.equal(layer(x), x)


def test_fast_dropout_gradient_follows_the_mask():
    torch.manual_seed(0)
    layer = FastDropout(0.5)
    x = torch.ones(1000, requires_grad=True)
    out = layer(x)
    out.sum().backward()
    assert torch.equal(x.grad, out.detach())  # d(out)/dx is the scaled mask


def test_fast_dropout_is_reproducible_from_torch_seed():
    torch.manual_seed(3)
    a = FastDropout(0.3)(torch.ones(100))
    torch.manual_seed(3)
    b = FastDropout(0.3)(torch.ones(100))
    assert torch.equal(a, b)


def test_fast_dropout_keeps_a_channels_last_layout():
    # The mask is drawn in the activation's own memory layout: a mask in the default layout
    # sent every multiply down torch's slow mixed-stride path.
    torch.manual_seed(0)
    x = torch.rand(8, 16, 6, 6).contiguous(memory_format=torch.channels_last).requires_grad_()
    out = FastDropout(0.25)(x)
    assert out.is_contiguous(memory_format=torch.channels_last)
    kept = out.detach() != 0
    assert torch.allclose(out.detach()[kept], x.detach()[kept] / 0.75)
    out.sum().backward()
    assert torch.equal(x.grad, kept.float() / 0.75)
    assert abs(1 - kept.float().mean().item() - 0.25) < 0.03


def test_keep_freed_memory_applies_on_glibc():
    import platform

    from hpo.nn.train import keep_freed_memory

    assert keep_freed_memory() is (platform.libc_ver()[0] == "glibc")


def _random_splits(n: int, shape: tuple[int, int, int]):
    from hpo.nn.data import Splits

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, *shape, generator=gen)
    y = torch.randint(0, 10, (n,), generator=gen)
    return Splits("random", x, y, x[:20], y[:20], x[:20], y[:20], 10)


@pytest.mark.slow
def test_r1_final_network_builds_for_cifar10_and_trains_one_step():
    # R1 (f): 2 conv -> pool -> 5 conv -> pool -> 3 fc (the last the 10-way output), BN, ReLU.
    from hpo import spec
    from hpo.nn.train import TrainConfig, train_model

    config = spec.load("r1_final").config
    cfg = ModelConfig.from_config(config)
    model = build_model(cfg, (3, 32, 32), 10)
    layers = [type(m).__name__ for m in model]
    assert layers.count("Conv2d") == 7 and layers.count("Linear") == 3
    assert layers.count("BatchNorm2d") == 7 and layers.count("BatchNorm1d") == 2
    shape = [n[0] for n in layers if n in ("Conv2d", "MaxPool2d", "Linear")]  # C, M, L
    assert "".join(shape) == "CCMCCCCCMLLL"
    assert feature_shape(cfg, (3, 32, 32)) == (64, 8, 8)
    assert count_parameters(model) == 598_330
    train_cfg = TrainConfig.from_config(config)
    assert (train_cfg.optimizer, train_cfg.loss_threshold, train_cfg.loss_threshold_on) == (
        "adadelta", 0.005, "minibatch")
    result = train_model(cfg, train_cfg, _random_splits(100, (3, 32, 32)), epochs=1,
                         batch_size=config["batch_size"], seed=0, keep_weights=True)
    assert result.epochs_run == 1 and result.history[0].train_loss > 0
    before, after = result.initial_state, result.final_state
    assert all(not torch.equal(before[k], after[k]) for k in before if k.endswith("weight"))


def test_out_init_scale_multiplies_only_the_output_layer():
    cfg = dict(family="mlp", fc_layers=1, fc_width=8)
    torch.manual_seed(0)
    plain = build_model(ModelConfig(**cfg), (1, 8, 8), 10)
    torch.manual_seed(0)
    scaled = build_model(ModelConfig(**cfg, out_init_scale=13.0), (1, 8, 8), 10)
    (hidden, out), (hidden_s, out_s) = ([m for m in net if isinstance(m, nn.Linear)]
                                         for net in (plain, scaled))
    assert torch.equal(hidden.weight, hidden_s.weight)
    assert torch.allclose(out_s.weight, 13.0 * out.weight)
    assert torch.allclose(out_s.bias, 13.0 * out.bias)
