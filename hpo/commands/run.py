"""`hpo run`: run (or resume) a study and print one line per configuration."""

from __future__ import annotations

import argparse
import sys

from hpo import spec, store
from hpo.commands import add_artifacts, add_storage, overrides_from, parse_duration
from hpo.errors import HpoError

HELP = "run a study (resumes where it stopped)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """This command's arguments (hpo.cli builds the parser from every command's)."""
    p.add_argument("--study", required=True, metavar="NAME|FILE",
                   help="a shipped study name (see `hpo studies`) or a path to a .toml file")
    add_storage(p)
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
                   help="torch threads per worker (default: cores // jobs, at most "
                        "$OMP_NUM_THREADS)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.add_argument("--budget", metavar="DURATION",
                   help="stop within this time (90m, 2h, 1h30m): no trial starts that would not "
                   "end in it (by the mean time of the finished ones), one still running then "
                   "is stopped and runs again next time; re-run the same command to go on")
    add_artifacts(p)
    p.add_argument("--no-artifacts", action="store_true",
                   help="do not store a learning-curve figure per trial")

TOP_CONFIGS = 10

def main(args: argparse.Namespace) -> int:
    from hpo.process import stop_signals

    # SIGINT and SIGTERM stop the command from its first line (KeyboardInterrupt: one line,
    # exit 130), also while a study is being queued; once stopped, later ones are ignored,
    # so that a second Ctrl-C cannot raise in the clean-up of a process about to exit.
    with stop_signals(then="ignore_if_stopped"):
        return _run(args)


def _check_counts(args: argparse.Namespace) -> None:
    """--jobs and --threads, before anything is read or stored."""
    from hpo import runner

    if args.jobs < 1:
        raise HpoError(f"--jobs must be >= 1, got {args.jobs}")
    if args.threads < 0:
        raise HpoError(f"--threads must be >= 0, got {args.threads}")
    cores = runner.usable_cores()
    if args.threads > cores and not args.oversubscribe:
        raise HpoError(f"--threads {args.threads} is more than the {cores} usable cores; use at "
                       "most that, or --oversubscribe to insist")


def _run(args: argparse.Namespace) -> int:
    import time

    from hpo import decide, records, runner
    from hpo.artifacts import artifact_store, artifacts_dir

    _check_counts(args)

    budget = parse_duration(args.budget) if args.budget else None
    overrides = overrides_from(args)
    study = spec.load(args.study, overrides)
    opts = runner.RunOptions(
        source=args.study,
        overrides=tuple(overrides),
        deadline=None if budget is None else time.time() + budget,
        storage_url=store.parse(store.resolve_url(args.storage)),
        device=args.device,
        jobs=args.jobs,
        threads=args.threads,
        data_dir=args.data_dir,
        progress=not args.no_progress,
        command=args.command_line,
        oversubscribe=getattr(args, "oversubscribe", False),
        artifacts=args.artifacts,
        save_artifacts=not args.no_artifacts,
    )
    artifacts = artifacts_dir(opts.storage_url, args.artifacts)
    if not args.no_artifacts and (args.artifacts or artifacts.parent.is_dir()):
        artifact_store(artifacts)  # unusable folder: one error now, not one per trial
    study_obj = runner.run(study, decide.with_hook(opts, study))
    left = runner.remaining(study_obj, study)
    if left and opts.deadline is not None:
        print(f"hpo: budget spent: {left} runs left; re-run the same command to go on",
              file=sys.stderr)
    frame = records.trials_frame(study_obj, study)
    keys = records.varied_keys(study)
    metric = study.config["metric"]  # what `hpo report` ranks by: the same winner
    summary = records.config_summary(frame, keys, metric)
    print(f"study {study.name!r} in {store.mask(opts.storage_url)}: "
          f"{(frame['state'] == 'COMPLETE').sum()} complete trials")
    if not study.is_grid and len(summary) > TOP_CONFIGS:
        # A tuning study has one row per sampled configuration: show the best ones.
        summary = records.rank_summary(summary, metric).head(TOP_CONFIGS)
        print(f"best {TOP_CONFIGS} configurations by mean {metric}:")
    print(records.format_summary(summary, keys, metric))
    if study.config["until_decided"]:
        attrs = study_obj.user_attrs
        print(f"until decided: {len(attrs.get(decide.LOOKS_ATTR, []))} batches of seeds added; "
              f"{attrs.get(decide.END_ATTR) or 'not finished'} (`hpo report` says which and why)")
    return 0
