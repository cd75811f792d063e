"""`hpo report`: write reports/<study>/ (README.md, table.csv, table.tex, figures/) and print
the main table; ``--all`` does every study in the store and writes an index."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from hpo import store
from hpo.commands import add_storage
from hpo.errors import HpoError
from hpo.schema import METRICS

HELP = "write tables, figures and README of a stored study to reports/<study>/"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """This command's arguments (hpo.cli builds the parser from every command's)."""
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--study", metavar="NAME", help="the study's name in the store")
    which.add_argument("--all", action="store_true",
                       help="every study in the store, plus an index (OUT/README.md)")
    which.add_argument("--across-datasets", metavar="LIST",
                       help="comma-separated study names: one table of their claims' verdicts "
                       "per dataset they ran on in the store (OUT/across_datasets/README.md)")
    which.add_argument("--seed-readings", metavar="SEED",
                       help="with --across-trials: one table ranking every reading of what "
                       "the seed (a title, e.g. R3) left open over all the published accuracies "
                       "of those folders' studies (OUT/readings_SEED.md)")
    which.add_argument("--trials", nargs="+", metavar="DIR",
                       help="report folders that ship their trials (DIR/trials.journal; a "
                       "folder without one: every such folder below it): each report is written "
                       "into its own folder from its trials and the current study file")
    p.add_argument("--across-trials", nargs="+", metavar="DIR",
                   help="with --across-datasets or --seed-readings: read the runs from these "
                   "report folders' "
                   "trials files (a folder without one: every such folder below it) instead of "
                   "--storage")
    p.add_argument("--check", action="store_true",
                   help="with --trials: write nothing; render into a temporary folder and exit "
                   "1 naming every committed file that differs from what the trials give")
    add_storage(p)
    p.add_argument("--out", default="reports", metavar="DIR",
                   help="reports root; a study goes to DIR/<study>/ (default: reports)")
    p.add_argument("--format", default="md,csv,tex", metavar="LIST",
                   help="table formats to write, comma-separated from md, csv, tex "
                   "(default: md,csv,tex)")
    p.add_argument("--metric", choices=METRICS,
                   help="rank configurations and test against the best by this metric "
                   "(default: the study's own metric)")
    p.add_argument("--artifacts", metavar="DIR",
                   help="artifact folder the figures are attached to the study in (default: "
                   "beside the store, as for hpo run)")
    p.add_argument("--no-artifacts", action="store_true",
                   help="do not attach the figures to the study for optuna-dashboard")

TERMINAL_LIMIT = 20  # rows of a tuning study printed on the terminal (all are in the files)


def parse_formats(text: str) -> list[str]:
    from hpo.reporting.write import FORMATS

    formats = [f.strip().lower() for f in text.split(",") if f.strip()]
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise HpoError(f"--format must be a comma-separated list of {', '.join(FORMATS)}, "
                       f"got {text!r}")
    return list(dict.fromkeys(formats))


def report_command(args: argparse.Namespace, name: str) -> str:
    """The command that writes this study's report again (stored in its README)."""
    parts = ["hpo", "report", "--study", name]
    for flag, value, default in (("--storage", args.storage, None), ("--out", args.out, "reports"),
                                 ("--format", args.format, "md,csv,tex"),
                                 ("--metric", args.metric, None)):
        if value is not None and value != default:
            parts += [flag, str(value)]
    return " ".join(shlex.quote(p) for p in parts)


def _attach_figures(study_obj: object, written: object, url: store.StoreURL,
                    artifacts: str | None) -> None:
    """Attach the report's figures to the study, so optuna-dashboard shows them too."""
    from hpo.artifacts import artifact_store, artifacts_dir, upload_report_figures

    figures = [p for p in written.files if p.suffix == ".png"]
    if figures:
        folder = artifacts_dir(url, artifacts)
        upload_report_figures(study_obj, figures, artifact_store(folder))


def _attach_or_warn(study_obj: object, written: object, url: store.StoreURL,
                    artifacts: str | None) -> None:
    """Attach the figures; a store that cannot take them (read-only) is a warning: the
    report is written already."""
    try:
        _attach_figures(study_obj, written, url, artifacts)
    except Exception as exc:  # noqa: BLE001 - the report is written; the extra is not
        from hpo.errors import first_line_of

        print(f"hpo: warning: the report is written, but its figures were not attached to the "
              f"study for optuna-dashboard ({first_line_of(exc)}); the store or its artifacts "
              "folder is read-only? --no-artifacts skips this", file=sys.stderr)


