"""Write a study's report folder: README.md, table.csv, table.tex and figures/*.png."""

from __future__ import annotations

import contextlib
import os
import shlex
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from hpo.reporting import claims_section, figures, published, render, verdicts
from hpo.reporting.figure_specs import figure_specs
from hpo.reporting.tables import (
    ALPHA,
    Summary,
    identical_groups,
    is_two_way_grid,
    redone_failures,
    short_names,
)
from hpo.reporting.timing import time_basis
from hpo.schema import COMMAND_ATTR, DEVICE_ATTR, END_ATTR, GIT_COMMIT_ATTR, VERSIONS_ATTR

if TYPE_CHECKING:
    from hpo.reporting.claims import Verdict

FORMATS = ("md", "csv", "tex")
README_LIMIT = 30  # rows of a tuning study's table shown in README.md (all are in table.csv)


@dataclass
class Written:
    folder: Path
    files: list[Path] = field(default_factory=list)


def write_report(summary: Summary, root: str | os.PathLike,
                 formats: Sequence[str] = FORMATS, command: str = "") -> Written:
    """Write ``root/<study>/`` and return what was written."""
    from hpo.errors import HpoError

    folder = Path(root) / summary.name
    if folder.resolve().parent != Path(root).resolve():  # a stored name such as '../x'
        raise HpoError(f"study name {summary.name!r} is not a folder name inside {root}; rename "
                       "it (hpo run --name NEW) before reporting it")
    fig_dir = folder / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    out = Written(folder)
    drawn: list[tuple[str, str]] = []
    for stem, caption, draw in figure_specs(summary):
        path = fig_dir / f"{stem}.png"
        with naming(path):
            figures.save(draw(), path)
        out.files.append(path)
        drawn.append((f"figures/{stem}.png", caption))
    if "csv" in formats:
        out.files.append(_write(folder / "table.csv", render.csv_table(summary)))
    if "tex" in formats:
        out.files.append(_write(folder / "table.tex", render.latex_table(summary)))
    if "md" in formats:
        text = readme(summary, drawn, formats, command)
        out.files.append(_write(folder / "README.md", text))
    return out


def _write(path: Path, text: str) -> Path:
    with naming(path):
        path.write_text(text, encoding="utf-8")
    return path


@contextlib.contextmanager
def naming(path: Path) -> Iterator[None]:
    """An OSError while writing ``path`` names it: a full disk raises ENOSPC on the write or
    the close with no file name, and the one-line error would not say which file."""
    try:
        yield
    except OSError as exc:
        if exc.filename is None:
            exc.filename = str(path)
        raise


MOMENTUM_OPTIMIZERS = ("momentum", "nesterov")  # the optimizers that read train.momentum


def _optimizers(summary: Summary) -> set[str]:
    """Every optimizer the study's runs used: the varied choices, else the fixed one."""
    varied = [p for p in summary.study.space if p.key == "train.optimizer"]
    return set(varied[0].choices) if varied else {summary.study.config.get("train.optimizer")}


def _inert_train_keys(summary: Summary) -> set[str]:
    """Training keys that no run of the study used (momentum under plain SGD or Adadelta, a step
    schedule's step size or factor without a schedule that steps): printing them would suggest
    they acted."""
    config, varied = summary.study.config, set(summary.keys)
    inert = set()
    if not _optimizers(summary) & set(MOMENTUM_OPTIMIZERS):
        inert.add("train.momentum")
    if "train.schedule" not in varied:
        if config.get("train.schedule") != "step":
            inert.add("train.step_size")
        if config.get("train.schedule") not in ("step", "plateau"):
            inert.add("train.gamma")
    return inert


