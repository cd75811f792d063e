"""The `hpo` command line: parse, dispatch to one module per command, turn errors into exit codes.

Each command lives in ``hpo.commands.<name>`` with its arguments beside its handler; the
modules import torch, pandas and Optuna only inside their handlers, so ``hpo --help`` never
does.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
INTERRUPTED_LINE = "hpo: interrupted; finished trials are kept, re-run the same command to resume"


def build_parser() -> argparse.ArgumentParser:
    """The parser: hpo's own options, then each command's, declared in its module."""
    from hpo import commands
    from hpo.version import __version__

    parser = argparse.ArgumentParser(
        prog="hpo",
        description="Reproducible Optuna studies of what hyperparameters do to small CNNs/MLPs.",
    )
    parser.add_argument("--version", action="version", version=f"hpo {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument("--verbose", action="store_true", help="show Optuna's own log lines")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in commands.NAMES:
        module = importlib.import_module(f"hpo.commands.{name}")
        p = sub.add_parser(name, help=module.HELP,
                           description=getattr(module, "DESCRIPTION", module.HELP))
        module.add_arguments(p)
    return parser


def _value_options(parser: argparse.ArgumentParser) -> set[str]:
    """Every option string, in hpo and its commands, that takes exactly one value."""
    found: set[str] = set()
    for action in parser._actions:  # argparse keeps no public list of a parser's actions
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found |= _value_options(sub)
        elif action.option_strings and action.nargs is None and action.const is None:
            found.update(s for s in action.option_strings if s.startswith("--"))
    return found


def _glue_dash_values(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """``--set -=`` as ``--set=-=``: argparse takes a value that starts with '-' for an option
    and exits with "expected one argument"; a value is what follows an option that takes one."""
    options, out, i = _value_options(parser), [], 0
    while i < len(argv):
        token = argv[i]
        if token in options and i + 1 < len(argv) and argv[i + 1].startswith("-"):
            out.append(f"{token}={argv[i + 1]}")
            i += 2
            continue
        out.append(token)
        i += 1
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """The command line's exit code. A Ctrl-C from here on, building the parser included, is
    one line and 130; this module imports nothing heavy, so the window in which Python's own
    traceback can show is the interpreter's start-up alone."""
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print(INTERRUPTED_LINE, file=sys.stderr)
        _forget_unhandled_interrupt()
        return EXIT_INTERRUPTED


def _forget_unhandled_interrupt() -> None:
    """CPython (3.11 here) ends a process by SIGINT, whatever its exit code, once a
    KeyboardInterrupt has escaped any eval() of a string, even one caught further up: the
    flag _Py_UnhandledKeyboardInterrupt is set then and never cleared. A Ctrl-C that lands in
    collections.namedtuple's eval, run by many imports, so made `hpo` exit -2 instead of 130
    about once in 30 start-up interrupts. The interrupt is handled here: clear the flag where
    this interpreter exposes it (elsewhere nothing changes)."""
    try:
        import ctypes

        ctypes.c_int.in_dll(ctypes.pythonapi, "_Py_UnhandledKeyboardInterrupt").value = 0
    except (AttributeError, OSError, ValueError, ImportError):
        pass


def _main(argv: Sequence[str] | None) -> int:
    import json
    import shlex

    from hpo.errors import HpoError, one_line, os_error_line
    from hpo.process import quiet_libraries

    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args(_glue_dash_values(parser, argv))
    except SystemExit as exc:  # argparse printed its usage line (2) or --help/--version (0)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    # The command line as typed, recorded with studies and results so they can be reproduced.
    args.command_line = "hpo " + " ".join(shlex.quote(a) for a in argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        quiet_libraries(args.verbose)
        module = importlib.import_module(f"hpo.commands.{args.command}")
        return module.main(args)
    except HpoError as exc:
        if args.debug:
            raise
        print(f"hpo: error: {one_line(str(exc))}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:
        # `hpo report ... | head`: the reader left; that is not an error.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except OSError as exc:  # a path the user gave: missing, a folder, read-only, full disk
        if args.debug:
            raise
        print(f"hpo: error: {one_line(os_error_line(exc))}", file=sys.stderr)
        return EXIT_ERROR
    except json.JSONDecodeError as exc:  # a stored attribute cut or scribbled (a damaged page)
        if args.debug:
            raise
        print(f"hpo: error: the store holds a damaged record ({one_line(str(exc))}): it is "
              "corrupt; restore it from a backup", file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:  # a bug: one line unless --debug
        if args.debug:
            raise
        from hpo.store import mask

        print(f"hpo: internal error: {type(exc).__name__}: {one_line(mask(str(exc)))} "
              "(run with --debug for the traceback)", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
