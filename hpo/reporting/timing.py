"""Which time a report's time columns and time heat map show: CPU time where workers ran
trials side by side (wall time then counts the wait for shared cores), else wall time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from hpo.reporting.tables import Summary
from hpo.schema import COMMAND_ATTR

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class TimeBasis:
    """Which time a report's time columns and time heat map show, and why."""

    metric: str  # "wall_time" or "cpu_time"
    side_by_side: bool  # workers ran trials at the same time
    note: str  # one sentence for the report

    @property
    def label(self) -> str:
        return "CPU time" if self.metric == "cpu_time" else "wall time"


def _jobs(command: str) -> int:
    """``--jobs N`` of a stored ``hpo run`` command (1 when absent or unreadable)."""
    import shlex

    try:
        words = shlex.split(command or "")
    except ValueError:
        return 1
    for i, word in enumerate(words):
        value = (words[i + 1] if word == "--jobs" and i + 1 < len(words) else
                 word.split("=", 1)[1] if word.startswith("--jobs=") else None)
        if value is not None:
            try:
                return int(value)
            except ValueError:
                return 1
    return 1


def overlapping(frame: pd.DataFrame) -> bool:
    """Whether any two complete trials ran at the same time (start before another's end)."""
    done = frame[frame["state"] == "COMPLETE"].dropna(
        subset=["datetime_start", "datetime_complete"])
    latest_end = None
    for start, end in sorted(zip(done["datetime_start"], done["datetime_complete"])):
        if latest_end is not None and start < latest_end:
            return True
        latest_end = end if latest_end is None else max(latest_end, end)
    return False


def time_basis(summary: Summary) -> TimeBasis:
    """CPU time when workers ran side by side (wall time then counts the wait for shared
    cores) and every complete run recorded it; wall time otherwise, saying why."""
    import pandas as pd

    done = summary.frame[summary.frame["state"] == "COMPLETE"]
    timed = done.dropna(subset=["datetime_start", "datetime_complete"])
    # The trials' own times say whether they overlapped (any number of machines); the stored
    # command's --jobs is only a hint (hpo caps it at the usable cores) for stores without them.
    side = (overlapping(summary.frame) if len(timed) >= 2
            else _jobs(summary.attrs.get(COMMAND_ATTR, "")) > 1)
    cpu = pd.to_numeric(done["cpu_time"], errors="coerce") if "cpu_time" in done else None
    has_cpu = cpu is not None and len(done) > 0 and bool(cpu.notna().all())
    if side and has_cpu:
        return TimeBasis("cpu_time", True, (
            "Workers ran side by side, so time is CPU time (process CPU seconds of a trial, all "
            "its threads): wall time would include waiting for cores the workers shared."))
    if side:
        return TimeBasis("wall_time", True, (
            "Workers ran side by side, but this store's trials have no CPU time (`cpu_time`, "
            "recorded by newer hpo), so time is wall time and includes waiting for cores the "
            "workers shared."))
    return TimeBasis("wall_time", False, "Time is wall time; one trial ran at a time.")
