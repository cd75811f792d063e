"""Seeds until decided: add seeds only where a claim is still inconclusive.

After a grid study's ``repeats`` seeds, the claims are evaluated on what is stored. Every
configuration an inconclusive claim rests on gets ``repeats`` more seeds (one *batch*), up to
``max_repeats``; then the claims are evaluated again, until every claim is decided or no
configuration it involves can get more seeds.

Exactly-once, resume, ``--jobs N`` and many machines hold because the decision is data in the
store: the per-configuration seed counts live in the study's user attribute TARGETS_ATTR, and
the runner's reconcile queues every (configuration, seed) below its target as a WAITING trial,
as it queues the first ``repeats``. A look is taken only under the store-wide lock and only
when no trial of the study is waiting or running, so two workers cannot both raise a target
for the same data, and a killed worker's batch is completed by the next run (its stale trial
is failed and queued again as usual).

Repeated looks at growing data inflate a test's error rate if each look uses alpha: the looks
spend alpha along hpo.spec.looks' alpha-spending function. A claim whose decision would need
more seeds than the cap allows at the observed difference gets none (futility): seeds go only
where they can decide.

Where the pieces live: the plan (batches, looks, alpha per look) in hpo.spec.looks, the seed
targets with the runner's queue, the report's seeds line with the report writer. This module is
the look itself, above the runner and the report; the runner reaches it only through the
``on_idle`` hook that ``with_hook`` puts in its options.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hpo import space as space_mod
from hpo import spec as spec_mod
from hpo import store
from hpo.runner.queue import cell_seeds, targets  # noqa: F401  (decide.targets in tests)
from hpo.schema import END_ATTR, LOOKS_ATTR, TARGETS_ATTR  # noqa: F401
from hpo.spec import Study, batch_size, level_at, look_alpha, planned_looks, spent  # noqa: F401
from hpo.store import internals

if TYPE_CHECKING:
    import optuna

    from hpo.reporting.tables import Summary
    from hpo.runner import RunOptions


def with_hook(opts: RunOptions, study: Study) -> RunOptions:
    """``opts`` (runner.RunOptions) whose idle workers take a look when the study adds seeds
    until decided: the runner calls it instead of importing this module."""
    import dataclasses

    if not study.config["until_decided"]:
        return opts
    return dataclasses.replace(opts, on_idle=add_seeds)


def _cell_of(study: Study, keys: list[str], row: Mapping[str, Any]) -> dict[str, Any] | None:
    """The grid cell a report table row stands for."""
    from hpo.reporting.tables import matches_row

    for cell in study.cells():
        inactive = [k for k in keys if k not in cell]
        if matches_row(tuple(cell.items()), row) and all(row.get(k) is None for k in inactive):
            return cell
    return None


def _pending(study_obj: optuna.Study) -> int:
    from optuna.trial import TrialState

    return len(study_obj.get_trials(deepcopy=False,
                                    states=(TrialState.WAITING, TrialState.RUNNING)))


def add_seeds(study_obj: optuna.Study, study: Study, url: store.StoreURL) -> int:
    """Take one look (under the store lock); returns trials now waiting or running.

    0 means the study is finished: every claim decided, or the cap reached where it is not.
    """
    from hpo import runner

    with store.exclusive(url, internals.study_storage(study_obj)):
        pending = _pending(study_obj)
        if pending:
            return pending  # another worker's batch (or a run in progress): finish it first
        queued = runner.reconcile(study_obj, study)  # failed trials of the last batch
        if queued:
            return queued
        raised, look = next_targets(study_obj, study)
        if not raised:
            study_obj.set_user_attr(END_ATTR, look["end"])
            return 0
        if study_obj.user_attrs.get(END_ATTR) is not None:
            # Reopened (a rule changed since it ended): its old reason no longer holds.
            study_obj.set_user_attr(END_ATTR, None)
        wanted = targets(study_obj)
        wanted.update(raised)
        study_obj.set_user_attr(TARGETS_ATTR, wanted)
        study_obj.set_user_attr(LOOKS_ATTR, [*study_obj.user_attrs.get(LOOKS_ATTR, []), look])
        return runner.reconcile(study_obj, study)


def next_targets(study_obj: optuna.Study, study: Study) -> tuple[dict[str, int], dict[str, Any]]:
    """Evaluate the claims on the stored trials; the raised targets and a record of the look."""
    from hpo.reporting import tables
    from hpo.reporting import verdicts as verdicts_mod
    summary = tables.summarize(study_obj)
    verdicts = verdicts_mod.evaluate_all(summary)
    cap = int(study.config["max_repeats"])
    least = int(study.config.get("min_seeds", 3))
    wanted = targets(study_obj)
    raised: dict[str, int] = {}
    why: dict[str, list[int]] = {}
    undecided = []
    futile = []
    split: list[int] = []
    spent_looks = []
    for i, v in enumerate(verdicts):
        if v.decided:
            continue
        undecided.append(i + 1)
        if all(int(row["n"]) >= cap for row in v.configs):
            continue  # at the cap
        # What more seeds would be judged by: the level of the claim's next look.
        next_alpha = verdicts_mod.next_level(v, summary)
        if next_alpha <= 0:
            spent_looks.append(i + 1)  # more seeds would be a look with no alpha left
            continue
        needs = v.seeds_needed(next_alpha) if v.seeds_needed is not None else None
        # Futility is judged once the claim's configurations have min_seeds runs: a spread
        # from two runs is no ground to stop on (nor to decide on).
        judged = all(int(row["n"]) >= least for row in v.configs)
        if study.config["futility"] and judged and spec_mod.futile(needs, study.config):
            # The cap cannot decide it at the observed difference, or its readings disagree
            # (more seeds would settle them apart, not decide the claim).
            (split if v.by_reading and needs is None else futile).append(i + 1)
            continue
        for row in v.configs:
            cell = _cell_of(study, summary.keys, row)
            if cell is None:
                continue
            key = space_mod.cell_key(cell)
            now = max(int(study.config["repeats"]), wanted.get(key, 0), int(row["n"]))
            if now >= cap:
                continue
            raised[key] = min(cap, now + batch_size(study.config))
            why.setdefault(row["config"], []).append(i + 1)
    labels = {space_mod.cell_key(c): lbl for c, lbl in _labels(study, summary)}
    look = {"undecided": undecided,
            "seeds": {labels.get(k, k): n for k, n in raised.items()},
            "claims": why, "futile": futile + split}
    if not undecided:
        look["end"] = f"all {len(verdicts)} claims decided"
    elif not raised:
        look["end"] = _end_text(undecided, futile, spent_looks, cap, split)
    return raised, look


def _end_text(undecided: list[int], futile: list[int], spent_looks: list[int], cap: int,
              split: list[int]) -> str:
    """Why a look added no seeds though claims are undecided."""
    open_ = [n for n in undecided if n not in futile and n not in spent_looks
             and n not in split]
    parts = []
    if open_:
        parts.append(f"claims {', '.join(map(str, open_))} still inconclusive at the cap "
                     f"of {cap} seeds per configuration (max_repeats)")
    if spent_looks:
        parts.append(f"claims {', '.join(map(str, spent_looks))} with no alpha left for more "
                     "seeds")
    if futile:
        parts.append(f"claims {', '.join(map(str, futile))} stopped for futility (at the "
                     f"observed difference more than the cap of {cap} seeds would be needed)")
    if split:
        parts.append(f"claims {', '.join(map(str, split))} stopped: their readings disagree "
                     "(more seeds would settle the readings apart, not decide the claim)")
    return "; ".join(parts)


def _labels(study: Study, summary: Summary) -> list[tuple[dict[str, Any], str]]:
    out = []
    for row in summary.records():
        cell = _cell_of(study, summary.keys, row)
        if cell is not None:
            out.append((cell, row["config"]))
    return out
