"""The `hpo` command line: parse, dispatch to one module per command, turn errors into exit codes.

Handlers live in ``hpo.commands.<name>`` and are imported only when their command runs, so
``hpo --help`` never imports torch, pandas or optuna.
"""

from __future__ import annotations

import argparse
import importlib
import shlex
import sys
from collections.abc import Sequence

from hpo import __version__
from hpo.errors import one_line, os_error_line
from hpo.process import quiet_libraries

BENCH_MODES = ("training", "pruning")
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

COMMANDS = {
    "studies": "list the shipped studies: name, question, dataset, size",
    "keys": "list every study-file key with its default and meaning",
    "run": "run a study (resumes where it stopped)",
    "bench": "time hpo's trial path against the seeds' way (DataLoader) on the same trials",
    "list": "list the studies in a store: trials by state, best value, last activity",
    "show": "show one line per trial of a stored study: configuration, seed, state, metrics",
    "export": "write a stored study's trials as CSV or JSON to stdout (or --output FILE)",
    "delete": "delete a study (and its artifacts) from a store; asks first",
    "dashboard": "serve optuna-dashboard for a store on http://127.0.0.1:8080",
    "report": "write tables, figures and README of a stored study to reports/<study>/",
}


def _add_storage(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--storage", metavar="URL",
        help="Optuna storage URL (default: $HPO_STORAGE, else sqlite:///hpo.db)",
    )


def _add_artifacts(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--artifacts", metavar="DIR",
        help="folder of figures shown in the dashboard (default: $HPO_ARTIFACTS, else "
        "<store>-artifacts beside an SQLite/journal file, else ~/.local/share/hpo/artifacts)",
    )


def _add_format(parser: argparse.ArgumentParser, *choices: str) -> None:
    parser.add_argument("--format", choices=choices, default=choices[0],
                        help=f"output format (default: {choices[0]})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hpo",
        description="Reproducible Optuna studies of what hyperparameters do to small CNNs/MLPs.",
    )
    parser.add_argument("--version", action="version", version=f"hpo {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument("--verbose", action="store_true", help="show Optuna's own log lines")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("studies", help=COMMANDS["studies"], description=COMMANDS["studies"])
    _add_format(p, "text", "json")

    p = sub.add_parser("keys", help=COMMANDS["keys"], description=COMMANDS["keys"])
    _add_format(p, "text", "json")

    p = sub.add_parser("run", help=COMMANDS["run"], description=COMMANDS["run"])
    p.add_argument("--study", required=True, metavar="NAME|FILE",
                   help="a shipped study name (see `hpo studies`) or a path to a .toml file")
    _add_storage(p)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                   help="override a study-file key, e.g. --set model.activation=tanh (repeatable)")
    p.add_argument("--name", help="store the study under this name (default: the study's name)")
    p.add_argument("--dataset", help="shortcut for --set dataset=NAME")
    p.add_argument("--data-dir", help="folder with torchvision datasets (default: $HPO_DATA_DIR "
                   "or ./data)")
    p.add_argument("--epochs", type=int, help="shortcut for --set epochs=N")
    p.add_argument("--repeats", type=int, help="shortcut for --set repeats=N (seeds per config)")
    p.add_argument("--until-decided", action="store_true",
                   help="after the repeats, add seeds (REPEATS at a time) to the configurations "
                   "of inconclusive claims until every claim is decided "
                   "(--set until_decided=true)")
    p.add_argument("--max-repeats", type=int, metavar="N",
                   help="with --until-decided: at most N seeds per configuration (default 10)")
    p.add_argument("--n-trials", type=int, help="shortcut for --set n_trials=N (tuning studies)")
    p.add_argument("--pruner", help="shortcut for --set pruner=none|median|percentile|hyperband")
    p.add_argument("--precision", help="shortcut for --set train.precision=fp32|bf16")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"),
                   help="training device (default: auto)")
    p.add_argument("--jobs", type=int, default=1,
                   help="worker processes (default: 1); capped by the runs pending, the usable "
                   "cores and the memory available")
    p.add_argument("--oversubscribe", action="store_true",
                   help="allow more --jobs than usable cores")
    p.add_argument("--threads", type=int, default=0,
                   help="torch threads per worker (default: cores // jobs)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    _add_artifacts(p)
    p.add_argument("--no-artifacts", action="store_true",
                   help="do not store a learning-curve figure per trial")

    p = sub.add_parser("bench", help=COMMANDS["bench"], description=COMMANDS["bench"])
    p.add_argument("mode", nargs="?", default="training", choices=BENCH_MODES,
                   help="training: hpo vs the seeds' way (default); pruning: pruners compared "
                   "on a tuning study")
    p.add_argument("--study", metavar="NAME|FILE",
                   help="study to time (default: dropout_location; pruning: tune)")
    p.add_argument("--dataset", help="dataset (default: the study's)")
    p.add_argument("--data-dir", help="folder with torchvision datasets")
    p.add_argument("--epochs", type=int, help="epochs per trial (training default: 2)")
    p.add_argument("--repeats", type=int, help="seeds per config (training default: 3)")
    p.add_argument("--n-trials", type=int, help="trials per search (pruning)")
    p.add_argument("--sampler-seeds", default="0,1,2",
                   help="comma-separated sampler seeds, one search each (pruning; default 0,1,2)")
    p.add_argument("--precision", help="fp32 or bf16 for hpo's path")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"),
                   help="where both ways train (default: auto, a GPU when one is visible)")
    p.add_argument("--jobs", type=int, default=0,
                   help="training: hpo workers (default: one per core, one on a GPU); "
                   "pruning: searches run side by side (default: 1); capped by the runs, "
                   "the usable cores and the memory available")
    p.add_argument("--oversubscribe", action="store_true",
                   help="allow more --jobs than usable cores")
    p.add_argument("--threads", type=int, default=0,
                   help="torch threads per hpo worker (default: cores // jobs)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides")
    p.add_argument("--out", default="reports/bench", help="folder for the JSON + Markdown result")

    p = sub.add_parser("list", help=COMMANDS["list"], description=COMMANDS["list"])
    _add_storage(p)
    _add_format(p, "text", "json")

    p = sub.add_parser("show", help=COMMANDS["show"], description=COMMANDS["show"])
    p.add_argument("name", metavar="STUDY", help="study name (see `hpo list`)")
    _add_storage(p)
    _add_format(p, "text", "json")

    p = sub.add_parser("export", help=COMMANDS["export"], description=COMMANDS["export"])
    p.add_argument("name", metavar="STUDY", help="study name (see `hpo list`)")
    _add_storage(p)
    p.add_argument("--format", choices=("csv", "json"), default="csv",
                   help="csv: one row per trial; json: the study's settings and every trial "
                   "with its per-epoch history (default: csv)")
    p.add_argument("--output", "-o", metavar="FILE", help="write here instead of stdout")

    p = sub.add_parser("delete", help=COMMANDS["delete"], description=COMMANDS["delete"])
    p.add_argument("name", metavar="STUDY", help="study name (see `hpo list`)")
    _add_storage(p)
    _add_artifacts(p)
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")

    p = sub.add_parser("dashboard", help=COMMANDS["dashboard"],
                       description=COMMANDS["dashboard"] + "; Ctrl-C stops it")
    _add_storage(p)
    _add_artifacts(p)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=8080, help="port (default: 8080)")
    _add_report(sub)
    return parser


