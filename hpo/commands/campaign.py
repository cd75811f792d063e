"""`hpo campaign`: run what the committed catalogue still lacks, within a time budget."""

from __future__ import annotations

import argparse
import sys

from hpo.commands import parse_duration

HELP = "run the catalogue's missing runs into the reports' trials files, within a budget"
DESCRIPTION = (
    "Run, in plan order, every (configuration, seed) that the plan's report folders still "
    "lack, writing each finished run into the folder's trials.journal, and render each "
    "finished folder's report from its trials. Stopped anywhere (the budget, Ctrl-C, a kill), "
    "it loses no finished run; the same command continues, here or on another machine."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """This command's arguments (hpo.cli builds the parser from every command's)."""
    p.add_argument("--plan", default="reports/campaign.toml", metavar="FILE",
                   help="the campaign plan (default: reports/campaign.toml)")
    p.add_argument("--budget", metavar="DURATION",
                   help="stop within this time (90m, 2h, 1h30m); default: until done")
    p.add_argument("--only", metavar="LIST",
                   help="comma-separated report folders to run, in plan order: as --status shows "
                   "them (reports/mnist/depth), or relative to the plan (mnist/depth)")
    p.add_argument("--data-dir", help="folder holding the datasets (MNIST/raw, FashionMNIST/raw, "
                   "cifar-10-batches-bin, ...; default: $HPO_DATA_DIR or ./data); entries "
                   "whose dataset is not there are skipped and listed")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"),
                   help="training device (default: auto)")
    p.add_argument("--jobs", type=int, default=0,
                   help="worker processes per entry (default: the usable cores; an entry's "
                   "own jobs wins)")
    p.add_argument("--status", action="store_true",
                   help="run nothing: print what is done, what is left and its CPU-hours")
    p.add_argument("--markdown", action="store_true",
                   help="with --status: the catalogue as Markdown (reports/CATALOGUE.md)")


def main(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    from hpo import campaign
    from hpo.errors import HpoError
    from hpo.runner import usable_cores

    if args.markdown and not args.status:
        raise HpoError("--markdown goes with --status (a campaign run writes "
                       "reports/CATALOGUE.md itself)")
    if args.jobs < 0:
        raise HpoError(f"--jobs must be >= 1 (0: the usable cores), got {args.jobs}")
    deadline = time.time() + parse_duration(args.budget) if args.budget else None
    entries = campaign.load_plan(Path(args.plan))
    if args.only:
        wanted = [n.strip() for n in args.only.split(",") if n.strip()]
        entries = campaign.select(entries, wanted, Path(args.plan).parent)
    if args.status:
        rows = [campaign.progress(e) for e in entries]
    else:
        rows = campaign.run(entries, deadline=deadline, data_dir=args.data_dir,
                            device=args.device, jobs=args.jobs or usable_cores(),
                            say=lambda line: print(line, file=sys.stderr, flush=True))
        if not args.only:  # the whole plan's state: the catalogue beside it
            catalogue = Path(args.plan).parent / "CATALOGUE.md"
            catalogue.write_text(campaign.summary_markdown(rows, Path(args.plan).parent),
                                 encoding="utf-8")
            print(f"campaign: wrote {catalogue}", file=sys.stderr)
    if args.markdown:
        print(campaign.summary_markdown(rows, Path(args.plan).parent), end="")
    else:
        print("\n".join(campaign.summary_lines(rows)))
    return 0