def _setup_lines(summary: Summary) -> list[str]:
    config = summary.study.config
    attrs = summary.attrs
    versions = attrs.get(VERSIONS_ATTR, {})
    varied = set(summary.keys)
    model = {k[6:]: v for k, v in config.items() if k.startswith("model.") and k not in varied}
    train = {k[6:]: render.fmt_key(v) for k, v in config.items()
             if k.startswith("train.") and k not in varied and k not in _inert_train_keys(summary)}
    if "momentum" in train and _optimizers(summary) - set(MOMENTUM_OPTIMIZERS):
        train["momentum"] += " (the momentum runs only)"  # plain SGD beside it ignores it
    space = ", ".join(
        f"`{p.key}` ∈ {{{', '.join(render.fmt_key(v) for v in p.choices)}}}"
        if p.type == "categorical" else
        f"`{p.key}` ∈ [{p.low:g}, {p.high:g}]{' (log)' if p.log else ''}"
        for p in summary.study.space
    ) or "nothing (one configuration)"
    seeds = summary.study.seeds()
    lines = [
        f"- **Dataset:** {config['dataset']} (validation fraction {config['val_fraction']:g}"
        + (f", {config['train_subset']} training images" if config["train_subset"] else "")
        + ")",
        "- **Model:** " + ", ".join(f"{k}={render.fmt_key(v)}" for k, v in model.items()),
        "- **Training:** " + ", ".join(f"{k}={v}" for k, v in train.items())
        + f", batch size {config['batch_size']}, {_epochs_said(summary)}",
        f"- **Varied:** {space}",
        f"- **Seeds:** {len(seeds)} per configuration ({', '.join(map(str, seeds))})"
        + (f", then seeds until decided (at most {config['max_repeats']}: "
           f"{_seeds_reached(summary)})" if config.get("until_decided") else ""),
        f"- **Sampler:** {config['sampler']}"
        + ("" if summary.study.is_grid else f", {config['n_trials']} trials")
        + f"; objective {config['metric']} ({summary.study.direction}); "
        f"pruner {config['pruner']}",
        "- **Software:** " + ", ".join(f"{k} {v}" for k, v in versions.items())
        + (f"; git commit `{attrs[GIT_COMMIT_ATTR][:12]}`" if attrs.get(GIT_COMMIT_ATTR)
           else "")
        + (f"; device {attrs[DEVICE_ATTR]}" if attrs.get(DEVICE_ATTR) else ""),
    ]
    return lines


def _trial_line(summary: Summary) -> str:
    c = summary.counts
    total = sum(c.values())
    parts = [f"{c['COMPLETE']} complete"]
    for state, word in (("PRUNED", "pruned"), ("FAIL", "failed"), ("RUNNING", "still running"),
                        ("WAITING", "queued")):
        if c[state]:
            parts.append(f"{c[state]} {word}")
    text = f"{total} trial{'s' if total != 1 else ''}: " + ", ".join(parts) + "."
    if c["PRUNED"] or c["FAIL"] or c["RUNNING"] or c["WAITING"]:
        text += (" Only complete trials enter the means; the others are counted per "
                 "configuration in the table")
        text += "." if summary.study.is_grid else (
            " (a configuration without any complete run is only in these totals).")
    if redone := redone_failures(summary):
        text += (f" {redone} of the failed runs {'was' if redone == 1 else 'were'} cut short "
                 "(an interrupt or a lost worker) and run again to completion: each "
                 "configuration and seed counts once.")
    table = summary.table
    short = table[(table["n"] < table["n_asked"])]
    if summary.study.is_grid and not short.empty:
        text += (f" **{len(short)} of {len(table)} configurations have fewer complete seeds "
                 f"than the {int(table['n_asked'].iloc[0])} asked** (`n` shows \"k of "
                 f"{int(table['n_asked'].iloc[0])}\").")
    diverged = int(table["diverged"].sum())
    if diverged:
        text += (f" {diverged} complete runs diverged (non-finite training loss); they count "
                 "with the accuracy their weights reached.")
    same = identical_groups(summary)
    if same:
        text += (" Identical runs, seed for seed (one run under several names: what differs "
                 "between them had no effect here): "
                 + "; ".join(" ≡ ".join(group) for group in same) + ".")
    collapsed = int(table["collapsed"].sum()) if "collapsed" in table else 0
    if collapsed:
        rows = table[table["collapsed"] > 0]
        mixed = rows[rows["collapsed"] < rows["n"]]
        text += (f" {collapsed} complete runs in {len(rows)} configurations ended at chance "
                 "(training accuracy or loss at guessing's and validation accuracy not well "
                 "above it: they did not train; column \"at chance\")")
        text += (f", {len(mixed)} of those configurations only in some seeds (bimodal: its "
                 "mean and std describe two outcomes, not one)." if len(mixed) else ".")
    return text


