"""How long `hpo report` takes on a 2,000-trial study (target: under 10 s).

Fills a throwaway SQLite store with synthetic trials (realistic user attributes, 10-epoch
histories, a few pruned and failed trials), then times ``python -m hpo report`` on it end to
end (a fresh process: imports, store load, tables, every figure, README/CSV/LaTeX). Two
studies: a tuning study (random configurations × 3 seeds: fANOVA, PED-ANOVA, optimisation
history) and a two-parameter grid (heat maps, pivot tables).

    python -m hpo.benchmarks.report_scale [--trials 2000] [--out reports/bench]

Writes OUT/report_scale.json and OUT/report_scale.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpo.benchmarks import synthetic

if TYPE_CHECKING:
    import sqlite3

    import optuna
    from sqlalchemy.pool import ConnectionPoolEntry

    from hpo.spec import Study

TUNING = {
    "name": "bench_tuning", "dataset": "digits", "epochs": 10, "repeats": 3,
    "sampler": "tpe", "n_trials": 2000, "pruner": "median",
    "model": {"channels": [16, 4], "padding": 1},
    "space": {
        "train.lr": {"type": "float", "low": 1e-5, "high": 0.1, "log": True},
        "model.dropout": {"type": "float", "low": 0.0, "high": 0.5},
        "train.optimizer": ["sgd", "momentum", "adam", "rmsprop"],
    },
}
GRID = {
    "name": "bench_grid", "dataset": "digits", "epochs": 10, "repeats": 50,
    "sampler": "grid", "model": {"channels": [16, 4], "padding": 1},
    "space": {
        "train.optimizer": ["sgd", "momentum", "nesterov", "adam", "adamax", "adadelta",
                            "adagrad", "rmsprop"],
        "train.lr": [1e-4, 1e-3, 1e-2, 1e-1, 1.0],
    },
}


def _fake_acc(rng: random.Random, lr: float, dropout: float, optimizer: str) -> float:
    """A smooth made-up response surface plus seed noise (accuracy, %)."""
    import math

    best = {"sgd": 1e-1, "momentum": 1e-2, "nesterov": 1e-2}.get(optimizer, 1e-3)
    acc = 95 - 8 * (math.log10(lr) - math.log10(best)) ** 2 - 10 * dropout ** 2
    return max(9.8, min(99.5, acc + rng.gauss(0, 1.0)))


def _record(rng: random.Random, seed: int, params: dict[str, Any]) -> dict[str, Any]:
    acc = _fake_acc(rng, params.get("train.lr", 1e-3), params.get("model.dropout", 0.0),
                    params.get("train.optimizer", "adam"))
    diverged = params.get("train.lr", 0) >= 0.5 and rng.random() < 0.5
    loss = None if diverged else max(0.01, (100 - acc) / 30)
    return synthetic.record(
        seed, test_acc=acc, val_acc=acc + rng.gauss(0, 0.5), train_acc=min(100, acc + 2),
        train_loss=loss, val_loss=loss, test_loss=loss, wall_time=rng.uniform(4, 6),
        diverged=diverged, epochs_run=3 if diverged else 10,
    )


def fill_tuning(storage: str | optuna.storages.BaseStorage, study: Study, n_trials: int,
                rng: random.Random) -> None:
    study_obj = synthetic.create_study(storage, study, command="synthetic (benchmark)")
    trials = []
    while len(trials) < n_trials:
        params = {"train.lr": 10 ** rng.uniform(-5, -1), "model.dropout": rng.uniform(0, 0.5),
                  "train.optimizer": rng.choice(["sgd", "momentum", "adam", "rmsprop"])}
        for seed in study.seeds():
            attrs = _record(rng, seed, params)
            state = "PRUNED" if rng.random() < 0.05 else "FAIL" if rng.random() < 0.01 \
                else "COMPLETE"
            trials.append(synthetic.trial(study, params, attrs, state))
    synthetic.add(study_obj, trials[:n_trials])


def fill_grid(storage: str | optuna.storages.BaseStorage, study: Study, n_trials: int,
              rng: random.Random) -> None:
    study_obj = synthetic.create_study(storage, study, command="synthetic (benchmark)")
    trials = []
    for seed in study.seeds():
        for cell in study.cells():
            trials.append(synthetic.trial(study, cell, _record(rng, seed, cell)))
    synthetic.add(study_obj, trials[:n_trials])


def _fast_sqlite(url: str) -> optuna.storages.RDBStorage:
    """A storage for filling only: no fsync per trial (the store is thrown away)."""
    import optuna
    from sqlalchemy import event

    storage = optuna.storages.RDBStorage(url)

    @event.listens_for(storage.engine, "connect")
    def _no_sync(dbapi_connection: sqlite3.Connection, _record: ConnectionPoolEntry) -> None:
        dbapi_connection.execute("PRAGMA synchronous=OFF")
        dbapi_connection.execute("PRAGMA journal_mode=MEMORY")

    storage.engine.dispose()
    return storage


def time_report(url: str, name: str, out: Path) -> tuple[float, float]:
    """Wall and CPU (user + system) time of a fresh `python -m hpo report` process:
    interpreter, imports and all. CPU time does not grow when others load the machine."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "hpo", "report", "--study", name, "--storage", url,
         "--out", str(out)], capture_output=True, text=True, env=env,
    )
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"hpo report --study {name} failed: {done.stderr.strip()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def run(n_trials: int, out: Path, repeats: int = 3) -> dict[str, Any]:
    import optuna

    from hpo import spec

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    results: dict[str, Any] = {
        "trials": n_trials, "target_s": 10.0, "repeats": repeats, "machine": {
            "python": platform.python_version(), "cpus": os.cpu_count(),
            "optuna": optuna.__version__, "platform": platform.platform(),
            "load_avg_1min_at_start": os.getloadavg()[0],
        }, "studies": {},
    }
    with tempfile.TemporaryDirectory(prefix="hpo-bench-") as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        storage = _fast_sqlite(url)
        for raw, fill in ((TUNING, fill_tuning), (GRID, fill_grid)):
            study = spec.validate(json.loads(json.dumps(raw)), f"benchmark {raw['name']}")
            started = time.perf_counter()
            fill(storage, study, n_trials, random.Random(0))
            fill_s = time.perf_counter() - started
            runs = [time_report(url, study.name, Path(tmp) / "reports")
                    for _ in range(repeats)]
            times = [wall for wall, _ in runs]
            results["studies"][study.name] = {
                "sampler": study.config["sampler"], "fill_s": round(fill_s, 2),
                "report_s": [round(t, 2) for t in times],
                "report_cpu_s": [round(cpu, 2) for _, cpu in runs],
                "report_best_s": round(min(times), 2),
                "under_target": max(times) < 10.0,
                "load_avg_1min_after": round(os.getloadavg()[0], 2),
            }
    return results


