"""Running a study: create it once, queue its cells, and let workers pop them exactly once.

Grid studies do not use Optuna's GridSampler (which runs cells twice, or never, under parallel
workers). Instead every (configuration, seed) is enqueued as a WAITING trial while a store-wide
lock is held, and workers pop WAITING trials, which the storage hands to exactly one of them.
Whatever did not finish (a killed worker's trial failed by its heartbeat, an interrupted trial)
is queued again by the next reconcile, which any worker or restart performs under the same lock.

The package reads in that order: ``plan`` (RunOptions, the device, how many workers) →
``create`` (the study in the store, sampler, pruner) → ``queue`` (reconcile, pop, liveness) →
``worker`` (one worker's loop) → ``pool`` (``run``: this process or spawned workers).
"""

from __future__ import annotations

from hpo.runner.create import (  # noqa: F401
    make_pruner,
    make_sampler,
    prepare_study,
    study_metadata,
)
from hpo.runner.plan import (  # noqa: F401
    DEFAULT_WORKER_MB,
    MEMORY_SHARE,
    RunOptions,
    available_mb,
    cap_jobs,
    check_memory,
    pending_runs,
    pick_device,
    plan_jobs,
    threads_per_worker,
    usable_cores,
)
from hpo.runner.pool import (  # noqa: F401
    CANCEL,
    DEVICE_CODES,
    PENDING,
    ensure_weights,
    run,
)
from hpo.runner.queue import (  # noqa: F401
    DONE_STATES,
    PENDING_STATES,
    budget_used,
    can_sample,
    next_trial,
    pop_waiting,
    reclaim_stale,
    reconcile,
    remaining,
    running_elsewhere,
)
from hpo.runner.worker import (  # noqa: F401
    load_splits,
    work,
)

__all__ = [  # the API other packages use; the rest is reached through the submodules
    "RunOptions", "cap_jobs", "make_pruner", "pending_runs", "pick_device", "pop_waiting",
    "prepare_study", "reconcile", "remaining", "run", "usable_cores", "work",
]
