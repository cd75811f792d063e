"""Options of a run and the machine it runs on: the device, and how many workers to start."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpo import space as space_mod
from hpo import store
from hpo.errors import HpoError, StoreError
from hpo.spec import Study

# Memory one worker is assumed to need before any trial of the study has recorded its
# peak_rss_mb: torch, Optuna and the embedded digits in one process, with room to spare.
DEFAULT_WORKER_MB = 1000
# Share of MemAvailable that workers may plan to take: the page cache and the parent need some.
MEMORY_SHARE = 0.8
# More hidden fc layers than any network hpo is meant for (check_memory).
MAX_FC_LAYERS = 10_000


@dataclass(frozen=True)
class RunOptions:
    storage_url: store.StoreURL  # parsed once, at the edge (the command, the Python API)
    device: str = "auto"
    jobs: int = 1
    threads: int = 0  # torch threads per worker; 0: cores // jobs
    data_dir: str | None = None
    progress: bool = True
    command: str = ""
    oversubscribe: bool = False  # allow more workers than usable cores
    # Figures (learning curves, flatness weights) for the dashboard: the folder (None: as
    # artifacts.artifacts_dir says for the store), or none at all with save_artifacts False.
    artifacts: str | None = None
    save_artifacts: bool = True
    # The study file as the command named it and the overrides given (stored as SOURCE_ATTR).
    source: str | None = None
    overrides: tuple[str, ...] = ()
    # time.time() by which the run stops (``--budget``): no trial starts that would not end by
    # then (by the mean time of the study's finished runs), and one still running is stopped.
    deadline: float | None = None
    # What a worker does when nothing is left to run (hpo.decide.with_hook: seeds until
    # decided); returns the trials it queued. A module-level function, so it pickles to workers.
    on_idle: Callable[[Any, Any, Any], int] | None = None

    def artifacts_folder(self) -> Path | None:
        """Where the workers store artifacts; None: they store none (``--no-artifacts``)."""
        if not self.save_artifacts:
            return None
        from hpo import artifacts

        return artifacts.artifacts_dir(self.storage_url, self.artifacts)


def pick_device(requested: str) -> str:
    if requested == "cpu" or (requested == "auto" and not _accelerator_possible()):
        return "cpu"  # without importing torch (~2 CPU s): `hpo run`'s parent needs none
    import torch

    if requested == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise HpoError("--device cuda: no CUDA device is visible; use --device cpu or auto")
    if requested == "mps" and not torch.backends.mps.is_available():
        raise HpoError("--device mps: Apple's MPS backend is not available; use --device cpu")
    return requested


# What torch's CUDA needs to see a device on Linux: NVIDIA's driver (/dev/nvidia*, or WSL2's
# /dev/dxg) or ROCm's (/dev/kfd). Without any of them torch.cuda.is_available() is False.
_ACCELERATOR_NODES = ("/dev/nvidiactl", "/dev/nvidia0", "/dev/dxg", "/dev/kfd",
                      "/proc/driver/nvidia")


def _accelerator_possible() -> bool:
    """False only where no GPU can be visible to torch (Linux without a driver's device node);
    elsewhere (macOS's MPS, other systems) torch is asked."""
    if not sys.platform.startswith("linux"):
        return True
    return any(os.path.exists(node) for node in _ACCELERATOR_NODES)


def usable_cores() -> int:
    """Cores this process may run on: SLURM and taskset restrict the set, cpu_count does not."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def threads_per_worker(jobs: int, threads: int) -> int:
    """Torch threads per worker, so that workers x threads <= cores unless --threads says;
    at most $OMP_NUM_THREADS where it is set (as torch itself would honour it): beside other
    busy processes, two threads on these small networks ran up to 30x slower than one."""
    if threads > 0:
        return threads
    share, cap = max(1, usable_cores() // jobs), omp_threads()
    return min(share, cap) if cap else share


def omp_threads() -> int | None:
    """$OMP_NUM_THREADS as a positive count, or None (unset or not a number: OpenMP ignores
    it then too)."""
    value = os.environ.get("OMP_NUM_THREADS", "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


def available_mb() -> float | None:
    """MemAvailable of /proc/meminfo in MB (None where there is no such file)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def cap_jobs(requested: int, pending: int, *, oversubscribe: bool, peak_mb: float | None,
             flag: str = "--jobs") -> int:
    """Workers worth starting: at most one per pending run, per usable core (unless
    ``oversubscribe``) and per share of the available memory. One line on stderr when fewer
    than ``requested``: a typo such as --jobs 1000 costs a line, not the machine."""
    if requested <= 1:
        return requested
    limits = [(max(1, pending), f"{pending} run{'s' if pending != 1 else ''} pending")]
    if not oversubscribe:
        cores = usable_cores()
        limits.append((cores, f"{cores} usable core{'s' if cores != 1 else ''} "
                              "(--oversubscribe allows more)"))
    avail = available_mb()
    if avail is not None:
        each = peak_mb if peak_mb else DEFAULT_WORKER_MB
        fit = int(avail * MEMORY_SHARE // each)  # 0: still one worker, as --jobs 1 would
        source = "the study's largest peak_rss_mb" if peak_mb else "estimated"
        limits.append((max(1, fit), f"memory for {fit} ({each:,.0f} MB each, {source}; "
                            f"{avail:,.0f} MB available)"))
    jobs = min(requested, *(n for n, _ in limits))
    if jobs < requested:
        print(f"hpo: {flag} {requested}: starting {jobs} worker{'s' if jobs != 1 else ''}: "
              + ", ".join(reason for _, reason in limits), file=sys.stderr)
    return jobs


def pending_runs(study: Study, finished: set[tuple[str, int]]) -> int:
    """(configuration, seed) runs a study still needs, given the ones already finished."""
    if study.is_grid:
        wanted = {(space_mod.cell_key(c), s) for c in study.cells() for s in study.seeds()}
        return len(wanted - finished)
    n_seeds = len(study.seeds())
    budget = max(study.config["n_trials"] // n_seeds * n_seeds, n_seeds)
    return max(0, budget - len(finished))


def plan_jobs(study: Study, opts: RunOptions) -> int:
    """``opts.jobs`` capped by what the store says is pending and by cores and memory."""
    if opts.jobs <= 1:
        return opts.jobs
    finished, peak = store.finished_runs(opts.storage_url, study.name)
    return cap_jobs(opts.jobs, pending_runs(study, finished), oversubscribe=opts.oversubscribe,
                    peak_mb=peak)


def check_memory(study: Study, jobs: int) -> None:
    """Refuse, before the store is touched, a model that one of ``jobs`` workers cannot hold
    in its share of the available memory (weights, gradients, optimizer states and one batch's
    layer outputs, from the shapes), naming the key that makes it large."""
    from hpo.nn.shapes import training_bytes

    configs = [study.resolve(c) for c in study.cells()] if study.is_grid else [study.config]
    for config in configs:
        # The sizes below are summed layer by layer: a count past any network is refused
        # before it becomes a list (fc_layers = 10**9 was 8 GB of it).
        layers = config.get("model.fc_layers") or 0
        if isinstance(layers, int) and layers > MAX_FC_LAYERS:
            raise HpoError(f"{study.source}: model.fc_layers = {layers:,} is more hidden layers "
                           f"than hpo builds (at most {MAX_FC_LAYERS:,}); use fewer")
    avail = available_mb()
    if avail is None:
        return
    share = avail * MEMORY_SHARE / max(1, jobs) * 2**20
    for config in configs:
        need, key, params = training_bytes(config)
        if need > share:
            workers = f"one of {jobs} workers" if jobs > 1 else "one worker"
            raise HpoError(
                f"{study.source}: {key} = {config.get(key)!r} needs about {need / 2**30:,.1f} GB "
                f"to train ({params:,} parameters, batch_size {config['batch_size']}), more than "
                f"{workers} may take ({share / 2**30:,.1f} GB of {avail / 1024:,.1f} GB "
                f"available); use a smaller {key}")


def check_store_folder(url: store.StoreURL) -> None:
    """An SQLite or journal store that may be written in a folder that may not: refused with
    one line before anything is written. Every write to it creates a file beside it (SQLite's
    rollback journal, the journal store's lock), which the store itself reports only as
    "attempt to write a readonly database" or "permission denied" on the store's own name.
    A store that is itself read-only is left to the store's own check, which says so."""
    path = url.path
    if url.kind not in ("sqlite", "journal") or path is None or not path.is_file():
        return
    if not _may_write(path) or _may_write(path.parent):
        return
    beside = (f"SQLite's journal {path.name}-journal" if url.kind == "sqlite"
              else f"the journal's lock {path.name}.lock")
    raise StoreError(f"store {path}: its folder {path.parent} is read-only, and every run "
                     f"writes {beside} beside the store; make the folder writable, or move "
                     "the store to a writable one and pass its new path to --storage")


def _may_write(path: Path) -> bool:
    """``os.access`` says yes to root whatever the mode: a file or folder nobody may write is
    read-only here too."""
    try:
        return os.access(path, os.W_OK) and bool(path.stat().st_mode & 0o222)
    except OSError:
        return False
