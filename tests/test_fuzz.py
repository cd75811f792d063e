"""Fuzzing hpo's input (issue 16 item 5, issue 26): study files and --set values, absurd
sizes and hostile names, cut and garbage-tailed stores.

Whatever the input (wrong types, extreme and non-finite numbers, unicode, huge lists, nested
tables, conditional spaces, broken TOML, sizes past any machine, names that are paths),
`hpo run` never prints a traceback, never exits 0 on input known to be invalid, never writes
to the store before validation passes, nor anywhere outside its folder; `hpo show` and
`hpo report` on a damaged store say one line and leave it as it was.

In-process through hpo.cli.main: training is replaced by a marker error raised where the
workers would start (runner.work), after every check hpo makes before training. A few dozen
examples run in the normal suite; HPO_FUZZ_EXAMPLES (default 1,000) under the slow marker.
"""

from __future__ import annotations

import contextlib
import functools
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

from hpo import cli, runner, store
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


def _place(study: dict[str, Any], key: str, value: Any) -> None:
    section, _, leaf = key.rpartition(".")
    (study.setdefault(section, {}) if section else study)[leaf or key] = value


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
        _place(study, key, draw(bad_number))
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


def _stop_before_training(study: Any, url: store.StoreURL, **_kw: Any) -> int:
    # What run_trial checks first for each configuration must already hold: hpo validated
    # every cell before the store was touched, and every model fits this machine's memory.
    from hpo.nn.shapes import training_bytes
    from hpo.runner.plan import MEMORY_SHARE, available_mb

    avail = available_mb()
    for cell in study.cells() if study.is_grid else [{}]:
        config = study.resolve(cell)
        check_config(config, study.source)
        need, key, _params = training_bytes(config)
        assert avail is None or need <= avail * MEMORY_SHARE * 2**20, (key, config.get(key))
    raise Validated(VALIDATED)


def check_one(body: str, sets: list[str], invalid: bool, more: tuple[str, ...] = ()) -> str:
    """`hpo run` in a folder of its own (working in a folder inside it): one line, no
    traceback, nothing stored unless validated, nothing written anywhere else."""
    with tempfile.TemporaryDirectory() as tmp, memory_cap():
        folder = Path(tmp)
        (path := folder / "fuzz.toml").write_text(body, encoding="utf-8")
        (folder / "cwd").mkdir()
        db = folder / "hpo.db"
        argv = ["run", "--study", str(path), "--storage", f"sqlite:///{db}", "--no-progress",
                "--no-artifacts", "--data-dir", str(folder / "data"), "--device", "cpu", *more]
        for item in sets:
            argv += ["--set", item]
        with contextlib.chdir(folder / "cwd"):
            code, said = run_cli(argv)
        # Warnings and the progress of queueing a large grid ("hpo: queueing 2,000 runs ...",
        # "hpo: queued 1,385 of 2,000 runs") are not the one line an error must be.
        lines = [line for line in said.splitlines()
                 if not line.startswith(("hpo: warning: ", "hpo: queueing ", "hpo: queued "))]
        assert "Traceback" not in said, said
        assert code != 0, (body, sets)  # training never starts here, so 0 is always wrong
        assert len(lines) == 1 and lines[0].startswith("hpo: error: "), said
        assert not lines[0].startswith("hpo: internal error"), said
        validated = lines[0] == f"hpo: error: {VALIDATED}"
        if invalid:
            assert not validated, (body, sets, more)
        if not validated:
            assert not db.exists(), (body, sets, lines)  # nothing written before validation
        written = sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))
        assert set(written) <= {"fuzz.toml", "cwd", "hpo.db"}, written
        return "validated" if validated else "rejected"


def run_cli(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()  # `hpo ARGV` here: its exit code and its stderr
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = cli.main(argv)
    return code, err.getvalue()


@contextlib.contextmanager
def memory_cap(extra: int = 3 << 30) -> Any:
    """At most ``extra`` more bytes of address space: should a check regress, an absurd size
    fails with MemoryError (a failed example), not by taking the machine's memory."""
    import resource

    import torch  # noqa: F401 - mapped before the cap: its libraries take gigabytes of it

    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/status") as fh:
        size = next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmSize:"))
    cap = size + extra if hard == resource.RLIM_INFINITY else min(hard, size + extra)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


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
    (toml_text(BASE), ["-="], True), (toml_text(BASE), ["--="], True),
    (toml_text(BASE), ["-x=1", "--epochs=2"], True),
]


def examples(cases: list[Any], still_open: list[tuple[Any, str]] = ()) -> Any:
    """A decorator: each case an explicit example, run every time; each ``still_open`` case
    (with why) must fail, until it is fixed and moves to ``cases``."""
    def add(test: Any) -> Any:
        for case in cases:
            test = example(case)(test)
        for case, reason in still_open:
            test = example(case).xfail(reason=reason, raises=AssertionError)(test)
        return test

    return add


FOUND = examples(FOUND_CASES)
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


