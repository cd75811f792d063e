"""`hpo bench pruning`: does pruning find as good a network for fewer training epochs?

The same tuning search (same study, same sampler seed) runs with each pruner; for each we
record the test accuracy of the trial the search would pick (best validation accuracy) and
the training epochs spent by all its trials, pruned ones included. Several sampler seeds,
because one search is one noisy sample.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hpo import spec

PRUNERS = ("none", "median", "percentile", "hyperband")


@dataclass
class SearchResult:
    pruner: str
    sampler_seed: int
    trials: int
    pruned: int
    epochs: int  # training epochs spent by every trial, pruned ones included
    best_val_acc: float
    test_acc_of_best: float  # the test accuracy of the trial with the best validation accuracy
    wall_time: float
    # (epochs spent so far, test accuracy of the best-by-validation trial so far), trial by trial
    trajectory: list[tuple[int, float]]


def run_search(study_file: str, pruner: str, sampler_seed: int, overrides: list[str],
               data_dir: str | None, threads: int = 0, device: str = "cpu") -> SearchResult:
    from hpo import runner, store

    study = spec.load(study_file, [*overrides, f"pruner={pruner!r}",
                                   f"sampler_seed={sampler_seed}"])
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        url = store.parse(f"sqlite:///{Path(tmp) / 'p.db'}")
        # No learning-curve figures: the store is thrown away (they cost ~0.3 s a trial).
        opts = runner.RunOptions(storage_url=url, device=device, data_dir=data_dir,
                                 progress=False, threads=threads, save_artifacts=False)
        trials = runner.run(study, opts).get_trials()
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    best = max(complete, key=lambda t: t.user_attrs["val_acc"])
    trajectory, spent, leader = [], 0, None
    for t in sorted(trials, key=lambda t: t.number):
        spent += t.user_attrs.get("epochs_run", 0)
        if t.state.name == "COMPLETE" and (
                leader is None or t.user_attrs["val_acc"] > leader.user_attrs["val_acc"]):
            leader = t
        if leader is not None:
            trajectory.append((spent, leader.user_attrs["test_acc"]))
    return SearchResult(
        pruner=pruner, sampler_seed=sampler_seed, trials=len(trials),
        pruned=sum(t.state.name == "PRUNED" for t in trials),
        epochs=sum(t.user_attrs.get("epochs_run", 0) for t in trials),
        best_val_acc=best.user_attrs["val_acc"], test_acc_of_best=best.user_attrs["test_acc"],
        wall_time=time.perf_counter() - started,
        trajectory=trajectory,
    )


def run_bench(study_file: str, sampler_seeds: list[int], overrides: list[str],
              data_dir: str | None, pruners: tuple[str, ...] = PRUNERS,
              threads: int = 0, device: str = "cpu", parallel: int = 1) -> list[SearchResult]:
    """Every (sampler seed, pruner) search; ``parallel`` of them at once in spawned processes.

    Each search stays sequential inside (one trial after another), so a search's trials and
    its pruning decisions are the same whether it runs alone or beside others.
    """
    runs = [(study_file, pruner, seed, overrides, data_dir, threads, device)
            for seed in sampler_seeds for pruner in pruners]
    if parallel <= 1:
        return [run_search(*run) for run in runs]
    import concurrent.futures
    import multiprocessing

    from hpo.process import quiet_libraries

    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(
            max_workers=parallel, mp_context=context, initializer=quiet_libraries,
            initargs=(False,)) as pool:
        return list(pool.map(run_search, *zip(*runs)))


MATCH_TOLERANCE = 0.5  # points of test accuracy


def epochs_to_match(result: SearchResult, target: float) -> int | None:
    """Epochs a search spent until its pick was within MATCH_TOLERANCE of ``target``."""
    for spent, acc in result.trajectory:
        if acc >= target - MATCH_TOLERANCE:
            return spent
    return None


def match_ratios(results: list[SearchResult]) -> dict[int, dict[str, float | None]]:
    """Per sampler seed and pruner: epochs to reach the unpruned search's final pick, as a
    fraction of the unpruned search's total epochs (None: never reached)."""
    out: dict[int, dict[str, float | None]] = {}
    for base in (r for r in results if r.pruner == "none"):
        row = out.setdefault(base.sampler_seed, {})
        for r in results:
            if r.sampler_seed == base.sampler_seed:
                spent = epochs_to_match(r, base.test_acc_of_best)
                row[r.pruner] = None if spent is None else spent / base.epochs
    return out


