"""`hpo bench`: measured claims (speed, pruning savings) as committed JSON + Markdown results."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hpo import spec
from hpo.commands import overrides_from
from hpo.errors import HpoError

HELP = "time hpo's trial path against the seeds' way (DataLoader) on the same trials"
MODES = ("training", "pruning")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """This command's arguments (hpo.cli builds the parser from every command's)."""
    p.add_argument("mode", nargs="?", default="training", choices=MODES,
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
    p.add_argument("--margin", type=float, default=1.0, metavar="POINTS",
                   help="training: equivalence margin of the paired accuracy verdict, in test "
                   "accuracy points (default 1): 'equal within noise' only when the 95%% "
                   "interval of the paired difference lies inside +-POINTS")
    p.add_argument("--render", nargs="+", metavar="JSON",
                   help="training: re-write the Markdown of written results from their JSON "
                   "(no training)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides")
    p.add_argument("--out", default="reports/bench", help="folder for the JSON + Markdown result")


def main(args: argparse.Namespace) -> int:
    command = args.command_line
    if args.jobs < 0:
        raise HpoError(f"--jobs must be >= 1 (0: the default), got {args.jobs}")
    if args.threads < 0:
        raise HpoError(f"--threads must be >= 0, got {args.threads}")
    if not args.margin > 0:
        raise HpoError(f"--margin must be > 0 points, got {args.margin:g}")
    if args.render:
        return _render(args.render)
    # An --out that cannot be written fails now (one line naming it), not after the training.
    Path(args.out).mkdir(parents=True, exist_ok=True)
    if args.mode == "pruning":
        return _pruning(args, command)
    return _training(args, command)


def _training(args: argparse.Namespace, command: str) -> int:
    from hpo.benchmarks import training
    from hpo.nn import data
    from hpo.runner import cap_jobs, pick_device, usable_cores

    args.epochs = args.epochs or 2
    args.repeats = args.repeats or 3
    study = spec.load(args.study or "dropout_location", overrides_from(args))
    if not study.is_grid:
        raise HpoError(f"hpo bench training needs a grid study; {study.name!r} uses "
                       f"sampler {study.config['sampler']!r}")
    data.ensure_available(study.config["dataset"], study.data_folder(args.data_dir))
    device = pick_device(args.device)
    # On the CPU one worker per core; on a GPU one worker drives it (more would share it).
    jobs = args.jobs or (usable_cores() if device == "cpu" else 1)
    jobs = cap_jobs(jobs, len(study.cells()) * len(study.seeds()),
                    oversubscribe=getattr(args, "oversubscribe", False), peak_mb=None)
    print(f"bench: {study.name} on {study.config['dataset']} ({device}), "
          f"{len(study.cells())} configs x {study.config['repeats']} seeds x "
          f"{study.config['epochs']} epochs, both ways (this trains the study twice)...",
          file=sys.stderr)
    result = training.run_bench(study, study.data_folder(args.data_dir), jobs, device,
                                margin=args.margin)
    json_path, md_path = training.write(result, Path(args.out), command)
    print(training.to_markdown(result, command), end="")
    print(f"wrote {json_path} and {md_path}", file=sys.stderr)
    return 0


def _render(paths: list[str]) -> int:
    from hpo.benchmarks import training

    for name in paths:
        path = Path(name)
        try:
            md_path = training.render(path)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise HpoError(f"--render {name}: not a written training result ({exc}); give "
                           "a training_*.json that hpo bench wrote") from None
        print(f"wrote {md_path}", file=sys.stderr)
    return 0


def _pruning(args: argparse.Namespace, command: str) -> int:
    from hpo.benchmarks import pruning
    from hpo.nn import data
    from hpo.runner import cap_jobs, pick_device, usable_cores

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
    data.ensure_available(study.config["dataset"], study.data_folder(args.data_dir))
    device = pick_device(args.device)
    parallel = cap_jobs(args.jobs or 1, len(seeds) * len(pruning.PRUNERS),
                        oversubscribe=getattr(args, "oversubscribe", False), peak_mb=None)
    # Searches side by side share the cores rather than each taking them all.
    threads = args.threads or max(1, usable_cores() // parallel)
    print(f"bench pruning: {study.name} ({device}), {study.config['n_trials']} trials x "
          f"{len(pruning.PRUNERS)} pruners x {len(seeds)} sampler seeds, {parallel} search"
          f"{'es' if parallel > 1 else ''} at a time...", file=sys.stderr)
    results = pruning.run_bench(study_file, seeds, overrides, study.data_folder(args.data_dir),
                                threads=threads, device=device, parallel=parallel)
    stem = f"pruning_{study.name}_{study.config['dataset']}"  # one result per study and data
    json_path, md_path = pruning.write(results, Path(args.out), command, stem)
    print(pruning.to_markdown(results, command), end="")
    print(f"wrote {json_path} and {md_path}", file=sys.stderr)
    return 0
