"""The study model: a validated study, its search space, published tables and claims."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hpo.schema import JSON
from hpo.spec.keys import KEYS
from hpo.spec.rules import METRICS


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


CLAIM_KINDS = ("best", "better", "similar", "at_chance", "above", "below", "spread")
THRESHOLD_KINDS = ("above", "below")  # a one-sample t-test of the mean against ``value``
CLAIM_FIELDS = ("text", "kind", "config", "than", "metric", "tolerance", "margin",
                "requires_stop", "applies_if", "value", "than_metric", "scale")
# spread: "relative" compares std / |mean| (any two metrics), "absolute" the plain std (two
# metrics in the same units: two losses, or two accuracies)
SPREAD_SCALES = ("relative", "absolute")
SAME_UNITS = (("train_loss", "val_loss", "test_loss", "early_train_loss"),
              ("train_acc", "val_acc", "test_acc", "early_train_acc"))
CHANCE_TOLERANCE = 5.0  # at_chance: percentage points either side of 100 / n_classes
SIMILAR_MARGIN = 1.0  # similar: accuracy points either way that count as "the same"
# What a claim may compare, beyond METRICS: seconds per run (wall, CPU), seconds per epoch,
# epochs run, epochs to target_acc, "sharpness" (analysis = flatness: how much the training
# loss rises 0.05 of the way from theta_final towards theta_0 and as far beyond it), the
# training curve's start (early_train_loss, early_train_acc: the per-step points up to
# early_steps; needs train.log_every) and its end (late_loss_fall: how much, in %, the training
# loss still fell over the last two epochs: near 0 once it has flattened, R4's "converged"),
# and val_loss_rise (the last epoch's validation loss minus the lowest of the run: overfitting),
# val_acc_drop (the run's highest validation accuracy minus the last epoch's, in points: R2's
# "peaks, then falls"),
# "relative_sharpness" (sharpness over the training loss at theta_final: the valley's shape
# apart from its depth).
EARLY_METRICS = ("early_train_loss", "early_train_acc")
# loss_fall: how much (%) the training loss fell over the run, the per-step curve's first point
# against its last (R0's "the loss curve is almost flat"; needs train.log_every).
STEP_METRICS = (*EARLY_METRICS, "loss_fall")
CLAIM_METRICS = (*METRICS, "wall_time", "cpu_time", "epoch_seconds", "epochs_run",
                 "epochs_to_target", "sharpness", "relative_sharpness", *STEP_METRICS,
                 "late_loss_fall", "val_loss_rise", "val_acc_drop")
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
    value: float | None = None  # above / below: the mean must be significantly above / below
    than_metric: str | None = None  # spread: metric varies more between seeds than this one
    scale: str = "relative"  # spread: SPREAD_SCALES

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
        if self.value is not None:
            out["value"] = self.value
        if self.than_metric is not None:
            out["than_metric"] = self.than_metric
        if self.scale != "relative":
            out["scale"] = self.scale
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

    def data_folder(self, explicit: str | None = None) -> str | None:
        """Where the dataset is read: ``explicit`` (``--data-dir``), else the study's
        ``data_dir``; None leaves nn.data its default ($HPO_DATA_DIR, else ./data). The one
        place that order lives (`hpo run`, its workers and `hpo bench`)."""
        return explicit or self.config["data_dir"]

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


def reference_from_dict(ref: Mapping[str, Any]) -> dict[str, Any]:
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


def identity_diff(stored: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """The keys that define the runs and differ between two ``Study.identity()`` dicts, as
    ``key old -> new``; "the search space" when the grids differ."""
    def value(cfg: dict[str, Any], key: str) -> JSON:
        # A key added to hpo after the study was stored ran with what is now its default.
        return cfg.get(key, KEYS[key].default if key in KEYS else None)

    diffs = []
    old_cfg, new_cfg = stored.get("config", {}), current["config"]
    for key in sorted(set(old_cfg) | set(new_cfg)):
        if key in KEYS and not KEYS[key].identity:
            continue  # stored by an hpo that still counted it
        if value(old_cfg, key) != value(new_cfg, key):
            diffs.append(f"{key} {value(old_cfg, key)!r} -> {value(new_cfg, key)!r}")
    grid = value(new_cfg, "sampler") == "grid"
    if stored.get("space") != current["space"] and not (
            grid and grid_extends(stored.get("space") or [], current["space"])):
        diffs.append("the search space")
    return diffs


def grid_extends(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> bool:
    """Whether grid ``new`` only adds choices to ``old``'s keys: every stored run is still a
    cell of the new grid, with the same settings, so the runs stay and the new cells are run
    (a study adding a reading the seed leaves open, such as another learning rate, runs only
    that reading instead of a second study)."""
    if [(p["key"], p["type"], p.get("when")) for p in old] != \
            [(p["key"], p["type"], p.get("when")) for p in new]:
        return False
    return all(p["type"] == "categorical" and all(c in q["choices"] for c in p["choices"])
               for p, q in zip(old, new))


def added_choices(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> str:
    """What grid ``new`` adds to ``old`` (grid_extends holds), as "train.lr + 0.003"."""
    parts = []
    for p, q in zip(old, new):
        added = [repr(c) for c in q["choices"] if c not in p["choices"]]
        if added:
            parts.append(f"{q['key']} + {', '.join(added)}")
    return "; ".join(parts)
