"""Seeds until decided against a fixed number of seeds: time, trials and verdicts.

    python -m hpo.benchmarks.until_decided [--dataset mnist|digits] [--data-dir DIR]
        [--studies learning_rate,weight_decay,dropout_location,dropout_rate,cnn_vs_mlp]
        [--epochs N] [--fixed 10] [--repeats 3] [--jobs 2] [--set KEY=VALUE ...]
        [--out reports/bench]
    python -m hpo.benchmarks.until_decided --from-trials reports/bench/until_decided/digits

For every study (default: R4's family, each with its re-encoded claims), two runs from nothing,
each in its own SQLite store, through the real CLI: ``--repeats FIXED`` (every configuration gets
FIXED seeds) and ``--repeats REPEATS --until-decided --max-repeats FIXED`` (seeds added only
where a claim is undecided). Recorded per run: wall time of the command, complete trials, and
each claim's verdict as ``hpo report`` gives it. The adaptive run's tests are at each look's
group-sequential level (hpo.spec.look_alpha, below 0.05), the fixed run's at 0.05, so a claim
decided near the threshold can differ: the result says which agree.

``--from-trials DIR`` runs nothing: it reads the trials that `hpo campaign` committed for the
benchmark (reports/campaign.toml's entries under bench/until_decided/<dataset>: DIR/fixed/<study>
and DIR/decided/<study>, each a report folder with its trials.journal) and writes DIR/README.md
and DIR/result.json: per study and run the complete runs, their CPU-hours, the test level and
the verdicts, the totals, and whether seeds until decided reach every decision of the fixed run
in at most half its runs. A folder whose report is not written yet is named, never filled in.
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
    study_obj = store.load_study(store.open_storage(store.parse(url), create=False), study)
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


# ---------------------------------------------------------------------------------------------
# --from-trials: the benchmark as the campaign ran it (reports/campaign.toml)

MODES = (("fixed", "fixed"), ("decided", "until decided"))  # (folder, what the README calls it)
DECISIONS = ("supported", "not supported")  # a verdict that decides its claim


def folder_result(folder: Path) -> dict[str, Any]:
    """One run's report folder as the campaign left it: missing (no trials), in progress (trials,
    no report yet) or complete; its complete runs and their CPU-hours, and once complete its
    seeds per configuration, test level and verdicts."""
    from hpo.reporting import committed, tables, verdicts, write
    from hpo.schema import END_ATTR, TRIALS_FILE

    if not (folder / TRIALS_FILE).is_file():
        return {"state": "missing"}
    study_obj = committed.load_folder_study(folder)
    done = [t for t in study_obj.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    cpu = [t.user_attrs.get("cpu_time") for t in done]
    seconds = [c if c is not None else t.user_attrs.get("wall_time") or 0.0
               for c, t in zip(cpu, done)]
    out: dict[str, Any] = {
        "state": "complete" if (folder / "README.md").is_file() else "in progress",
        "runs": len(done), "cpu_h": round(sum(seconds) / 3600, 6),
        "wall_time_for_cpu": sum(c is None for c in cpu)}
    if out["state"] != "complete":
        return out
    summary = tables.summarize(study_obj)
    judged = verdicts.evaluate_all(summary)
    seeds = [int(n) for n in summary.table["n"]]
    levels = [verdicts.claim_level(v.claim, summary)[0] for v in judged]
    out.update(seeds=[min(seeds), max(seeds)], alpha=[min(levels), max(levels)],
               claims=[v.claim.text for v in judged], verdicts=[v.verdict for v in judged],
               end=study_obj.user_attrs.get(END_ATTR),
               since=write.since_the_last_look(summary, judged).strip())
    return out


def from_trials(root: Path, studies: Sequence[str]) -> dict[str, Any]:
    """The benchmark's result from the committed trials under ``root`` (see the module doc)."""
    from hpo.reporting import committed

    rows = [{"study": s, **{m: folder_result(root / m / s) for m, _ in MODES}} for s in studies]
    pairs = [r for r in rows if all(r[m]["state"] == "complete" for m, _ in MODES)]
    totals: dict[str, Any] = {"studies": [r["study"] for r in pairs]}
    for mode, _ in MODES:
        totals[mode] = {
            "runs": sum(r[mode]["runs"] for r in pairs),
            "cpu_h": round(sum(r[mode]["cpu_h"] for r in pairs), 6),
            "claims": sum(len(r[mode]["verdicts"]) for r in pairs),
            "decided": sum(v in DECISIONS for r in pairs for v in r[mode]["verdicts"])}
    differ = [{"study": r["study"], "claim": text, "fixed": a, "decided": b} for r in pairs
              for text, a, b in zip(r["fixed"]["claims"], r["fixed"]["verdicts"],
                                    r["decided"]["verdicts"]) if a != b]
    lost = [d for d in differ if d["fixed"] in DECISIONS]
    half = 2 * totals["decided"]["runs"] <= totals["fixed"]["runs"]
    incomplete = [f"{m}/{r['study']}" for r in rows for m, _ in MODES
                  if r[m]["state"] != "complete"]
    command = f"python -m hpo.benchmarks.until_decided --from-trials {committed.display(root)}"
    if tuple(studies) != R4_FAMILY:
        command += f" --studies {','.join(studies)}"
    return {"dataset": root.name, "command": command, "studies": rows, "totals": totals,
            "differ": differ, "not_complete": incomplete,
            "target": {"met": None if incomplete or not pairs else (half and not lost),
                       "at_most_half_the_runs": half, "fixed_decisions_lost": len(lost)}}