def headline(summary: Summary) -> str:
    config = summary.study.config
    ran = summary.table["n"][summary.table["n"] > 0]
    text = (f"*Ran on {config['dataset']}: {_epochs_said(summary)} × {_seeds_said(summary)}, "
            f"{len(ran)} configurations with complete runs.*")
    changed = changed_from_shipped(summary)
    if changed:
        text += f" *Changed from the shipped study file: {changed}.*"
    return text


def _epochs_said(summary: Summary) -> str:
    """The length: the study's epochs, or the grid's values where epochs is varied."""
    if "epochs" in summary.keys:
        values = sorted({int(v) for v in summary.table["epochs"].dropna()})
        return " or ".join(str(v) for v in values) + " epochs (a grid dimension)"
    return f"{summary.study.config['epochs']} epochs"


def _seeds_said(summary: Summary) -> str:
    """Seeds per configuration as run: the study's repeats, or with seeds until decided the
    repeats it started from and the range the looks reached."""
    config = summary.study.config
    said = f"{config['repeats']} seeds per configuration"
    if not config.get("until_decided") or not (summary.table["n"] > 0).any():
        return said
    return (f"{said}, then seeds until decided (at most {config['max_repeats']}): "
            f"{_seeds_reached(summary)}")


def _seeds_reached(summary: Summary) -> str:
    """The complete runs per configuration that ran: "4" or "2–6" (runs, not seeds asked)."""
    ran = summary.table["n"][summary.table["n"] > 0]
    low, high = int(ran.min()), int(ran.max())
    return f"{low if low == high else f'{low}–{high}'} complete runs per configuration"


def changed_from_shipped(summary: Summary, file_name: str | None = None) -> str:
    """Keys where the stored study differs from the shipped study file ``file_name`` (default:
    the stored study's own name, else, for a run stored under ``--name``, the file its command
    named); "" when there is no such file."""
    from hpo import spec
    from hpo.errors import HpoError

    shipped_names = spec.shipped_studies()
    name = file_name or summary.study.name
    if name not in shipped_names:
        name = command_study(summary.attrs.get(COMMAND_ATTR, "")) or ""
    if name not in shipped_names:
        return ""
    try:
        shipped = spec.load(name).config
    except HpoError:
        return ""
    skip = {"name", "question", "description", "data_dir"}
    diffs = [f"{k} {render.fmt_key(shipped.get(k))} → {render.fmt_key(v)}"
             for k, v in summary.study.config.items()
             if k not in skip and shipped.get(k) != v]
    return ", ".join(diffs)


def best_line(summary: Summary) -> str:
    best = summary.best
    if best is None:
        return "No configuration has a complete run yet."
    m = summary.metric
    table = summary.table
    least = summary.min_seeds
    others = table[~table["best"] & (table["n"] > 0)]
    tested = others[others["p_value"].notna()]
    collapsed = tested["collapsed"].fillna(0) if "collapsed" in tested else 0
    judged = (tested[(tested["n"] >= least) & (collapsed == 0)] if int(best["n"]) >= least
              else tested.iloc[:0])
    tied = judged[~(judged["p_value"] < ALPHA)]
    line = (f"Best by mean {m}: **{best['config']}** ({render.fmt_stat(best, m, ci=False)}, "
            f"n={int(best['n'])}).")
    if len(judged):
        # Not rejecting is not equality: with a few seeds a test has little power.
        line += (f" {len(tied)} of {len(judged)} other configurations judged against it are "
                 f"not significantly different from it (Welch's t-test p ≥ {ALPHA:g}; with few "
                 "seeds that is weak evidence, not a tie).")
    if len(judged) < len(tested):
        # The claims' rule: a spread from fewer than min_seeds runs is no ground either way.
        unjudged = len(tested) - len(judged)
        line += (f" {unjudged} {'is' if unjudged == 1 else 'are'} not judged (fewer than "
                 f"{least} runs on a side, min_seeds, or runs at chance).")
    if len(tested) < len(others):
        line += f" {len(others) - len(tested)} could not be tested (fewer than 2 runs on a side)."
    return line