# --- absurd sizes and hostile names (issue 26: items 2, 4, 10, 11, 13) ----------------------
# A mutated study file, --set or --name: refused with one line before anything is stored, or
# validated only if every configuration fits in memory; each under memory_cap.

HUGE = st.one_of(st.integers(10**5, 10**40),
                 st.sampled_from([2**31, 2**32, 2**53, 2**63 - 1, 2**63, 2**64, 10**100]))
SIZED = {  # key -> its value from one huge number
    "model.channels": lambda n: [n, 4], "model.fc_units": lambda n: [n],
    **{k: int for k in ("model.fc_width", "model.conv_layers", "model.width", "model.fc_layers",
                        "model.kernel_size", "model.pool_size", "epochs", "repeats",
                        "batch_size", "train_subset", "seed", "max_repeats")},
}
hostile_name = st.one_of(
    st.sampled_from(["..", ".", "../x", "../../x", "a/b", "/abs", "a\\b", "x\x00y", "\n", "\t",
                     "\x1b[2J", "..\\..", "./", "x\x7f"]),
    st.tuples(text, st.sampled_from(["/", "\\", "\x00", "\n", "\r", "\x1b", "\x07"]), text)
    .map("".join))


@st.composite
def mutated(draw: Any) -> tuple[str, list[str], bool, tuple[str, ...]]:
    """(study file text, --set items, must be refused, more arguments)."""
    study = json.loads(json.dumps(BASE))
    _place(study, "model.family", draw(st.sampled_from(["cnn", "mlp"])))
    _place(study, "model.fc_layers", draw(st.integers(0, 2)))
    sets: list[str] = []
    refused, more = False, ()
    for _ in range(draw(st.integers(1, 3))):
        key, number = draw(st.sampled_from(sorted(SIZED))), draw(HUGE)
        value = SIZED[key](number)
        where = draw(st.sampled_from(["file", "space", "set"]))
        if where == "space" and key in ("repeats", "seed", "max_repeats"):
            where = "file"  # not a dimension of the space
        if where == "set":
            sets.append(f"{key}={toml_value(value)}")
        elif where == "space":
            study["space"][key] = [SIZED[key](2), value]
        else:
            _place(study, key, value)
        # More than hpo queues (100,000 runs), a seed past torch's, more fc layers than hpo
        # builds (10,000): refused, wherever given.
        refused |= ((key == "repeats" or (key == "seed" and number > 4294867295))
                    and where != "space") or (key == "model.fc_layers" and number > 10_000)
    name = draw(st.one_of(st.none(), hostile_name))
    if name is not None and draw(st.booleans()):
        more = ("--name", name)
    elif name is not None:
        study["name"] = name
    return toml_text(study), sets, refused or name is not None, more


def _sized(over: dict[str, Any], sets: list[str] = (), more: tuple[str, ...] = (),
           refused: bool = True) -> tuple[str, list[str], bool, tuple[str, ...]]:
    study = json.loads(json.dumps(BASE))
    for key, value in over.items():
        _place(study, key, value)
    return toml_text(study), list(sets), refused, more


MUTATED_FOUND = [  # the sweep's reproductions (issue 26), then what this test found
    _sized({}, more=("--name", "..")), _sized({}, more=("--name", "../x")),
    _sized({"name": "../../x"}), _sized({"name": "a/b"}), _sized({"name": "x\ny"}),
    _sized({"model.family": "cnn", "model.channels": [1000000, 4]}),
    _sized({"model.fc_layers": 1, "model.fc_width": 1000000000}),
    _sized({"model.family": "cnn", "model.conv_layers": 1100, "model.channels": [],
            "model.pool": "none"}),
    _sized({}, sets=["seed=1180591620717411303424"]), _sized({"repeats": 100000}),
    _sized({}, sets=["repeats=100000"]), _sized({"epochs": 10**12}, refused=False),
    _sized({}, sets=["model.fc_layers=2479066337"]),  # a list of 2.5e9 layer sizes: 20 GB
    _sized({"model.fc_layers": 1, "space": {"train.lr": [0.1], "model.fc_layers": [2, 2**31]}}),
]


BOUNDED = settings(max_examples=25, deadline=None,  # new examples every run, no derandomize
                   suppress_health_check=list(HealthCheck))


@pytest.mark.slow  # new examples every run; the fast core keeps the derandomized one
@BOUNDED
@given(mutated())
@examples(MUTATED_FOUND)
def test_absurd_sizes_and_hostile_names_are_refused_before_anything_is_stored(
        case: tuple[str, list[str], bool, tuple[str, ...]]) -> None:
    with patched():
        check_one(*case)


# --- cut and garbage-tailed stores (issue 26: items 3 and 8) --------------------------------
# `hpo show` and `hpo report` on a store cut, garbage after the cut or bytes scribbled over:
# exit 0 (a cut journal record: a warning) or one error line, the file left as it was.

