"""Campaigns: the committed catalogue run a few hours at a time, on any machine.

A plan (``reports/campaign.toml``) lists report folders in the order they run. Each entry's
trials live in its own folder (``OUT/NAME/trials.journal``, an Optuna journal file) and grow
as runs finish, so a campaign stopped anywhere (its budget, Ctrl-C, SIGKILL, a machine handed
back) loses no finished run: the same command, later or elsewhere, runs each
(configuration, seed) that is still missing exactly once, then renders the entry's report
from its trials. This layer sits above the runner and the reports and below the command.
"""

from __future__ import annotations

import json
import os
import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hpo import spec, store
from hpo.errors import HpoError
from hpo.schema import JSON, TRIALS_FILE

PLAN_KEYS = {"study", "out", "name", "set", "jobs", "epoch_cpu_s", "note", "data_subdir"}
# The time a campaign keeps free at the end of its budget (writing a report, the summary): a
# tenth of the budget, at most this.
RESERVE_S = 60.0


@dataclass(frozen=True)
class Entry:
    """One report folder of the plan: a shipped study, its overrides, where it goes."""

    study: str
    out: Path
    name: str
    overrides: tuple[str, ...]
    jobs: int | None
    epoch_cpu_s: float  # CPU seconds per epoch measured here: the plan before any run
    data_subdir: str | None = None  # its data: this folder under --data-dir (an image folder)
    note: str = ""  # what differs from the seed, for the catalogue

    @property
    def folder(self) -> Path:
        return self.out / self.name

    @property
    def url(self) -> store.StoreURL:
        return store.parse(f"journal:{self.folder / TRIALS_FILE}")

    def load(self) -> spec.Study:
        return spec.load(self.study, self.overrides)

    def command(self, jobs: int) -> str:
        """The `hpo run` this entry amounts to (the report's Reproduce line)."""
        words = ["hpo", "run", "--study", self.study]
        for item in self.overrides:
            words += ["--set", item]
        words += ["--storage", str(self.url)]
        if self.load().config["dataset"] != "digits":  # the embedded dataset needs no folder
            words += ["--data-dir", "DATA"]
        words += ["--jobs", str(jobs)]
        return " ".join(shlex.quote(w) for w in words)


def _toml(value: JSON) -> str:
    """A plan value as the TOML text ``--set`` reads (inline tables for tables)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {_toml(v)}"
                               for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(value)


def load_plan(path: Path) -> list[Entry]:
    """The plan's entries, each checked (unknown keys, a study that does not load)."""
    try:
        raw = spec.tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HpoError(f"campaign plan {path} not found; pass --plan FILE") from None
    except spec.tomllib.TOMLDecodeError as exc:
        raise HpoError(f"{path}: not valid TOML: {exc}") from None
    entries: list[Entry] = []
    for i, item in enumerate(raw.get("entry", []), start=1):
        where = f"{path}: entry {i}"
        unknown = sorted(set(item) - PLAN_KEYS)
        if unknown or "study" not in item or "out" not in item:
            raise HpoError(f"{where}: needs study and out, and takes only "
                           f"{', '.join(sorted(PLAN_KEYS))} (got {', '.join(unknown) or 'none'})")
        overrides = tuple(f"{k}={_toml(v)}" for k, v in item.get("set", {}).items())
        try:
            name = item.get("name") or spec.load(item["study"], overrides).name
        except HpoError as exc:
            raise HpoError(f"{where} ({item['study']}): {exc}") from None
        if "name" in item:
            overrides += (f"name={_toml(name)}",)
        # ``out`` is relative to the plan's own folder (reports/): "mnist" is reports/mnist.
        entry = Entry(study=item["study"], out=path.parent / item["out"],
                      name=name, overrides=overrides, jobs=item.get("jobs"),
                      epoch_cpu_s=float(item.get("epoch_cpu_s", 1.0)),
                      data_subdir=item.get("data_subdir"), note=str(item.get("note", "")))
        try:
            entry.load()
        except HpoError as exc:
            raise HpoError(f"{where} ({name}): {exc}") from None
        entries.append(entry)
    names = [str(e.folder) for e in entries]
    doubled = sorted({n for n in names if names.count(n) > 1})
    if doubled:
        raise HpoError(f"{path}: two entries write {doubled[0]}; give one of them another name")
    if not entries:
        raise HpoError(f"{path} has no [[entry]] tables")
    return entries


@dataclass
class Progress:
    """Where one entry stands: runs done and left, and what the rest costs."""

    entry: Entry
    total: int
    done: int
    cpu_s_per_run: float  # measured (its trials) or planned (epoch_cpu_s x epochs)
    measured: bool
    state: str = ""  # done | partial | new | deciding | skipped: WHY | failed: WHY
    cpu_h_spent: float = 0.0  # CPU-hours of its finished runs (measured)
    notes: list[str] = field(default_factory=list)

    @property
    def left(self) -> int:
        return max(0, self.total - self.done)

    @property
    def cpu_h_left(self) -> float:
        return self.left * self.cpu_s_per_run / 3600


