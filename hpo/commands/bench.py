"""`hpo bench`: measured claims (speed, pruning savings) as committed JSON + Markdown results."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hpo import spec
from hpo.commands.run import overrides_from
from hpo.errors import HpoError
from hpo.runner import cap_jobs, pick_device, usable_cores


def main(args: argparse.Namespace) -> int:
    command = args.command_line
    if args.jobs < 0:
        raise HpoError(f"--jobs must be >= 1 (0: the default), got {args.jobs}")
    if args.threads < 0:
        raise HpoError(f"--threads must be >= 0, got {args.threads}")
    # An --out that cannot be written fails now (one line naming it), not after the training.
    Path(args.out).mkdir(parents=True, exist_ok=True)
    if args.mode == "pruning":
        return _pruning(args, command)
    return _training(args, command)


def _training(args: argparse.Namespace, command: str) -> int:
    from hpo.benchmarks import training
    from hpo.nn import data

    args.epochs = args.epochs or 2
    args.repeats = args.repeats or 3
    study = spec.load(args.study or "dropout_location", overrides_from(args))
    if not study.is_grid:
        raise HpoError(f"hpo bench training needs a grid study; {study.name!r} uses "
                       f"sampler {study.config['sampler']!r}")
    data.ensure_available(study.config["dataset"], args.data_dir)
    device = pick_device(args.device)
    # On the CPU one worker per core; on a GPU one worker drives it (more would share it).
    jobs = args.jobs or (usable_cores() if device == "cpu" else 1)
    jobs = cap_jobs(jobs, len(study.cells()) * len(study.seeds()),
                    oversubscribe=getattr(args, "oversubscribe", False), peak_mb=None)
    print(f"bench: {study.name} on {study.config['dataset']} ({device}), "
          f"{len(study.cells())} configs x {study.config['repeats']} seeds x "
          f"{study.config['epochs']} epochs, both ways (this trains the study twice)...",
          file=sys.stderr)
    result = training.run_bench(study, args.data_dir, jobs, device)
    json_path, md_path = training.write(result, Path(args.out), command)
    print(training.to_markdown(result, command), end="")
    print(f"wrote {json_path} and {md_path}", file=sys.stderr)
    return 0


def _pruning(args: argparse.Namespace, command: str) -> int:
    from hpo.benchmarks import pruning
    from hpo.nn import data

    study_file = args.study or "tune"
    overrides = overrides_from(args)
    study = spec.load(study_file, overrides)
    if study.is_grid:
        raise HpoError(f"hpo bench pruning needs a tuning study; {study.name!r} is a grid")
    try:
        seeds = [int(s) for s in args.sampler_seeds.split(",") if s.strip()]
    except ValueError:
        raise HpoError(f"--sampler-seeds must be integers separated by commas, got "
                       f"{args.sampler_seeds!r}") from None
    data.ensure_available(study.config["dataset"], args.data_dir)
    device = pick_device(args.device)
    parallel = cap_jobs(args.jobs or 1, len(seeds) * len(pruning.PRUNERS),
                        oversubscribe=getattr(args, "oversubscribe", False), peak_mb=None)
    # Searches side by side share the cores rather than each taking them all.
    threads = args.threads or max(1, usable_cores() // parallel)
    print(f"bench pruning: {study.name} ({device}), {study.config['n_trials']} trials x "
          f"{len(pruning.PRUNERS)} pruners x {len(seeds)} sampler seeds, {parallel} search"
          f"{'es' if parallel > 1 else ''} at a time...", file=sys.stderr)
    results = pruning.run_bench(study_file, seeds, overrides, args.data_dir,
                                threads=threads, device=device, parallel=parallel)
    stem = f"pruning_{study.name}_{study.config['dataset']}"  # one result per study and data
    json_path, md_path = pruning.write(results, Path(args.out), command, stem)
    print(pruning.to_markdown(results, command), end="")
    print(f"wrote {json_path} and {md_path}", file=sys.stderr)
    return 0