@functools.cache
def store_bytes(kind: str) -> bytes:
    """A small store of study 'mini' (4 finished trials, no training), built once."""
    from hpo import spec, store
    from hpo.benchmarks import synthetic

    study = spec.validate({"name": "mini", "dataset": "digits", "epochs": 1, "repeats": 2,
                           "sampler": "grid", "space": {"train.lr": [0.01, 0.1]}}, "test")
    with tempfile.TemporaryDirectory() as tmp:
        path, url = store_at(Path(tmp), kind)
        study_obj = synthetic.create_study(store.open_storage(store.parse(url), create=True),
                                           study)
        synthetic.add(study_obj, [
            synthetic.trial(study, {"train.lr": lr}, synthetic.record(s, test_acc=50.0 + s))
            for lr in (0.01, 0.1) for s in (0, 1)])
        return path.read_bytes()


def store_at(folder: Path, kind: str) -> tuple[Path, str]:
    """The store's file and its URL, as `--storage` takes it."""
    path = folder / ("runs.log" if kind == "journal" else "s.db")
    return path, f"journal:{path}" if kind == "journal" else f"sqlite:///{path}"


TAIL = st.one_of(st.just(b""), st.binary(max_size=300),
                 st.sampled_from([b"{", b'{"op_code": 1', b"\n\n", b"\xff" * 64]))
COMMAND = st.sampled_from(["show", "show", "report"])  # a report costs ~1 s
SCRIBBLE = st.tuples(st.floats(0, 1), st.binary(min_size=1, max_size=600))
damage = st.one_of(  # (kind, cut: a share or bytes kept/dropped, tail, scribble, command)
    st.tuples(st.just("journal"), st.one_of(st.none(), st.floats(0, 1), st.integers(-200, -1)),
              TAIL, st.one_of(st.none(), SCRIBBLE), COMMAND),
    # SQLite cut anywhere (at a page boundary: a crash between page writes; inside one; to
    # nothing), scribbled, garbage after it.
    st.tuples(st.just("sqlite"), st.one_of(st.none(), st.floats(0, 1), st.integers(-5000, -1),
                                           st.integers(0, 24).map(lambda n: n * 4096)),
              TAIL, st.one_of(st.none(), SCRIBBLE), COMMAND))


def _damaged(original: bytes, cut: Any, tail: bytes, scribble: Any) -> bytes:
    data = bytearray(original)
    if scribble is not None:
        at = int(scribble[0] * len(data))
        data[at:at + len(scribble[1])] = scribble[1]
    if cut is not None:
        data = data[:int(cut * len(data)) if isinstance(cut, float) else cut]
    return bytes(data) + tail


def check_store(kind: str, cut: Any, tail: bytes, scribble: Any, command: str) -> None:
    data = _damaged(store_bytes(kind), cut, tail, scribble)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "store").mkdir()
        path, url = store_at(Path(tmp) / "store", kind)
        path.write_bytes(data)
        out = ["--out", str(Path(tmp) / "out"), "--no-artifacts"]
        code, said = run_cli([*(["show", "mini"] if command == "show" else
                                ["report", "--study", "mini", *out]), "--storage", url])
        lines = [x for x in said.splitlines() if not x.startswith(("hpo: warning: ", "wrote "))]
        assert "Traceback" not in said and "internal error" not in said, said
        assert code in (0, 1) and len(lines) == (code == 1), (code, said)
        assert code == 0 or lines[0].startswith("hpo: error: "), said
        assert path.read_bytes() == data  # untouched, however damaged
        assert [p.name for p in path.parent.iterdir()] == [path.name]


STORE_FOUND = [  # the sweep's reproductions (issue 26: `truncate -s -40`, garbage, item 8's)
    ("journal", -40, b"", None, "show"), ("journal", -40, b"", None, "report"),
    ("journal", None, b"\xff" * 64, None, "show"), ("sqlite", 0.5, b"", None, "show"),
    ("sqlite", None, b"\xff" * 64, None, "report"),
]
# Found by this test and fixed in check_sqlite (its file sizes against its header): SQLite
# reads a cut page's missing bytes as zeros (quick_check passes), so a study attribute's JSON
# was cut ("internal error: JSONDecodeError"; with garbage after the cut,
# "StorageInternalError"), and `hpo show` wrote Optuna's tables into an empty file.
STORE_FOUND += [
    ("sqlite", 0, b"", None, "show"), ("sqlite", -1, b"", None, "show"),
    ("sqlite", -100, b"", None, "report"), ("sqlite", -28, b"\xff" * 64, None, "show"),
]
# Found 2026-12-07 (1 run in 5): a zero byte written 22% into an SQLite store lands in a stored
# attribute's JSON, which the file's size and header cannot show; the CLI now calls a record that
# does not decode a corrupt store, in one line.
STORE_FOUND += [("sqlite", None, b"", (0.21875, b"\x00"), "show")]


@pytest.mark.slow  # new examples every run; the fast core keeps the derandomized one
@BOUNDED
@given(damage)
@examples(STORE_FOUND)
def test_cut_and_garbage_tailed_stores_give_one_line_and_stay_untouched(
        case: tuple[str, Any, bytes, Any, str]) -> None:
    check_store(*case)