def select(entries: Sequence[Entry], wanted: Sequence[str], plan_dir: Path) -> list[Entry]:
    """The entries, in plan order, that ``wanted`` names: each item a report folder as
    `--status` shows it (reports/mnist/depth), relative to the plan (mnist/depth), or a bare
    folder name, which selects every entry of that name (dropout_location: digits and MNIST)."""
    def names(entry: Entry) -> set[str]:
        relative = os.path.relpath(entry.folder, plan_dir)
        return {entry.name, str(entry.folder), relative, relative.replace(os.sep, "/")}

    for item in wanted:
        if not any(item.rstrip("/") in names(e) for e in entries):
            raise HpoError(f"--only: no entry {item!r} in the plan; `hpo campaign --status` "
                           "lists them")
    return [e for e in entries if names(e) & {w.rstrip("/") for w in wanted}]


def progress(entry: Entry) -> Progress:
    """Count the entry's finished runs in its trials file (read only) against its grid."""
    study = entry.load()
    total = len(study.cells()) * len(study.seeds()) if study.is_grid else study.config["n_trials"]
    planned = entry.epoch_cpu_s * study.config["epochs"]
    path = entry.folder / TRIALS_FILE
    if not path.exists():
        return Progress(entry, total, 0, planned, False, "new")
    study_obj = store.load_study(store.open_storage(entry.url, create=False), entry.name)
    finished = [t for t in study_obj.get_trials(deepcopy=False)
                if t.state.name in ("COMPLETE", "PRUNED")]
    done = len({(t.user_attrs.get("cell"), t.user_attrs.get("seed")) for t in finished})
    cpu = [t.user_attrs.get("cpu_time") or t.user_attrs.get("wall_time") for t in finished]
    cpu = [float(c) for c in cpu if isinstance(c, (int, float))]
    per_run = sum(cpu) / len(cpu) if cpu else planned
    spent = sum(cpu) / 3600
    from hpo.reporting import committed

    if study.config["until_decided"] and done >= total and committed.looks_go_on(study_obj):
        # Seeds until decided: its looks are not over until it says why they stopped.
        return Progress(entry, done + 1, done, per_run, bool(cpu), "deciding", cpu_h_spent=spent)
    return Progress(entry, max(total, done), done, per_run, bool(cpu),
                    "done" if done >= total else "partial", cpu_h_spent=spent)


def summary_lines(rows: Sequence[Progress]) -> list[str]:
    """The campaign's table: each entry's state, runs, and the CPU-hours left."""
    width = max([len("entry"), *(len(str(r.entry.folder)) for r in rows)])
    lines = [f"{'entry':{width}} {'state':10} {'runs':>11} {'CPU-h left':>10}"]
    for row in rows:
        basis = "" if row.measured or row.left == 0 else " (planned)"
        lines.append(f"{str(row.entry.folder):{width}} {row.state.split(':')[0]:10} "
                     f"{row.done:>5}/{row.total:<5} {row.cpu_h_left:>10.2f}{basis}")
        lines += [f"    {note}" for note in row.notes]
    left = sum(r.cpu_h_left for r in rows)
    runs = sum(r.left for r in rows)
    lines.append(f"left: {runs} runs, {left:.1f} CPU-hours (measured per-run costs where "
                 "trials exist, else the plan's epoch_cpu_s)")
    return lines


def summary_markdown(rows: Sequence[Progress], root: Path) -> str:
    """The catalogue as Markdown (reports/CATALOGUE.md): every entry with its report (linked,
    relative to ``root``, once its trials are complete), what it runs, its runs and the CPU-hours
    left. A function of the plan and the trials only, so CI can check it is current."""
    lines = ["# The catalogue", "",
             "Every report folder of [campaign.toml](campaign.toml), in the order `hpo campaign` "
             "runs them; each folder's trials are in its `trials.journal`. Written by `hpo "
             "campaign --status --markdown > reports/CATALOGUE.md` (CI checks it is current). "
             "CPU-hours: spent, the finished runs' own CPU time (all threads); left, measured "
             "per run where the entry has trials, else planned from `epoch_cpu_s`.", "",
             "| report | study file | run with | runs | CPU-h spent | CPU-h left "
             "| why it differs from the seed |",
             "|---|---|---|---|---|---|---|"]
    for row in rows:
        entry = row.entry
        rel = entry.folder.relative_to(root) if entry.folder.is_relative_to(root) \
            else entry.folder
        name = f"[{rel}]({rel}/README.md)" if row.left == 0 and row.total else f"{rel}"
        setting = ", ".join(o for o in entry.overrides
                            if not o.startswith("name=")) or "as shipped"
        cost = f"{row.cpu_h_left:.2f}" + ("" if row.measured or row.left == 0 else " (planned)")
        lines.append(f"| {name} | `{entry.study}` | {setting.replace('|', '/')} | "
                     f"{row.done} of {row.total} | {row.cpu_h_spent:.2f} | {cost} | "
                     f"{entry.note or '–'} |")
    left = sum(r.cpu_h_left for r in rows)
    done = sum(1 for r in rows if r.left == 0)
    lines += ["", f"{done} of {len(rows)} reports complete; {sum(r.left for r in rows)} runs "
              f"left, {left:.1f} CPU-hours on a 2-core machine like the one that measured them."]
    return "\n".join(lines) + "\n"