def readme(summary: Summary, drawn: Sequence[tuple[str, str]], formats: Sequence[str],
           command: str = "") -> str:
    config = summary.study.config
    judged = verdicts.evaluate_all(summary) if summary.study.claims else []
    lines = [f"# {summary.name}", ""]
    if config["question"]:
        lines += [f"> {config['question']}", ""]
    lines += [headline(summary), ""]
    # Each configuration once, in the order the claims name them (several may leave out one).
    untrained = list(dict.fromkeys(r for v in judged for r in v.untrained_rows))
    if untrained:
        lines += [f"*Did not train, so left out of the claims they would decide: "
                  f"{'; '.join(untrained)}.*", ""]
    if config["description"]:
        lines += [config["description"].strip(), ""]
    lines += ["## Setup", "", *_setup_lines(summary), ""]
    stored = summary.attrs.get(COMMAND_ATTR)
    lines += ["Reproduce:", "", "```sh"]
    if stored:
        lines.append(stored)
    lines.append(command or f"hpo report --study {summary.name}")
    lines += ["```", ""]

    lines += ["## Results", "", _trial_line(summary), "", best_line(summary), ""]
    limit = None if summary.study.is_grid else README_LIMIT
    shown = render.display_table(summary, limit)
    lines += [render.markdown_table(shown, render.best_rows(summary, limit)), ""]
    if limit is not None and len(summary.table) > limit:
        lines += [f"The best {limit} of {len(summary.table)} configurations; "
                  "every one is in [table.csv](table.csv).", ""]
    lines += [_how_to_read(summary), ""]
    files = [f"[{f}]({f})" for f, fmt in (("table.csv", "csv"), ("table.tex", "tex"))
             if fmt in formats]
    if files:
        lines += ["Also as " + " and ".join(files) + " (the CSV with every number unrounded).",
                  ""]

    if is_two_way_grid(summary):
        names = short_names(summary.keys)
        lines += [f"### {names[summary.keys[0]]} × {names[summary.keys[1]]}", ""]
        for metric in ("train_loss", "train_acc", "val_acc", "test_acc"):
            lines += [f"Mean ± std {render.PIVOT_METRICS[metric]}:", "",
                      render.pivot_display(summary, metric).to_markdown(disable_numparse=True), ""]

    if summary.study.claims:
        lines += ["## Claims", "", claims_section.claims_intro(summary), "",
                  claims_section.claims_markdown(judged), ""]
        if measures := claims_section.measures_markdown(summary):
            lines += [measures, ""]
        if seeds_line(summary, judged):
            lines += [seeds_line(summary, judged), ""]

    lines += published.published_lines(summary)

    if drawn:
        lines += ["## Figures", ""]
        for path, caption in drawn:
            lines += [f"![{caption}]({path})", "", f"*{caption}*", ""]
    return "\n".join(lines).rstrip() + "\n"


def _how_to_read(summary: Summary) -> str:
    return (
        "How to read: each cell is mean ± sample standard deviation over the complete runs "
        "(seeds), then the 95% confidence interval of the mean [t-based, n − 1 degrees of "
        "freedom, clipped to 0–100% for accuracies and ≥ 0 for losses; none when n = 1]. "
        "Losses are the last epoch's, accuracies are percentages, "
        "time per run is wall time (what you wait) and, where recorded, CPU time (process "
        "CPU seconds, all threads: what the trial cost); time per epoch is "
        f"{time_basis(summary).label}. {time_basis(summary).note} The **bold** row has the "
        f"best mean {summary.metric}; the last column is a two-sided Welch's t-test (unequal "
        f"variances) of {summary.metric} against that row: p < {ALPHA:g} is marked "
        "significant; otherwise it is not (which, with few seeds, is weak evidence either "
        "way, not a tie); with fewer than "
        f"{summary.min_seeds} runs on a side (min_seeds, the claims' rule) p is shown but "
        "not judged either way. No correction "
        "for multiple comparisons. With zero variance on both sides p is 1 for equal means "
        "and 0 otherwise; with fewer than 2 runs on either side there is no test (n/a)."
    )