def _cells(result: dict[str, Any]) -> str:
    """One README table row's cells after the study and run."""
    r = result
    if r["state"] == "missing":
        return "– | – | – | – | – | missing: no trials yet"
    cpu = f"{r['cpu_h']:.3f}" + ("*" if r["wall_time_for_cpu"] else "")
    if r["state"] != "complete":
        return f"{r['runs']} so far | – | {cpu} so far | – | – | in progress: no report yet"
    low, high = r["seeds"]
    seeds = f"{low}" if low == high else f"{low}–{high}"
    decided = sum(v in DECISIONS for v in r["verdicts"])
    low_a, high_a = r["alpha"] if isinstance(r["alpha"], list) else (r["alpha"], r["alpha"])
    alpha = f"{low_a:.3g}" if f"{low_a:.3g}" == f"{high_a:.3g}" else f"{low_a:.3g}–{high_a:.3g}"
    return (f"{r['runs']} | {seeds} | {cpu} | {alpha} | {decided} of "
            f"{len(r['verdicts'])} | {', '.join(r['verdicts'])}")


def trials_markdown(result: dict[str, Any]) -> str:
    """DIR/README.md of ``--from-trials``."""
    lines = [f"# Seeds until decided vs fixed seeds ({result['dataset']}), from the campaign's "
             "trials", "",
             "Each study run twice by `hpo campaign` ([campaign.toml](../../../campaign.toml)): "
             "`fixed/`, the same seeds for every configuration; `decided/`, a few seeds, then "
             "more only where a claim is still inconclusive (`until_decided = true`, tests at "
             "the level each look spends). Decided: a claim supported or not supported. "
             "CPU-hours: the complete runs' own CPU time (* where some runs stored only their "
             f"wall time). Written by `{result['command']}`.", "",
             "| study | run | complete runs | seeds per configuration | CPU-hours | test level α "
             "| claims decided | verdicts |", "|---|---|---|---|---|---|---|---|"]
    for row in result["studies"]:
        lines += [f"| {row['study']} | {label} | {_cells(row[mode])} |"
                  for mode, label in MODES]
    ends = [(row["study"], row["decided"]["end"], row["decided"].get("since"))
            for row in result["studies"] if row["decided"].get("end")]
    if ends:
        lines += ["", "Why until decided stopped:", ""]
        lines += [f"- {study}: {end}" + (f". {since}" if since else "")
                  for study, end, since in ends]
    return "\n".join(lines + [""] + verdict_lines(result)) + "\n"


def verdict_lines(result: dict[str, Any]) -> list[str]:
    """Totals, the issue's target as one line, and the decisions that differ."""
    tot, target = result["totals"], result["target"]
    fixed, decided = tot["fixed"], tot["decided"]
    n = len(tot["studies"])
    lines = [f"Totals over the {n} {'study' if n == 1 else 'studies'} complete both ways: fixed "
             f"{fixed['runs']} runs, {fixed['cpu_h']:.2f} CPU-hours, {fixed['decided']} of "
             f"{fixed['claims']} claims decided; until decided {decided['runs']} runs"
             + (f" ({100 * decided['runs'] / fixed['runs']:.0f}% of fixed)" if fixed["runs"]
                else "") + f", {decided['cpu_h']:.2f} CPU-hours, {decided['decided']} of "
             f"{decided['claims']} claims decided.", ""]
    met = target["met"]
    answer = ("not known yet (not complete: " + ", ".join(result["not_complete"]) + ")"
              if met is None else "yes" if met else "no")
    lines.append("until decided reaches every decision the fixed run reaches in at most half "
                 f"its runs: {answer}")
    if met is False:
        half = "at most half" if target["at_most_half_the_runs"] else "more than half"
        lines += ["", f"- runs: {decided['runs']} until decided against {fixed['runs']} fixed, "
                  f"{half}",
                  "- decisions of the fixed run that until decided does not reach: "
                  f"{target['fixed_decisions_lost']}"]
    lines += ["", "Verdicts that differ between the two runs:", ""]
    lines += [f"- {d['study']}: \"{d['claim']}\": fixed {d['fixed']}, until decided "
              f"{d['decided']}" for d in result["differ"]] or ["- none"]
    if result["not_complete"]:
        lines += ["", "Not complete yet (the campaign continues them; nothing above stands in "
                  "for them): " + ", ".join(result["not_complete"]) + "."]
    return lines


def write_from_trials(root: Path, studies: Sequence[str]) -> dict[str, Any]:
    """Write ROOT/README.md and ROOT/result.json from the trials; returns the result."""
    if not root.is_dir():
        raise SystemExit(f"--from-trials: {root} is not a folder (the campaign writes "
                         "reports/bench/until_decided/<dataset>)")
    result = from_trials(root, studies)
    (root / "result.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    (root / "README.md").write_text(trials_markdown(result), encoding="utf-8")
    return result


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
    parser.add_argument("--from-trials", default=None, metavar="DIR",
                        help="run nothing: render DIR/README.md and DIR/result.json from the "
                             "campaign's trials in DIR/fixed/<study> and DIR/decided/<study>")
    args = parser.parse_args(argv)
    if args.from_trials is not None:
        root = Path(args.from_trials)
        write_from_trials(root, args.studies.split(","))
        print(f"wrote {root / 'README.md'}", file=sys.stderr)
        return 0
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