def summarize(results: list[SearchResult]) -> list[dict[str, Any]]:
    """Per pruner: mean best test accuracy and epochs, relative to no pruning."""
    base_epochs = statistics.mean(r.epochs for r in results if r.pruner == "none")
    base_acc = statistics.mean(r.test_acc_of_best for r in results if r.pruner == "none")
    ratios = match_ratios(results)
    rows = []
    for pruner in dict.fromkeys(r.pruner for r in results):
        mine = [r for r in results if r.pruner == pruner]
        accs = [r.test_acc_of_best for r in mine]
        epochs = statistics.mean(r.epochs for r in mine)
        reached = [ratios.get(r.sampler_seed, {}).get(pruner) for r in mine]
        rows.append({
            "pruner": pruner,
            "searches": len(mine),
            "test_acc_of_best_mean": statistics.mean(accs),
            "test_acc_of_best_std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
            "acc_vs_none": statistics.mean(accs) - base_acc,
            "epochs_mean": epochs,
            "epochs_vs_none": epochs / base_epochs,
            "pruned_mean": statistics.mean(r.pruned for r in mine),
            "wall_time_mean": statistics.mean(r.wall_time for r in mine),
            # Epochs until the search's pick was within 0.5 points of the unpruned search's
            # final pick, relative to the unpruned search's epochs; None if never.
            "match_epochs_vs_none": (None if not reached or None in reached
                                     else statistics.mean(reached)),
        })
    return rows


def to_markdown(results: list[SearchResult], command: str) -> str:
    lines = [
        "# hpo bench pruning",
        "",
        f"Command: `{command}`",
        "",
        "Each search: the same study and sampler seed, once per pruner. 'test acc of best' is "
        "the test accuracy of the trial with the best validation accuracy (what the search "
        "would pick); 'epochs' counts every training epoch run, pruned trials included.",
        "",
        "'epochs to match' is the epochs a search had spent when its pick first came within "
        f"{MATCH_TOLERANCE} points of the unpruned search's final pick (same sampler seed), as a "
        "fraction of the unpruned search's epochs.",
        "",
        "| pruner | searches | test acc of best (%) | vs none (points) | epochs | epochs vs none "
        "| epochs to match | pruned trials | wall time (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in summarize(results):
        match = row["match_epochs_vs_none"]
        lines.append(
            f"| {row['pruner']} | {row['searches']} | {row['test_acc_of_best_mean']:.2f} ± "
            f"{row['test_acc_of_best_std']:.2f} | {row['acc_vs_none']:+.2f} | "
            f"{row['epochs_mean']:.0f} | {row['epochs_vs_none']:.0%} | "
            f"{'never' if match is None else f'{match:.0%}'} | "
            f"{row['pruned_mean']:.1f} | {row['wall_time_mean']:.0f} |"
        )
    ratios = match_ratios(results)
    lines += ["", "Per search:", "", "| pruner | sampler seed | trials | pruned | epochs | "
              "best val acc | its test acc | epochs to match |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        match = ratios.get(r.sampler_seed, {}).get(r.pruner)
        lines.append(f"| {r.pruner} | {r.sampler_seed} | {r.trials} | {r.pruned} | {r.epochs} "
                     f"| {r.best_val_acc:.2f} | {r.test_acc_of_best:.2f} | "
                     f"{'never' if match is None else f'{match:.0%}'} |")
    return "\n".join(lines) + "\n"


def write(results: list[SearchResult], out_dir: Path, command: str,
          stem: str = "pruning") -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / f"{stem}.json", out_dir / f"{stem}.md"
    payload = {"command": command, "summary": summarize(results),
               "searches": [asdict(r) for r in results]}
    json_path.write_text(json.dumps(payload, indent=2) + "\n")
    md_path.write_text(to_markdown(results, command))
    return json_path, md_path