def write_index(root: str | os.PathLike, entries: Sequence[tuple[Summary, Written]]) -> Path:
    """``root/README.md``: one line per study, linking its report."""
    root = Path(root)
    lines = ["# Reports", "", "| study | question | setup | trials | best configuration | "
             "best mean |", "|---|---|---|---|---|---|"]
    for summary, written in entries:
        best = summary.best
        rel = written.folder.relative_to(root).as_posix()
        m = summary.metric
        best_text = ("–", "–") if best is None else (
            best["config"], f"{m} {render.fmt_stat(best, m, ci=False)}")
        question = summary.study.config["question"].replace("|", "\\|")
        lines.append(
            f"| [{summary.name}]({rel}/README.md) | {question} | "
            f"{summary.study.config['dataset']}, {summary.study.config['epochs']} epochs × "
            f"{summary.study.config['repeats']} seeds | {summary.counts['COMPLETE']} complete of "
            f"{sum(summary.counts.values())} | {best_text[0]} | {best_text[1]} |"
        )
    return _write(root / "README.md", "\n".join(lines) + "\n")


def command_study(command: str) -> str | None:
    """The study file a stored ``hpo run`` command named (its stem: a path or a name)."""
    try:
        words = shlex.split(command or "")
    except ValueError:
        return None
    for i, word in enumerate(words):
        if word == "--study" and i + 1 < len(words):
            return Path(words[i + 1]).stem
        if word.startswith("--study="):
            return Path(word.split("=", 1)[1]).stem
    return None


def since_the_last_look(summary: Summary, judged: Sequence[Verdict]) -> str:
    """Where today's verdicts differ from what the study's last look judged (its rules or its
    study file changed since, e.g. a claim added): "" if they agree. A stop reason is the last
    look's; without this a report could say "all claims decided" above an inconclusive one."""
    import re

    end = summary.attrs.get(END_ATTR)
    if not isinstance(end, str) or not end:
        return ""
    # The stopping look is stored as its reason alone (hpo.decide._end_text): "all N claims
    # decided", or "claims 1, 3 still inconclusive …; claims 2 stopped for futility …".
    then_open = {int(n) for group in re.findall(r"claims ([\d, ]+)", end)
                 for n in group.replace(",", " ").split()}
    now_open = {i for i, v in enumerate(judged, 1) if not v.decided}
    decided, opened = sorted(then_open - now_open), sorted(now_open - then_open)
    retired = ("" if "last planned look" not in end else
               " Looks are now taken at information shares and do not run out before the cap; "
               "a look now would add no seeds (its readings disagree, or the cap cannot decide "
               "it at the observed difference).")
    if not decided and not opened:
        return retired
    parts = [f"claim{'s' if len(ns) > 1 else ''} {', '.join(map(str, ns))} "
             f"{'are' if len(ns) > 1 else 'is'} {what}"
             for ns, what in ((decided, "decided"), (opened, "inconclusive")) if ns]
    return (f" That was the last look's judgement; under today's rules and study file "
            f"{' and '.join(parts)}.{retired}")


def seeds_line(summary: Summary, judged: Sequence[Verdict] | None = None) -> str:
    """The report's line on how many seeds each configuration got and why ("" if none added)."""
    from hpo.schema import END_ATTR, LOOKS_ATTR
    from hpo.spec import batch_size

    attrs = summary.attrs
    looks = attrs.get(LOOKS_ATTR) or []
    if not looks and not summary.study.config.get("until_decided"):
        return ""
    config = summary.study.config
    got = [f"{r['config']} {int(r['n'])}" for r in summary.records()]
    causes: dict[str, set[int]] = {}
    for look in looks:
        for label, claim_numbers in look.get("claims", {}).items():
            causes.setdefault(label, set()).update(claim_numbers)
    why = "; ".join(f"{label}: claims {', '.join(map(str, sorted(n)))}"
                    for label, n in causes.items())
    end = attrs.get(END_ATTR)
    return (f"Seeds until decided (batches of {batch_size(config)}, at most "
            f"{config['max_repeats']} per configuration, {len(looks)} batch"
            f"{'es' if len(looks) != 1 else ''} added): complete seeds per configuration "
            f"{', '.join(got)}. "
            + (f"Seeds were added for the undecided claims, numbered as the study file had "
               f"them when each batch was added ({why}). " if why else
               "No seeds were added: no undecided claim could be decided within the cap. "
               if end and "futility" in end else "No claim needed more seeds. ")
            + (f"Stopped: {end}." if end else "Not finished: re-run the same command.")
            + since_the_last_look(summary, verdicts.evaluate_all(summary) if judged is None
                                  else judged))
