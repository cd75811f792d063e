"""Import boundaries, read from the source with ast (nothing is imported to check them).

- the training core (hpo/nn/) never imports optuna: it trains a network, whoever asks;
- nothing imports hpo.cli but hpo/__main__.py: the library never reaches for the CLI;
- no command module (hpo/commands/<name>.py) imports another: shared pieces live in
  hpo/commands/__init__.py or in the library;
- library code (everything outside hpo/cli.py and hpo/commands/) imports no command;
- layers only point down: each unit (a top-level module or subpackage of hpo) imports only
  units before it in LAYERS, or itself, deferred imports inside functions included.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "hpo"


def module_name(path: Path, root: Path = PACKAGE) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, root: Path = PACKAGE) -> set[str]:
    """Every module ``path`` imports, anywhere in it (inside functions too), as dotted names;
    ``from a import b`` counts as ``a``, and as ``a.b`` too where b is a module."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names
                         if _is_module(f"{base}.{alias.name}", root))
    return found


def _is_module(dotted: str, root: Path) -> bool:
    """Whether ``dotted`` names a module (not a function or class) in the scanned package;
    outside it (optuna), every name counts."""
    head, _, rest = dotted.partition(".")
    if head != root.name:
        return True
    path = root.joinpath(*rest.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def violations(rule: str, root: Path = PACKAGE) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        name = module_name(path, root)
        for imported in imports(path, root):
            if broken(rule, name, imported):
                found.append(f"{path.relative_to(root.parent)} imports {imported}")
    return sorted(found)


def _is(imported: str, module: str) -> bool:
    return imported == module or imported.startswith(module + ".")


def _command(name: str) -> bool:
    return name.startswith("hpo.commands.")


# hpo's units, lowest first. A unit may import itself and any unit before it, never one after.
LAYERS = (
    "hpo.version", "hpo.errors", "hpo.process", "hpo.listvalues", "hpo.schema",
    "hpo.nn", "hpo.spec", "hpo.space", "hpo.store",
    "hpo.records", "hpo.objective", "hpo.dashboard", "hpo.artifacts", "hpo.inspection",
    "hpo.runner", "hpo.reporting", "hpo.decide", "hpo.campaign", "hpo.benchmarks", "hpo.api",
    "hpo.commands", "hpo.cli", "hpo.__main__", "hpo",
)


def unit(name: str) -> str | None:
    """The LAYERS unit a dotted module name belongs to (None: not hpo's)."""
    if name == "hpo":
        return "hpo"
    parts = name.split(".")
    head = ".".join(parts[:2])
    return head if head in LAYERS else None


def broken(rule: str, importer: str, imported: str) -> bool:
    if rule == "layers-point-down":
        # ``from hpo import spec`` is read as hpo and hpo.spec: the bare package is no import.
        own, other = unit(importer), unit(imported) if imported != "hpo" else None
        if own is None or other is None or own == other:
            return False
        return LAYERS.index(other) > LAYERS.index(own)
    if rule == "nn-without-optuna":
        return _is(importer, "hpo.nn") and _is(imported, "optuna")
    if rule == "cli-only-from-main":
        return _is(imported, "hpo.cli") and importer not in ("hpo.__main__", "hpo.cli")
    if rule == "commands-import-no-command":
        return (_command(importer) and _command(imported)
                and imported.split(".")[2] != importer.split(".")[2])
    if rule == "library-imports-no-command":
        return (not _is(importer, "hpo.commands") and importer != "hpo.cli"
                and _is(imported, "hpo.commands"))
    raise ValueError(rule)


RULES = ("nn-without-optuna", "cli-only-from-main", "commands-import-no-command",
         "library-imports-no-command", "layers-point-down")


@pytest.mark.parametrize("rule", RULES)
def test_import_boundary(rule: str) -> None:
    assert violations(rule) == []


def test_the_scan_sees_the_package() -> None:
    names = {module_name(p) for p in sources()}
    assert {"hpo.nn.train", "hpo.cli", "hpo.commands.run", "hpo.runner.pool"} <= names
    assert "optuna" in imports(PACKAGE / "objective.py") | imports(PACKAGE / "runner/worker.py")


@pytest.mark.parametrize(("rule", "source", "name"), [
    ("nn-without-optuna", "def f():\n    import optuna.trial\n", "nn/bad.py"),
    ("nn-without-optuna", "from optuna import Trial\n", "nn/bad.py"),
    ("cli-only-from-main", "from hpo.cli import one_line\n", "runner/bad.py"),
    ("cli-only-from-main", "from hpo import cli\n", "bad.py"),
    ("commands-import-no-command", "from hpo.commands.run import main\n", "commands/bad.py"),
    ("commands-import-no-command", "from . import run\n", "commands/bad.py"),
    ("library-imports-no-command", "from hpo.commands import run\n", "bad.py"),
    ("layers-point-down", "def f():\n    from hpo import decide\n", "runner/bad.py"),
    ("layers-point-down", "from hpo.reporting import tables\n", "store/bad.py"),
    ("layers-point-down", "import hpo.api\n", "spec/bad.py"),
])
def test_a_violation_fails(tmp_path: Path, rule: str, source: str, name: str) -> None:
    """Each rule catches a planted violation (in a small package beside the real one)."""
    for module in ("__init__.py", "cli.py", "commands/__init__.py", "commands/run.py",
                   "decide.py", "api.py", "reporting/__init__.py", "reporting/tables.py"):
        (tmp_path / "hpo" / module).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "hpo" / module).write_text("")
    bad = tmp_path / "hpo" / name
    bad.parent.mkdir(parents=True, exist_ok=True)
    bad.write_text(source)
    found = violations(rule, tmp_path / "hpo")
    assert found and all(f.startswith(f"hpo/{name} imports ") for f in found), found


def test_every_unit_is_placed_in_a_layer() -> None:
    """A new top-level module must be given its place in LAYERS (else the rule ignores it)."""
    tops = {".".join(module_name(p).split(".")[:2]) for p in sources()}
    assert tops - set(LAYERS) == set()
