"""Reading study files (shipped name or path), ``--set`` overrides, and stored studies."""

from __future__ import annotations

import difflib
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from hpo.errors import SpecError
from hpo.schema import JSON
from hpo.spec.keys import KEYS, unknown_key
from hpo.spec.model import Study, reference_from_dict
from hpo.spec.validate import validate

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


def studies_dir() -> Path:
    """Shipped study files: the checkout's studies/ (editable install), else the installed copy."""
    checkout = Path(__file__).resolve().parents[2] / "studies"
    if checkout.is_dir():
        return checkout
    return Path(sys.prefix) / "share" / "hpo" / "studies"

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
        raw["reference"] = reference_from_dict(ref)
    if data.get("references"):
        raw["references"] = [reference_from_dict(r) for r in data["references"]]
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
        if path.is_dir():
            raise SpecError(f"{name_or_path} is a folder, not a study file; give a .toml file "
                            "(e.g. one in it), or a shipped study name (`hpo studies`)")
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


def parse_override(item: str, source: str) -> tuple[str, JSON]:
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
        raise SpecError(f"{source}: --set {key}: {unknown_key(key)}")
    _assign(raw, key, value)


def _assign(raw: dict[str, Any], key: str, value: JSON) -> None:
    head, _, rest = key.partition(".")
    if rest:
        raw.setdefault(head, {})[rest] = value
    else:
        raw[key] = value
