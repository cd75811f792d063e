"""Writing a study back as a study file (TOML): the dashboard note shows it, and
``hpo.run(study, **overrides)`` re-reads it with more overrides."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def spec_toml(spec: Mapping[str, Any]) -> str:
    """A study file (TOML) for a stored ``hpo.spec``; `hpo run --study FILE` reads it back."""
    config = spec["config"]
    lines = []
    sections: dict[str, list[str]] = {}
    for key, value in config.items():
        if value is None:
            continue  # TOML has no null; a missing key takes the same default
        section, _, sub = key.rpartition(".")
        if section:
            sections.setdefault(section, []).append(f"{sub} = {_toml_value(value)}")
        else:
            lines.append(f"{key} = {_toml_value(value)}")
    for section, entries in sections.items():
        lines += ["", f"[{section}]", *entries]
    if spec.get("space"):
        lines += ["", "[space]"]
        for param in spec["space"]:
            entry = {k: v for k, v in param.items() if k != "key" and v is not None}
            lines.append(f"{_toml_value(param['key'])} = {_toml_value(entry)}")
    ref = spec.get("reference")
    if ref:
        lines += _reference_toml("[reference]", ref)
    for more in spec.get("references") or ():
        lines += _reference_toml("[[references]]", more)
    for claim in spec.get("claims") or ():
        lines += ["", "[[claims]]"]
        lines += [f"{k} = {_toml_value(v)}" for k, v in claim.items()]
    return "\n".join(lines) + "\n"


def _reference_toml(header: str, ref: Mapping[str, Any]) -> list[str]:
    lines = ["", header]
    lines += [f"{k} = {_toml_value(ref[k])}" for k in ("source", "metric", "note")
              if ref[k] is not None]
    rows = [{**params, "value": value} for params, value in ref["rows"]]
    return [*lines, "rows = [", *(f"  {_toml_value(row)}," for row in rows), "]"]


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)  # Python's float repr round-trips and is valid TOML (1e-05, 0.001)
    if isinstance(value, str) and "\n" in value:  # keep paragraphs readable in the note
        escaped = value.replace("\\", "\\\\").replace('"""', '\\"""')
        return '"""\n' + escaped + '"""'
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        items = (f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items() if v is not None)
        return "{ " + ", ".join(items) + " }"
    raise TypeError(f"cannot write {value!r} as TOML")


def _toml_key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else json.dumps(key)