def _add_report(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help=COMMANDS["report"], description=COMMANDS["report"])
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--study", metavar="NAME", help="the study's name in the store")
    which.add_argument("--all", action="store_true",
                       help="every study in the store, plus an index (OUT/README.md)")
    which.add_argument("--across-datasets", metavar="LIST",
                       help="comma-separated study names: one table of their claims' verdicts "
                       "per dataset they ran on in the store (OUT/across_datasets/README.md)")
    _add_storage(p)
    p.add_argument("--out", default="reports", metavar="DIR",
                   help="reports root; a study goes to DIR/<study>/ (default: reports)")
    p.add_argument("--format", default="md,csv,tex", metavar="LIST",
                   help="table formats to write, comma-separated from md, csv, tex "
                   "(default: md,csv,tex)")
    p.add_argument("--metric", choices=("val_acc", "val_loss", "test_acc", "test_loss",
                                        "train_acc", "train_loss"),
                   help="rank configurations and test against the best by this metric "
                   "(default: the study's own metric)")
    p.add_argument("--artifacts", metavar="DIR",
                   help="artifact folder the figures are attached to the study in (default: "
                   "beside the store, as for hpo run)")
    p.add_argument("--no-artifacts", action="store_true",
                   help="do not attach the figures to the study for optuna-dashboard")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    # The command line as typed, recorded with studies and results so they can be reproduced.
    args.command_line = "hpo " + " ".join(shlex.quote(a) for a in argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    from hpo.errors import HpoError

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
    except KeyboardInterrupt:
        print("hpo: interrupted; finished trials are kept, re-run the same command to resume",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # a bug: one line unless --debug
        if args.debug:
            raise
        from hpo.store import mask

        print(f"hpo: internal error: {type(exc).__name__}: {one_line(mask(str(exc)))} "
              "(run with --debug for the traceback)", file=sys.stderr)
        return EXIT_ERROR


# What to do about the OSErrors a user can cause, by errno name.
if __name__ == "__main__":
    sys.exit(main())
