"""`hpo run`: run (or resume) a study and print one line per configuration."""

from __future__ import annotations

import argparse

from hpo import spec, store
from hpo.errors import HpoError

TOP_CONFIGS = 10

# Command-line shortcuts and the study-file key each one sets.
SHORTCUTS = {
    "dataset": "dataset",
    "epochs": "epochs",
    "repeats": "repeats",
    "n_trials": "n_trials",
    "pruner": "pruner",
    "precision": "train.precision",
    "name": "name",
    "max_repeats": "max_repeats",
}


def overrides_from(args: argparse.Namespace) -> list[str]:
    items = list(getattr(args, "overrides", []))
    for attr, key in SHORTCUTS.items():
        value = getattr(args, attr, None)
        if value is not None:
            items.append(f"{key}={value!r}" if isinstance(value, str) else f"{key}={value}")
    if getattr(args, "until_decided", False):
        items.append("until_decided=true")
    return items


def main(args: argparse.Namespace) -> int:
    from hpo import annotate, records, runner

    if args.jobs < 1:
        raise HpoError(f"--jobs must be >= 1, got {args.jobs}")
    if args.threads < 0:
        raise HpoError(f"--threads must be >= 0, got {args.threads}")
    study = spec.load(args.study, overrides_from(args))
    opts = runner.RunOptions(
        storage_url=store.resolve_url(args.storage),
        device=args.device,
        jobs=args.jobs,
        threads=args.threads,
        data_dir=args.data_dir,
        progress=not args.no_progress,
        command=args.command_line,
        oversubscribe=getattr(args, "oversubscribe", False),
        artifacts=args.artifacts,
        save_artifacts=not args.no_artifacts,
    )
    artifacts = annotate.artifacts_dir(opts.storage_url, args.artifacts)
    if not args.no_artifacts and (args.artifacts or artifacts.parent.is_dir()):
        annotate.artifact_store(artifacts)  # unusable folder: one error now, not one per trial
    study_obj = runner.run(study, opts)
    frame = records.trials_frame(study_obj, study)
    keys = records.varied_keys(study)
    metric = study.config["metric"]  # what `hpo report` ranks by: the same winner
    summary = records.config_summary(frame, keys, metric)
    print(f"study {study.name!r} in {store.mask(opts.storage_url)}: "
          f"{(frame['state'] == 'COMPLETE').sum()} complete trials")
    if not study.is_grid and len(summary) > TOP_CONFIGS:
        # A tuning study has one row per sampled configuration: show the best ones.
        summary = records.rank_summary(summary, metric).head(TOP_CONFIGS)
        print(f"best {TOP_CONFIGS} configurations by mean {metric}:")
    print(records.format_summary(summary, keys, metric))
    if study.config["until_decided"]:
        from hpo import decide

        attrs = study_obj.user_attrs
        print(f"until decided: {len(attrs.get(decide.LOOKS_ATTR, []))} batches of seeds added; "
              f"{attrs.get(decide.END_ATTR, 'not finished')} (`hpo report` says which and why)")
    return 0
