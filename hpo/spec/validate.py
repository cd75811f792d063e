"""Validation: every rule of a study file, the first broken one a one-line SpecError."""

from __future__ import annotations

import collections
import itertools
import json
from collections.abc import Iterable, Mapping
from typing import Any

from hpo.errors import SpecError
from hpo.nn.shapes import ModelConfig, ShapeError, feature_shape, input_shape
from hpo.schema import JSON
from hpo.spec import claim_fields
from hpo.spec.keys import KEYS, SECTIONS, SPACE_TYPES, unknown_key
from hpo.spec.model import (
    CHANCE_TOLERANCE,
    CLAIM_FIELDS,
    CLAIM_KINDS,
    STOP_REASONS,
    Claim,
    Param,
    Reference,
    Study,
)
from hpo.spec.rules import CNN_ONLY_LOCATIONS, METRICS, RuleError, is_int


def validate(raw: Mapping[str, Any], source: str) -> Study:
    """Check every rule of a study file; the first broken one raises a one-line SpecError."""
    config = _validate_config(raw, source)
    space = _validate_space(raw.get("space", {}), config, source)
    study = Study(config=config, space=space, reference=None, source=source)
    _validate_readings(config["readings"], space, source)
    tables = _validate_references(raw, study)
    study = Study(config, space, tables[0] if tables else None, source, (), tuple(tables[1:]))
    _validate_combinations(study)
    _validate_run_count(study)
    claims = _validate_claims(raw.get("claims", []), study)
    _validate_until_decided(config, claims, source)
    return Study(config, space, study.reference, source, claims, study.more_references)


# Runs (configurations x seeds) a grid study may queue: past this, a typo (repeats = 100000)
# would spend hours queueing before the first trial.
MAX_RUNS = 100_000


def _validate_run_count(study: Study) -> None:
    if not study.is_grid:
        return
    cells, seeds = len(study.cells()), study.config["repeats"]
    if cells * seeds > MAX_RUNS:
        raise SpecError(f"{study.source}: {cells:,} configurations x {seeds:,} seeds (repeats) "
                        f"= {cells * seeds:,} runs, more than hpo queues ({MAX_RUNS:,}); lower "
                        "repeats or narrow [space]")


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
            raise SpecError(f"{source}: {unknown_key(key)}")
        config[key] = check_value(key, value, source)
    for key, spec_key in KEYS.items():
        config.setdefault(key, spec_key.default)
    if not config["name"]:
        raise SpecError(f"{source}: name must not be empty")
    check_name(config["name"], source)
    return config


def check_name(name: str, source: str) -> None:
    """A study name is a folder name in reports/: no path separators, no '.' or '..', no
    control characters (a name such as '../x' made `hpo report` write outside --out)."""
    bad = ("/" in name or "\\" in name or name in (".", "..")
           or any(ord(ch) < 32 or ord(ch) == 127 for ch in name))
    if bad:
        raise SpecError(f"{source}: name {name!r} cannot be a folder name (no '/', '\\', '.', "
                        "'..' or control characters); choose a plain name such as my_study")


def check_value(key: str, value: object, source: str, label: str | None = None) -> JSON:
    """Validate one value of ``key``; the message names ``label`` (default: the key)."""
    try:
        return KEYS[key].check(value)
    except RuleError as exc:
        raise SpecError(f"{source}: {label or key} {exc}, got {value!r}") from None


def _validate_space(raw_space: object, config: Mapping[str, Any],
                    source: str) -> tuple[Param, ...]:
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


def _validate_param(key: str, entry: object, source: str) -> Param:
    where = f"{source}: space.{key}"
    if key not in KEYS or not KEYS[key].identity or key in ("seed",):
        if key in KEYS:
            raise SpecError(f"{where}: {key!r} cannot be searched; it is not a training setting")
        raise SpecError(f"{where}: {unknown_key(key)}")
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
    if kind == "int" and not (is_int(low) and is_int(high)):
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


def _validate_when(when: object, source: str, param_key: str) -> dict[str, tuple[Any, ...]]:
    where = f"{source}: space.{param_key}"
    if not isinstance(when, dict):
        raise SpecError(f"{where}.when must be a table of key = [values], got {when!r}")
    out = {}
    for key, values in when.items():
        if key not in KEYS:
            raise SpecError(f"{where}.when: {unknown_key(key)}")
        values = values if isinstance(values, list) else [values]
        out[key] = tuple(
            check_value(key, v, source, f"space.{param_key}.when.{key}") for v in values
        )
    return out


def _hashable(value: object) -> str:
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


def _validate_reference(raw_ref: object, study: Study, label: str = "reference") -> Reference:
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


def _validate_claims(raw_claims: object, study: Study) -> tuple[Claim, ...]:
    if not isinstance(raw_claims, list):
        raise SpecError(f"{study.source}: claims must be an array of tables ([[claims]]), "
                        f"got {raw_claims!r}")
    return tuple(_validate_claim(i, c, study) for i, c in enumerate(raw_claims))


def _validate_claim(i: int, raw: object, study: Study) -> Claim:
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
    for field in ("metric", "than_metric"):
        claim_fields.check_metric(f"{where}.{field}", raw.get(field), study)
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
    margin = claim_fields.margin(where, raw, kind, metric or study.config["metric"])
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
                 requires_stop, applies_if, claim_fields.threshold_value(where, raw, kind),
                 claim_fields.than_metric(where, raw, kind, metric),
                 claim_fields.spread_scale(where, raw, kind, metric))


def _claim_applies_if(where: str, raw: object, study: Study) -> tuple[tuple[str, Any], ...]:
    """Keys of the study file with the values the claim needs (checked against the run)."""
    if not isinstance(raw, dict):
        raise SpecError(f"{where}.applies_if must be a table of key = value, got {raw!r}")
    for key, value in raw.items():
        if key not in KEYS:
            raise SpecError(f"{where}.applies_if: {unknown_key(key)}")
        check_value(key, value, study.source, f"{where.split(': ', 1)[1]}.applies_if.{key}")
    return tuple(sorted(raw.items()))


def _claim_config(where: str, raw: object, study: Study,
                  label: str) -> tuple[tuple[str, JSON], ...]:
    """Keys of [space] with valid values; in a grid study they must select one configuration."""
    space_keys = [p.key for p in study.space]
    if not isinstance(raw, dict) or (not raw and space_keys):  # {}: the one configuration
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
