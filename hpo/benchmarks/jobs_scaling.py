"""Trials per hour of `hpo run --jobs 2` against `--jobs 1` on the same study and machine.

    python -m hpo.benchmarks.jobs_scaling [--dataset mnist|digits] [--data-dir DIR]
                                          [--jobs 1 2] [--out reports/bench]

Each job count runs the study from nothing in its own SQLite store under default threads
(cores // jobs), through the real CLI in a subprocess. Two rates are reported: over the whole
command (start-up, data loading and the summary included) and over the trials alone (first
trial start to last trial end). The load average is recorded before and after, because on a
shared machine other people's work changes the answer.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

# mnist: trials long enough (full MNIST, 2 epochs: several seconds each) that process
# start-up, which every extra worker pays once, does not decide the ratio. digits: the
# embedded data, where one trial is too small for torch's two threads to share well.
STUDY_ARGS = {
    "mnist": ["--study", "dropout_location", "--dataset", "mnist", "--epochs", "2",
              "--repeats", "2", "--no-progress"],
    "digits": ["--study", "dropout_location", "--dataset", "digits", "--epochs", "100",
               "--repeats", "10", "--no-progress"],
}


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "load average: %.2f, %.2f, %.2f" % os.getloadavg()


def measure(jobs: int, study_args: list[str], data_dir: str, folder: Path) -> dict:
    import optuna

    url = f"sqlite:///{folder / f'jobs{jobs}.db'}"
    cmd = [sys.executable, "-m", "hpo", "run", *study_args, "--data-dir", data_dir,
           "--storage", url, "--jobs", str(jobs)]
    load_before = os.getloadavg()
    start = time.monotonic()
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    wall = time.monotonic() - start
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    trials = [t for t in optuna.load_study(study_name="dropout_location", storage=url).trials
              if t.state.name == "COMPLETE"]
    span = (max(t.datetime_complete for t in trials)
            - min(t.datetime_start for t in trials)).total_seconds()
    return {
        "jobs": jobs, "trials": len(trials), "wall_s": round(wall, 1),
        "trial_span_s": round(span, 1),
        "trials_per_hour_wall": round(len(trials) / wall * 3600, 1),
        "trials_per_hour_trials": round(len(trials) / span * 3600, 1),
        "mean_trial_s": round(sum((t.datetime_complete - t.datetime_start).total_seconds()
                                  for t in trials) / len(trials), 2),
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "command": shlex.join(["hpo", *cmd[3:]]),
    }


def markdown(result: dict) -> str:
    lines = [
        "# `hpo run --jobs N`: trials per hour",
        "",
        f"Command: `{result['command']}`  ",
        f"Machine: {result['machine']}  ",
        f"Load at start: `{result['uptime_before']}`  ",
        f"Load at end: `{result['uptime_after']}`",
        "",
        "| jobs | trials | wall s | trials/h (wall) | trial span s | trials/h (trials) | "
        "mean trial s | load 1-min before → after |",
        "|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in result["runs"]:
        lines.append(
            f"| {r['jobs']} | {r['trials']} | {r['wall_s']} | {r['trials_per_hour_wall']} | "
            f"{r['trial_span_s']} | {r['trials_per_hour_trials']} | {r['mean_trial_s']} | "
            f"{r['load_before'][0]} → {r['load_after'][0]} |"
        )
    lines += ["", f"Speed-up of the last row over the first: {result['speedup_wall']}× over the "
              f"whole command, {result['speedup_trials']}× over the trials alone.", ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=sorted(STUDY_ARGS), default="mnist")
    parser.add_argument("--data-dir", default=os.environ.get("HPO_DATA_DIR", "data"))
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--out", default="reports/bench")
    args = parser.parse_args(argv)
    from hpo.runner import usable_cores

    result: dict = {
        "command": "python -m hpo.benchmarks.jobs_scaling " + shlex.join(sys.argv[1:]),
        "machine": f"{platform.node()}, {platform.processor() or platform.machine()}, "
                   f"{usable_cores()} usable cores, Python {platform.python_version()}",
        "uptime_before": _uptime(),
        "study_args": STUDY_ARGS[args.dataset],
        "runs": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        for jobs in args.jobs:
            run = measure(jobs, STUDY_ARGS[args.dataset], args.data_dir, Path(tmp))
            print(json.dumps(run), file=sys.stderr)
            result["runs"].append(run)
    result["uptime_after"] = _uptime()
    first, last = result["runs"][0], result["runs"][-1]
    result["speedup_wall"] = round(last["trials_per_hour_wall"] / first["trials_per_hour_wall"],
                                   2)
    result["speedup_trials"] = round(
        last["trials_per_hour_trials"] / first["trials_per_hour_trials"], 2)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"jobs_scaling_{args.dataset}"
    (out / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / f"{stem}.md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
