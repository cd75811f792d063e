"""Fuzzing `hpo run`'s input: generated study files and --set values (issue 16, item 5).

Whatever the input (wrong types, extreme and non-finite numbers, unicode, huge lists, nested
tables, conditional spaces, broken TOML), `hpo run` never prints a traceback, never exits 0 on
input known to be invalid, and never writes to the store before validation passes.

In-process through hpo.cli.main: training is replaced by a marker error raised where the
workers would start (runner.work), after every check hpo makes before training. A few dozen
examples run in the normal suite; HPO_FUZZ_EXAMPLES (default 1,000) under the slow marker.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from hpo import cli, runner
from hpo.errors import HpoError
from hpo.spec import KEYS, check_config

VALIDATED = "validated: training would start here"
BASE: dict[str, Any] = {
    "name": "fuzz", "question": "fuzz", "dataset": "digits", "epochs": 1, "repeats": 1,
    "train_subset": 100, "model": {"family": "mlp"},
    "space": {"train.lr": [0.001, 0.01]},
}
NUMERIC = [k for k, key in KEYS.items() if isinstance(key.default, (int, float))
           and not isinstance(key.default, bool)]
SCALARS = sorted(KEYS)


class Validated(HpoError):
    """Raised instead of training: the input passed every check hpo makes before it."""


# --- TOML text from Python values (tomllib only reads) --------------------------------------


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k), ensure_ascii=False)} = {toml_value(v)}"
                               for k, v in value.items()) + "}"
    raise TypeError(type(value))


def toml_text(study: dict[str, Any]) -> str:
    """Top-level scalars first, then one [table] per dict value (inline tables within)."""
    lines = [f"{json.dumps(k, ensure_ascii=False)} = {toml_value(v)}"
             for k, v in study.items() if not isinstance(v, dict)]
    for table, body in study.items():
        if isinstance(body, dict):
            lines.append(f"[{json.dumps(table, ensure_ascii=False)}]")
            lines += [f"{json.dumps(str(k), ensure_ascii=False)} = {toml_value(v)}"
                      for k, v in body.items()]
    return "\n".join(lines) + "\n"


# --- strategies -----------------------------------------------------------------------------

text = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=12)
extreme = st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -1e308, 5e-324, 0.0, -0.0,
                           2 ** 63, -(2 ** 63), 10 ** 30, -1])
scalar = st.one_of(st.integers(), st.floats(), extreme, text, st.booleans())
nested = st.recursive(scalar, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(text, inner, max_size=3)), max_leaves=8)
huge_list = st.integers(1000, 5000).map(lambda n: list(range(n)))
any_value = st.one_of(scalar, nested, huge_list)
# Known invalid for every numeric key: not a number, not finite, a table, a list.
bad_number = st.one_of(st.sampled_from([math.nan, math.inf, -math.inf]),
                       text.map(lambda s: s + "x"), st.dictionaries(text, scalar, max_size=2),
                       st.lists(scalar, max_size=3))
BAD_SET_VALUES = ["nan", "inf", "-inf", '"x"', "{a = 1}", "[1, 2]"]

space_entry = st.one_of(
    st.lists(scalar, max_size=4),
    huge_list,
    st.fixed_dictionaries({"type": st.sampled_from(["float", "int", "categorical", "x"]),
                           "low": scalar, "high": scalar},
                          optional={"log": any_value, "step": scalar,
                                    "choices": st.lists(scalar, max_size=3)}),
    st.fixed_dictionaries({"choices": st.lists(scalar, min_size=1, max_size=3),
                           "when": st.dictionaries(st.one_of(st.sampled_from(SCALARS), text),
                                                   st.lists(scalar, max_size=3), max_size=2)}),
    nested,
)


# Values that often fit (so that inputs get past validation and the store check matters).
plausible = st.sampled_from([0, 1, 2, 3, 0.5, 0.1, 1e-3, 64, 16, True, False, "relu", "tanh",
                             "mean", "sum", "max", "none", "adam", "sgd", "momentum", "cnn",
                             "mlp", "fc", "conv", [8, 8], [4], "full", "before_fc"])
conditional_space = st.fixed_dictionaries({
    "train.optimizer": st.just(["adam", "momentum"]),
    "train.momentum": st.fixed_dictionaries({
        "choices": st.lists(st.one_of(plausible, extreme), min_size=1, max_size=3),
        "when": st.just({"train.optimizer": ["momentum"]})}),
})


@st.composite
def anything(draw: Any) -> tuple[str, list[str], bool]:
    """(study file text, --set items, known to be invalid)."""
    study = json.loads(json.dumps(BASE))
    invalid = False
    kind = draw(st.sampled_from(["plausible", "conditional", "mixed", "bad number",
                                 "unknown key", "broken toml", "bad set"]))
    if kind == "conditional":
        study["space"] = draw(conditional_space)
    tame = kind in ("plausible", "conditional")
    for _ in range(draw(st.integers(0, 3))):
        key = draw(st.sampled_from(SCALARS) if tame else st.one_of(st.sampled_from(SCALARS), text))
        value = draw(plausible if tame else any_value)
        section, _, leaf = key.rpartition(".")
        target = study.setdefault(section, {}) if section in ("model", "train") else study
        if isinstance(target, dict):
            target[leaf if section in ("model", "train") else key] = value
    for _ in range(draw(st.integers(0, 2))):
        entry = st.lists(plausible, min_size=1, max_size=3) if tame else space_entry
        key = draw(st.sampled_from(SCALARS) if tame else st.one_of(st.sampled_from(SCALARS), text))
        study.setdefault("space", {})[key] = draw(entry)
    sets = [f"{draw(st.one_of(st.sampled_from(SCALARS), text))}={draw(text)}"
            for _ in range(0 if tame else draw(st.integers(0, 2)))]
    if kind == "bad number":
        key = draw(st.sampled_from([k for k in NUMERIC if k != "train.lr"]))
        section, _, leaf = key.rpartition(".")
        (study.setdefault(section, {}) if section else study)[leaf or key] = draw(bad_number)
        study.get("space", {}).pop(key, None)
        invalid = True
    elif kind == "unknown key":
        study[f"no_such_key_{draw(text)}"] = draw(scalar)
        invalid = True
    elif kind == "bad set":
        key = draw(st.sampled_from([k for k in NUMERIC if k != "train.lr"]))
        value = draw(st.sampled_from(BAD_SET_VALUES))
        sets.append(f"{key}={value}")
        invalid = True
    try:
        body = toml_text(study)
    except TypeError:
        body = "name = 1\n"
        invalid = True
    if kind == "broken toml":
        body = body + draw(st.sampled_from(["[space\n", "x = \n", "= 1\n", "[[model]]\n"]))
        invalid = True
    return body, sets, invalid


# --- the property ---------------------------------------------------------------------------


def _stop_before_training(study: Any, url: str, **_kw: Any) -> int:
    # What run_trial checks first for each configuration must already hold: hpo validated
    # every cell before the store was touched.
    for cell in study.cells() if study.is_grid else [{}]:
        check_config(study.resolve(cell), study.source)
    raise Validated(VALIDATED)


def check_one(body: str, sets: list[str], invalid: bool) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = folder / "fuzz.toml"
        path.write_text(body, encoding="utf-8")
        db = folder / "hpo.db"
        argv = ["run", "--study", str(path), "--storage", f"sqlite:///{db}", "--no-progress",
                "--no-artifacts", "--data-dir", str(folder / "data"), "--device", "cpu"]
        for item in sets:
            argv += ["--set", item]
        err, out = io.StringIO(), io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            code = cli.main(argv)
        lines = [line for line in err.getvalue().splitlines()
                 if not line.startswith("hpo: warning: ")]
        assert "Traceback" not in err.getvalue(), err.getvalue()
        assert code != 0, (body, sets)  # training never starts here, so 0 is always wrong
        assert len(lines) == 1 and lines[0].startswith("hpo: error: "), err.getvalue()
        assert not lines[0].startswith("hpo: internal error"), err.getvalue()
        validated = lines[0] == f"hpo: error: {VALIDATED}"
        if invalid:
            assert not validated, (body, sets)
        if not validated:
            assert not db.exists(), (body, sets, lines)  # nothing written before validation
        return "validated" if validated else "rejected"


@contextlib.contextmanager
def patched() -> Any:
    pool = runner.pool  # where run() looks both up
    saved = pool.work, pool.ensure_weights
    pool.work = _stop_before_training
    pool.ensure_weights = lambda study: None  # never download pretrained weights here
    try:
        yield
    finally:
        pool.work, pool.ensure_weights = saved


# Inputs that generated runs once failed on, kept as explicit examples so they run every time:
# a --set value that looks like an option (argparse exited with SystemExit(2) past cli.main).
FOUND_CASES = [
    (toml_text(BASE), ["-="], True),
    (toml_text(BASE), ["--="], True),
    (toml_text(BASE), ["-x=1", "--epochs=2"], True),
]


def FOUND(test: Any) -> Any:  # noqa: N802 - used as a decorator beside hypothesis's
    for case in FOUND_CASES:
        test = example(case)(test)
    return test


FAST = settings(max_examples=40, deadline=None, derandomize=True,
                suppress_health_check=list(HealthCheck))


@FAST
@given(anything())
@FOUND
def test_generated_study_files_and_sets(case: tuple[str, list[str], bool]) -> None:
    with patched():
        check_one(*case)


@pytest.mark.slow
def test_many_generated_inputs() -> None:
    count = int(os.environ.get("HPO_FUZZ_EXAMPLES", "1000"))
    outcomes: list[str] = []

    @settings(max_examples=count, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(anything())
    @FOUND
    def run(case: tuple[str, list[str], bool]) -> None:
        outcomes.append(check_one(*case))

    with patched():
        run()
    print(f"fuzz: {len(outcomes)} examples, {outcomes.count('validated')} validated, "
          f"{outcomes.count('rejected')} rejected")
    assert len(outcomes) >= count


def test_the_base_study_validates() -> None:
    # Guards the property above: a valid study reaches the marker (and only then the store).
    with patched():
        assert check_one(toml_text(BASE), [], invalid=False) == "validated"
