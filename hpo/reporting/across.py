"""Claims × datasets: the verdict of every claim of some studies on every dataset they ran on.

One store holds the same study run on several datasets under different names (``hpo run
--study learning_rate --dataset mnist --name learning_rate_mnist``). A stored study counts as a
run of study file ``S`` when its name is ``S`` or ``S_<dataset>`` / ``S-<dataset>`` (its dataset
as stored), or when the command that ran it names ``--study S`` (any ``--name``). Verdicts are
hpo.reporting.verdicts.evaluate_all's, per stored study, as its own report gives them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpo.errors import HpoError
from hpo.reporting.write import command_study
from hpo.schema import COMMAND_ATTR, DATASET_ATTR

if TYPE_CHECKING:
    import optuna
    import pandas as pd

    from hpo.reporting.claims import Verdict

NOT_RUN = "–"


@dataclass
class Across:
    studies: list[str]  # study files asked for, in the order given
    datasets: list[str]  # columns
    # rows: "study: claim", columns: datasets, cells: verdict (NOT_RUN if not run)
    table: pd.DataFrame
    sources: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # (study, dataset) ->
    # stored studies behind that column, with their setup


def parse_studies(text: str) -> list[str]:
    names = [s.strip() for s in text.split(",") if s.strip()]
    if not names:
        raise HpoError(f"--across-datasets needs a comma-separated list of study names, got "
                       f"{text!r}")
    return list(dict.fromkeys(names))


def study_of(name: str, attrs: dict[str, Any], wanted: Sequence[str]) -> str | None:
    """Which of the ``wanted`` study files a stored study is a run of (None: none)."""
    dataset = attrs.get(DATASET_ATTR, "")
    for base in wanted:
        if name == base or name in (f"{base}_{dataset}", f"{base}-{dataset}"):
            return base
    base = command_study(attrs.get(COMMAND_ATTR, ""))
    return base if base in wanted else None


def _dataset_order(datasets: set[str]) -> list[str]:
    from hpo.nn.shapes import DATASETS

    known = [d for d in DATASETS if d in datasets]
    return known + sorted(datasets - set(known))


def across_datasets(storage: str | optuna.storages.BaseStorage, studies: Sequence[str]) -> Across:
    """Evaluate every stored run of ``studies`` and lay the verdicts out claim × dataset."""
    import optuna
    import pandas as pd

    from hpo import store
    from hpo.reporting import tables, verdicts, write

    found: dict[tuple[str, str], list[str]] = {}
    for summary in optuna.get_all_study_summaries(storage=storage):
        attrs = dict(summary.user_attrs)
        base = study_of(summary.study_name, attrs, studies)
        if base is not None:
            found.setdefault((base, attrs.get(DATASET_ATTR, "?")), []).append(
                summary.study_name)
    missing = [s for s in studies if not any(b == s for b, _ in found)]
    if missing:
        raise HpoError(
            f"no stored run of {', '.join(missing)} in this store; run e.g. `hpo run --study "
            f"{missing[0]} --dataset mnist --name {missing[0]}_mnist` first")
    datasets = _dataset_order({d for _, d in found})
    cells: dict[str, dict[str, str]] = {}
    sources: dict[tuple[str, str], list[str]] = {}
    for base in studies:
        for dataset in datasets:
            for name in sorted(found.get((base, dataset), [])):
                study_obj = store.load_study(storage, name)
                try:
                    summary = tables.summarize(study_obj)
                except HpoError:
                    continue  # no trials yet: the cell stays "not run"
                config = summary.study.config
                column = dataset if len(found[(base, dataset)]) == 1 else f"{dataset} ({name})"
                if column not in datasets:
                    datasets.insert(datasets.index(dataset), column)
                changed = write.changed_from_shipped(summary, base)
                seeds = (f"{config['repeats']} seeds then seeds until decided (at most "
                         f"{config['max_repeats']})" if config.get("until_decided")
                         else f"{config['repeats']} seeds")
                sources.setdefault((base, column), []).append(
                    f"`{name}`: {config['epochs']} epoch{'s' if config['epochs'] != 1 else ''}"
                    f" × {seeds}, {summary.counts['COMPLETE']} complete trials"
                    + (f" (changed from the study file: {changed})" if changed else ""))
                for verdict in verdicts.evaluate_all(summary):
                    cells.setdefault(f"{base}: {verdict.claim.text}", {})[column] = \
                        cell_text(verdict)
    columns = [d for d in datasets if any(k[1] == d for k in sources)]
    table = pd.DataFrame.from_dict(cells, orient="index").reindex(columns=columns)
    table = table.fillna(NOT_RUN)
    table.index.name = "claim"
    return Across(studies=list(studies), datasets=columns, table=table, sources=sources)


def cell_text(verdict: Verdict) -> str:
    """The verdict, and in brackets where readings disagreed each reading's own (uncorrected)
    and the readings left out because the network did not train there, so a reader sees which
    findings hold in which reading and that a missing one was not forgotten."""
    parts = [f"{r}: {v}" for r, v in verdict.by_reading]
    # ``untrained`` entries carry their numbers ("optimizer=sgd (… training loss 2.31 …)"):
    # the cell names the reading; the study's report gives the numbers.
    parts += [f"{r.split(' (')[0]}: did not train" for r in verdict.untrained]
    return f"{verdict.verdict} ({'; '.join(parts)})" if parts else verdict.verdict


def markdown(result: Across) -> str:
    """The table and where each column's numbers come from."""
    text = result.table.reset_index().to_markdown(index=False, disable_numparse=True) \
        if not result.table.empty else "(the studies have no claims)"
    lines = [
        "# Claims across datasets", "",
        "Each cell is the verdict `hpo report` gives that claim on that dataset (the rule is "
        "in each study's own report, Claims section); " + NOT_RUN + " means the study has no "
        "run on that dataset in this store. Where the readings the seed leaves open (e.g. R4's "
        "optimizer) disagree, the cell is inconclusive and lists each reading's own verdict "
        "(uncorrected); a reading in which the network did not train is named and left out of "
        "the verdict.", "", text, "", "Runs behind each cell:", "",
    ]
    for (base, column), names in result.sources.items():
        lines.append(f"- {base} on {column}: " + "; ".join(names))
    return "\n".join(lines) + "\n"


def write(result: Across, root: str | Path) -> Path:
    folder = Path(root) / "across_datasets"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "README.md"
    path.write_text(markdown(result), encoding="utf-8")
    return path