def main(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    from hpo.reporting import render, tables, write

    formats = parse_formats(args.format)
    from_folders = _from_report_folders(args, formats)
    if from_folders is not None:
        return from_folders
    url = store.parse(store.resolve_url(args.storage))
    storage = store.open_storage(url, create=False)
    if getattr(args, "across_datasets", None):
        return _across(args, storage)
    if args.all:
        names = store.study_names(storage)
        if not names:
            raise HpoError(f"no studies in {store.mask(url)}; run `hpo run --study NAME` first")
    else:
        names = [args.study]
    entries = []
    for name in names:
        started = time.perf_counter()
        study_obj = store.load_study(storage, name)
        try:
            summary = tables.summarize(study_obj, args.metric)
        except HpoError as exc:
            if not args.all:
                raise
            print(f"hpo: skipping study {name!r}: {exc}", file=sys.stderr)
            continue
        written = write.write_report(summary, args.out, formats,
                                     command=store.mask(report_command(args, name)))
        entries.append((summary, written))
        if not args.no_artifacts:
            _attach_or_warn(study_obj, written, url, args.artifacts)
        if args.all:
            print(f"== {name} ==")
        limit = None if summary.study.is_grid else TERMINAL_LIMIT
        print(render.terminal_table(summary, limit))
        if limit is not None and len(summary.table) > limit:
            print(f"(best {limit} of {len(summary.table)} configurations; all in "
                  f"{written.folder / 'table.csv'})")
        if args.all:
            print()
        print(f"wrote {written.folder}/ ({len(written.files)} files) in "
              f"{time.perf_counter() - started:.1f} s", file=sys.stderr)
    if args.all:
        if not entries:
            raise HpoError(f"no study in {store.mask(url)} could be reported (see above)")
        index = write.write_index(args.out, entries)
        print(f"wrote {index}", file=sys.stderr)
    return 0


def _from_report_folders(args: argparse.Namespace, formats: list[str]) -> int | None:
    """The modes that read committed report folders (--trials, --seed-readings,
    --across-trials); None for the others, which read --storage."""
    if args.check and not args.trials:
        raise HpoError("--check goes with --trials DIR (the report folders to check)")
    if args.trials:
        return _from_trials(args, formats)
    if args.seed_readings:
        return _seed_readings(args)
    if args.across_trials:
        if not args.across_datasets:
            raise HpoError("--across-trials goes with --across-datasets LIST or "
                           "--seed-readings SEED")
        from hpo.reporting import committed

        return _across(args, committed.merged_storage(committed.trial_folders(args.across_trials)))
    return None


def _across(args: argparse.Namespace, storage: object) -> int:
    """``--across-datasets``: claims × datasets from one store."""
    from hpo.reporting import across

    result = across.across_datasets(storage, across.parse_studies(args.across_datasets))
    path = across.write(result, args.out)
    print(result.table.reset_index().to_markdown(index=False, disable_numparse=True)
          if not result.table.empty else "(the studies have no claims)")
    print(f"wrote {path}", file=sys.stderr)
    return 0


def _seed_readings(args: argparse.Namespace) -> int:
    """``--seed-readings``: one seed's readings ranked over all its studies' published rows."""
    from hpo.reporting import committed, seed_readings, tables

    if not args.across_trials:
        raise HpoError("--seed-readings goes with --across-trials DIR... (the seed's report "
                       "folders)")
    if not args.seed_readings.replace("_", "").isalnum():
        raise HpoError(f"--seed-readings must be a plain title such as R3 (letters, digits, "
                       f"_), got {args.seed_readings!r}")
    summaries = [tables.summarize(committed.load_folder_study(folder))
                 for folder in committed.trial_folders(args.across_trials)]
    text = seed_readings.markdown(args.seed_readings, seed_readings.seed_readings(summaries))
    path = Path(args.out) / f"readings_{args.seed_readings}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    print(text)
    print(f"wrote {path}", file=sys.stderr)
    return 0


def _from_trials(args: argparse.Namespace, formats: list[str]) -> int:
    """``--trials``: render (or ``--check``) report folders from their own trials files."""
    from hpo.reporting import committed

    folders = committed.trial_folders(args.trials)
    problems: list[str] = []
    checked = 0
    for folder in folders:
        started = time.perf_counter()
        if args.check and not (folder / "README.md").exists():
            print(f"{'no report':10}{folder} (its runs are not complete yet)", file=sys.stderr)
            continue
        left, total = committed.runs_left(folder)
        if left and not args.check:
            named = any(Path(raw).resolve() == folder.resolve() for raw in args.trials)
            print(f"{'partial' if named else 'skipped':8}{folder}: {total - left} of {total} "
                  "runs" + ("; rendered, as named" if named else "; name the folder to render "
                            "it anyway"), file=sys.stderr)
            if not named:
                continue
        if args.check:
            checked += 1
            found = committed.check(folder, formats)
            problems += found
            print(f"{'differs' if found else 'same':8}{folder}", file=sys.stderr)
            continue
        _, written = committed.render(folder, formats)
        print(f"wrote {written.folder}/ ({len(written.files)} files) from its trials in "
              f"{time.perf_counter() - started:.1f} s", file=sys.stderr)
    if problems:
        print("\n".join(problems))
        raise HpoError(f"{len(problems)} committed report files differ from what their trials "
                       "render; run `hpo report --trials FOLDER` and commit the result, or "
                       "revert the study file that changed")
    if args.check:
        waiting = len(folders) - checked
        print(f"{checked} reports re-render identically from their trials"
              + (f"; {waiting} folders have trials and no report yet (runs incomplete)"
                 if waiting else ""))
    return 0
