"""Seeds until decided against a fixed number of seeds: time, trials and verdicts.

    python -m hpo.benchmarks.until_decided [--dataset mnist|digits] [--data-dir DIR]
        [--studies learning_rate,weight_decay,dropout_location,dropout_rate,cnn_vs_mlp]
        [--epochs N] [--fixed 10] [--repeats 3] [--jobs 2] [--set KEY=VALUE ...]
        [--out reports/bench]

For every study (default: R4's family, each with its re-encoded claims), two runs from nothing,
each in its own SQLite store, through the real CLI: ``--repeats FIXED`` (every configuration gets
FIXED seeds) and ``--repeats REPEATS --until-decided --max-repeats FIXED`` (seeds added only
where a claim is undecided). Recorded per run: wall time of the command, complete trials, and
each claim's verdict as ``hpo report`` gives it. The adaptive run's tests are at 0.05 / looks
(hpo.decide.planned_looks), the fixed run's at 0.05, so a claim decided near the threshold can
differ: the result says which agree.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

R4_FAMILY = ("learning_rate", "weight_decay", "dropout_location", "dropout_rate", "cnn_vs_mlp")


def measure(study: str, run_args: list[str], folder: Path, tag: str) -> dict[str, Any]:
    import optuna

    from hpo import store
    from hpo.reporting import claims, tables, verdicts

    url = f"sqlite:///{folder / f'{study}_{tag}.db'}"
    cmd = [sys.executable, "-m", "hpo", "run", "--study", study, "--storage", url,
           "--no-progress", "--no-artifacts", *run_args]
    start = time.monotonic()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.monotonic() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr}")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study_obj = store.load_study(store.open_storage(url, create=False), study)
    summary = tables.summarize(study_obj)
    verdicts = verdicts.evaluate_all(summary)
    return {
        "command": " ".join(cmd[2:]), "wall_s": round(wall, 1),
        "trials": int(summary.counts["COMPLETE"]),
        "seeds": {r["config"]: int(r["n"]) for r in summary.table.to_dict("records")},
        "alpha": claims.report_alpha(summary),
        "verdicts": [v.verdict for v in verdicts],
        "claims": [v.claim.text for v in verdicts],
    }


def markdown(result: dict[str, Any]) -> str:
    lines = [f"# Seeds until decided vs {result['fixed']} fixed seeds ({result['dataset']})", "",
             f"`{result['command']}` on {result['machine']}.", "",
             "| study | run | wall time (s) | complete trials | test level α | claims decided | "
             "verdicts |", "|---|---|---|---|---|---|---|"]
    for row in result["studies"]:
        for tag in ("fixed", "until_decided"):
            r = row[tag]
            decided = sum(v != "inconclusive" for v in r["verdicts"])
            lines.append(f"| {row['study']} | {tag.replace('_', ' ')} | {r['wall_s']} | "
                         f"{r['trials']} | {r['alpha']:.3g} | {decided} of {len(r['verdicts'])} "
                         f"| {', '.join(r['verdicts'])} |")
    lines += ["", "Verdicts that differ between the two runs:", ""]
    differ = [(row["study"], text, a, b) for row in result["studies"]
              for text, a, b in zip(row["fixed"]["claims"], row["fixed"]["verdicts"],
                                    row["until_decided"]["verdicts"]) if a != b]
    lines += [f"- {s}: \"{t}\": fixed {a}, until decided {b}" for s, t, a, b in differ] or [
        "- none"]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--data-dir", default=None,
                        help="datasets folder (default: $HPO_DATA_DIR or ./data)")
    parser.add_argument("--studies", default=",".join(R4_FAMILY))
    parser.add_argument("--epochs", type=int, default=None,
                        help="epochs per trial (default: each study file's own)")
    parser.add_argument("--fixed", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    parser.add_argument("--out", default="reports/bench")
    args = parser.parse_args(argv)
    common = ["--dataset", args.dataset, "--data-dir", args.data_dir, "--jobs", str(args.jobs)]
    if args.epochs is not None:
        common += ["--epochs", str(args.epochs)]
    for item in args.overrides:
        common += ["--set", item]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for study in args.studies.split(","):
            fixed = measure(study, [*common, "--repeats", str(args.fixed)], Path(tmp), "fixed")
            adaptive = measure(study, [*common, "--repeats", str(args.repeats),
                                       "--until-decided", "--max-repeats", str(args.fixed)],
                               Path(tmp), "until_decided")
            rows.append({"study": study, "fixed": fixed, "until_decided": adaptive})
            print(f"{study}: fixed {fixed['wall_s']} s / {fixed['trials']} trials, until "
                  f"decided {adaptive['wall_s']} s / {adaptive['trials']} trials", file=sys.stderr)
    result = {"dataset": args.dataset, "fixed": args.fixed, "machine": platform.node() or "?",
              "command": "python -m hpo.benchmarks.until_decided " + " ".join(
                  argv if argv is not None else sys.argv[1:]), "studies": rows}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"until_decided_{args.dataset}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    stem.with_suffix(".md").write_text(markdown(result))
    print(f"wrote {stem}.md", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
