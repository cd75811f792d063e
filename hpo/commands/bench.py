"""`hpo bench`: hpo's trial path against the seeds' way, same trials, one run."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from hpo import spec
from hpo.commands.run import overrides_from


def main(args: argparse.Namespace) -> int:
    from hpo import data
    from hpo.benchmarks import training

    overrides = overrides_from(args)
    study = spec.load(args.study, overrides)
    if not study.is_grid:
        from hpo.errors import HpoError

        raise HpoError(f"hpo bench needs a grid study; {study.name!r} uses "
                       f"sampler {study.config['sampler']!r}")
    data.ensure_available(study.config["dataset"], args.data_dir)
    jobs = args.jobs or os.cpu_count() or 1
    print(f"bench: {study.name} on {study.config['dataset']}, {len(study.cells())} configs x "
          f"{study.config['repeats']} seeds x {study.config['epochs']} epochs, both ways "
          "(this trains the study twice)...", file=sys.stderr)
    result = training.run_bench(study, args.data_dir, jobs)
    command = "hpo " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    json_path, md_path = training.write(result, Path(args.out), command)
    print(training.to_markdown(result, command), end="")
    print(f"wrote {json_path} and {md_path}", file=sys.stderr)
    return 0
