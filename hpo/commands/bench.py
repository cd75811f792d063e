"""`hpo bench`: measured claims (speed, pruning savings) as committed JSON + Markdown results."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from hpo import spec
from hpo.commands.run import overrides_from
from hpo.errors import HpoError


def main(args: argparse.Namespace) -> int:
    command = args.command_line
    if args.mode == "pruning":
        return _pruning(args, command)
    return _training(args, command)


def _training(args: argparse.Namespace, command: str) -> int:
    from hpo import data
    from hpo.benchmarks import training

    args.epochs = args.epochs or 2
    args.repeats = args.repeats or 3
    study = spec.load(args.study or "dropout_location", overrides_from(args))
    if not study.is_grid:
        raise HpoError(f"hpo bench training needs a grid study; {study.name!r} uses "
                       f"sampler {study.config['sampler']!r}")
    data.ensure_available(study.config["dataset"], args.data_dir)
    jobs = args.jobs or os.cpu_count() or 1
    print(f"bench: {study.name} on {study.config['dataset']}, {len(study.cells())} configs x "
          f"{study.config['repeats']} seeds x {study.config['epochs']} epochs, both ways "
          "(this trains the study twice)...", file=sys.stderr)
    result = training.run_bench(study, args.data_dir, jobs)
    json_path, md_path = training.write(result, Path(args.out), command)
    print(training.to_markdown(result, command), end="")
    print(f"wrote {json_path} and {md_path}", file=sys.stderr)
    return 0


def _pruning(args: argparse.Namespace, command: str) -> int:
    from hpo import data
    from hpo.benchmarks import pruning

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
    print(f"bench pruning: {study.name}, {study.config['n_trials']} trials x "
          f"{len(pruning.PRUNERS)} pruners x {len(seeds)} sampler seeds...", file=sys.stderr)
    results = pruning.run_bench(study_file, seeds, overrides, args.data_dir,
                                threads=args.threads)
    json_path, md_path = pruning.write(results, Path(args.out), command)
    print(pruning.to_markdown(results, command), end="")
    print(f"wrote {json_path} and {md_path}", file=sys.stderr)
    return 0