def run(entries: Sequence[Entry], *, deadline: float | None, data_dir: str | None,
        device: str, jobs: int, say: Callable[[str], None]) -> list[Progress]:
    """Run every entry that still lacks runs, in plan order, until ``deadline``; render each
    finished entry's report. Returns every entry's progress at the end."""
    rows: list[Progress] = []
    reserve = RESERVE_S if deadline is None else min(RESERVE_S, 0.1 * (deadline - time.time()))
    for entry in entries:
        row = progress(entry)
        rows.append(row)
        if row.left == 0:
            _render_if_needed(row, say)
            continue
        if deadline is not None and time.time() + reserve >= deadline:
            row.notes.append("not started: the budget is spent")
            continue
        _run_entry(row, None if deadline is None else deadline - reserve, data_dir, device,
                   jobs, say)
    return rows


def _run_entry(row: Progress, deadline: float | None, data_dir: str | None, device: str,
               jobs: int, say: Callable[[str], None]) -> None:
    from hpo import runner
    from hpo.nn import data as data_mod

    entry = row.entry
    study = entry.load()
    if entry.data_subdir:
        data_dir = str(Path(data_dir or data_mod.default_data_dir()) / entry.data_subdir)
    try:
        data_mod.ensure_available(study.config["dataset"], study.data_folder(data_dir),
                                  download=False)
    except HpoError as exc:
        row.state = f"skipped: {exc}"
        row.notes.append(f"skipped: {exc}")
        say(f"campaign: {entry.folder}: skipped: {exc}")
        return
    workers = entry.jobs or jobs
    entry.folder.mkdir(parents=True, exist_ok=True)
    _widen_if_needed(entry, study, say)
    say(f"campaign: {entry.folder}: {row.left} of {row.total} runs to go "
        f"(~{row.cpu_h_left:.2f} CPU-h)")
    opts = runner.RunOptions(
        storage_url=entry.url, device=device, jobs=workers, data_dir=data_dir,
        progress=False, command=entry.command(workers), source=entry.study,
        overrides=entry.overrides, save_artifacts=False,
        deadline=deadline,
    )
    from hpo import decide

    runner.run(study, decide.with_hook(opts, study))
    after = progress(entry)
    row.total, row.done = after.total, after.done  # until decided: the total was a guess
    row.cpu_s_per_run, row.measured = after.cpu_s_per_run, after.measured
    row.state = after.state
    if row.left == 0:
        _render_if_needed(row, say)
    else:
        say(f"campaign: {entry.folder}: stopped by the budget, {row.left} runs left")


def _widen_if_needed(entry: Entry, study: spec.Study, say: Callable[[str], None]) -> None:
    """A study file whose grid gained choices since its trials were stored (another reading of
    what the seed leaves open): rewrite the trials file so the stored runs take the wider grid,
    and the runner adds only the new cells to the same study."""
    from hpo.schema import IDENTITY_ATTR
    from hpo.store import journal

    path = entry.folder / TRIALS_FILE
    if not path.exists():
        return
    study_obj = store.load_study(store.open_storage(entry.url, create=False), entry.name)
    stored = study_obj.user_attrs.get(IDENTITY_ATTR) or {}
    identity = json.loads(json.dumps(study.identity()))
    if stored.get("space") == identity["space"] or spec.identity_diff(stored, identity) or \
            not spec.grid_extends(stored.get("space") or [], identity["space"]):
        return  # the same grid, or another change the runner refuses with its own message
    choices = {p["key"]: p["choices"] for p in identity["space"] if p["type"] == "categorical"}
    kept = journal.widen_choices(path, entry.name, choices, identity)
    say(f"campaign: {entry.folder}: grid widened "
        f"({spec.added_choices(stored['space'], identity['space'])}); its {kept} stored "
        "trials kept")


def _render_if_needed(row: Progress, say: Callable[[str], None]) -> None:
    """Write the entry's report when it is missing or differs from what its trials give."""
    from hpo.reporting import committed

    folder = row.entry.folder
    formats = ["md", "csv", "tex"]
    try:
        if (folder / "README.md").exists() and not committed.check(folder, formats):
            return
        committed.render(folder, formats)
    except HpoError as exc:
        row.state = "failed: report"
        row.notes.append(f"report not written: {exc}")
        say(f"campaign: {folder}: report not written: {exc}")
        return
    row.notes.append("report written from its trials")
    say(f"campaign: {folder}: report written")