def markdown(results: dict[str, Any]) -> str:
    lines = [
        "# `hpo report` at scale",
        "",
        f"A synthetic SQLite store with {results['trials']} trials per study (10-epoch "
        "histories, realistic user attributes; the tuning study has ~5% pruned and ~1% failed "
        "trials). Time of `hpo report --study NAME` end to end: store load, "
        "tables, every figure, README.md, table.csv, table.tex, each run a fresh `python -m hpo "
        f"report` process (interpreter start and imports included). Target: under "
        f"{results['target_s']:g} s.",
        "",
        "| study | sampler | fill store (s) | report runs, wall (s) | CPU (s) | best wall (s) "
        "| under target | load avg after |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results["studies"].items():
        lines.append(f"| {name} | {r['sampler']} | {r['fill_s']} | "
                     f"{', '.join(map(str, r['report_s']))} | "
                     f"{', '.join(map(str, r['report_cpu_s']))} | {r['report_best_s']} | "
                     f"{'yes' if r['under_target'] else 'NO'} | {r['load_avg_1min_after']} |")
    m = results["machine"]
    lines += ["", f"Machine: {m['cpus']} CPUs (shared), load average "
              f"{m['load_avg_1min_at_start']:.2f} at start, Python {m['python']}, "
              f"Optuna {m['optuna']}, {m['platform']}.",
              "", "Re-run: `python -m hpo.benchmarks.report_scale`."]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hpo.benchmarks.report_scale",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3, help="timed reports per study")
    parser.add_argument("--out", default="reports/bench", help="where the results go")
    args = parser.parse_args(argv)
    out = Path(args.out)
    results = run(args.trials, out, args.repeats)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report_scale.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "report_scale.md").write_text(markdown(results))
    print(markdown(results))
    return 0 if all(r["under_target"] for r in results["studies"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
