"""The LBNL air-handling-unit days (``shared/data/lbnl_ahu_fdd``): each labelled day, its warm-up days, its replay.

What :mod:`.lbnl` scores: one :class:`Day` per labelled day of each file (its fault type from
LBNL's inventory, :data:`FAULT_DAYS`), the tuning / held-out split of the days
(:func:`split_of`), the tags monitored (measurements, not schedules), and a day's
:class:`~.replay.Recording`: its warm-up days moved in time to end where it starts, then the day.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..records import FloatArray
from .datasets import LBNL_FILES, load_lbnl
from .replay import Recording, resolutions

DAY_S = 86_400.0
PERIOD_S = 60.0
SETTLE_ROWS = 30
"""Minutes at the start of a scored day run as warm-up (not scored): the seam between two days' midnights."""
EXCLUDED_COLUMN_WORDS = ("Set Point", "Fan Status", "Occupancy")
"""Columns left out: schedules and commands from the building's program, not measurements."""

ASSET_WARMUP_ROWS = 1440
"""Minutes in a warm-up day: the asset-level model learns from every one it is not paused in (its buffer)."""
WARMUP_DAYS = 1
"""Fault-free days replayed before each scored day (the nearest ones, fewer where a file has fewer)."""
MODE_WORDS = ("Supply Air Fan Status", "Occupancy")
"""Columns the operating-mode configuration adds as tags: its rules read them."""
MODE_HOLDOFF_S = 1800.0
"""Detection waits this long after an AHU starts, stops or changes occupancy: an air handler's start-up
(pre-cooling or warm-up of the zone) takes tens of minutes; set from that, not from the labels."""

FAULT_DAYS: dict[tuple[str, str], tuple[str, str]] = {
    # SZCAV (inventory table 3-3)
    ("SZCAV", "2017-03-11"): ("cooling coil valve stuck", "fully closed"),
    ("SZCAV", "2017-03-12"): ("cooling coil valve stuck", "fully open"),
    ("SZCAV", "2017-03-31"): ("cooling coil valve stuck", "50 % open"),
    ("SZCAV", "2017-03-15"): ("cooling coil valve leaking", "5 % of max flow"),
    ("SZCAV", "2017-03-16"): ("cooling coil valve leaking", "50 % of max flow"),
    ("SZCAV", "2017-03-18"): ("outdoor-air damper stuck", "fully open"),
    ("SZCAV", "2017-03-19"): ("outdoor-air damper stuck", "50 % open"),
    ("SZCAV", "2017-03-20"): ("outdoor-air damper leaking", "20 % of max flow"),
    ("SZCAV", "2017-03-21"): ("outdoor-air damper leaking", "50 % of max flow"),
    ("SZCAV", "2017-03-22"): ("heating coil valve leaking", "5 % of max flow"),
    ("SZCAV", "2017-03-23"): ("heating coil valve leaking", "40 % of max flow"),
    ("SZCAV", "2017-03-24"): ("heating coil valve stuck", "fully closed"),
    ("SZCAV", "2017-03-25"): ("heating coil valve stuck", "fully open"),
    ("SZCAV", "2017-03-26"): ("heating coil valve stuck", "50 % open"),
    # SZVAV (table 3-4)
    ("SZVAV", "2017-09-11"): ("cooling coil valve leaking", "50 % of max flow"),
    ("SZVAV", "2017-09-12"): ("heating coil valve leaking", "40 % of max flow"),
    ("SZVAV", "2017-09-14"): ("heating coil valve stuck", "fully open"),
    ("SZVAV", "2017-09-15"): ("heating coil valve stuck", "50 % open"),
    ("SZVAV", "2017-09-18"): ("outdoor-air damper stuck", "minimum position"),
    ("SZVAV", "2017-09-19"): ("outdoor-air damper stuck", "fully open"),
    ("SZVAV", "2017-09-22"): ("cooling coil valve stuck", "fully open"),
    # MZVAV-2-1 (table 2-2, experimental)
    ("MZVAV-2-1", "2007-08-28"): ("heating coil valve leaking", "stage 1: 0.4 GPM"),
    ("MZVAV-2-1", "2007-08-29"): ("heating coil valve leaking", "stage 2: 1.0 GPM"),
    ("MZVAV-2-1", "2007-08-30"): ("heating coil valve leaking", "stage 3: 2.0 GPM"),
    # MZVAV-2-2 (table 2-2, second part)
    ("MZVAV-2-2", "2007-08-28"): ("heating coil valve leaking", "stage 1: 0.4 GPM"),
    ("MZVAV-2-2", "2007-08-29"): ("heating coil valve leaking", "stage 2: 1.0 GPM"),
    ("MZVAV-2-2", "2007-08-30"): ("heating coil valve leaking", "stage 3: 2.0 GPM"),
    ("MZVAV-2-2", "2007-08-31"): ("cooling coil valve stuck", "fully open"),
    ("MZVAV-2-2", "2007-09-01"): ("cooling coil valve stuck", "15 % open"),
    ("MZVAV-2-2", "2007-09-02"): ("cooling coil valve stuck", "65 % open"),
    ("MZVAV-2-2", "2008-05-06"): ("cooling coil valve stuck", "fully closed"),
    ("MZVAV-2-2", "2008-05-15"): ("cooling coil valve stuck", "fully open"),
    ("MZVAV-2-2", "2007-09-05"): ("outdoor-air damper stuck", "partly open"),
    ("MZVAV-2-2", "2007-09-06"): ("outdoor-air damper stuck", "partly open"),
    ("MZVAV-2-2", "2008-02-12"): ("outdoor-air damper stuck", "fully closed"),
    ("MZVAV-2-2", "2008-05-07"): ("outdoor-air damper stuck", "fully closed or 40 % open"),
    ("MZVAV-2-2", "2008-05-08"): ("outdoor-air damper stuck", "partly open"),
}
"""(file, ISO date) → (fault type, intensity), from LBNL's inventory; days not listed are fault-free there."""


@dataclass(frozen=True, slots=True)
class Day:
    """One whole test day of one AHU file: values (minutes × tags) on its 60 s grid."""

    file: str
    date: str
    tags: tuple[str, ...]
    timestamps: FloatArray
    values: FloatArray
    faulted: bool

    @property
    def fault_type(self) -> str | None:
        if not self.faulted:
            return None
        return FAULT_DAYS.get((self.file, self.date), ("unknown fault", ""))[0]


def lbnl_days(
    data_dir: Path | None = None, files: Sequence[str] = LBNL_FILES, *, mode_tags: bool = False, setpoints: bool = False
) -> list[Day]:
    """Every labelled day of the files (channels of :func:`monitored` columns), in file and date order.

    ``mode_tags`` adds the fan status and the occupancy indicator, which operating-mode rules read;
    ``setpoints`` the supply-air temperature set points, which the Guideline 36 conditions read.
    """
    out = []
    for file in files:
        stretches: dict[str, list[Any]] = {}
        for s in load_lbnl(data_dir, files=(file,)):
            ch = s.meta["channel"]
            if (
                monitored(ch)
                or (mode_tags and any(w in ch for w in MODE_WORDS))
                or (setpoints and "Supply Air Temperature" in ch and "Set Point" in ch)
            ):
                stretches.setdefault(s.name.rsplit("/", 1)[0], []).append(s)
        for channels in stretches.values():
            ts = channels[0].timestamps
            values = np.stack([c.values for c in channels], axis=1)
            labels = channels[0].labels
            assert labels is not None
            tags = tuple(tag_name(file, c.meta["channel"]) for c in channels)
            day_index = np.floor(ts / DAY_S).astype(np.int64)
            for d in np.unique(day_index).tolist():
                rows = np.flatnonzero(day_index == d)
                date = dt.datetime.fromtimestamp(d * DAY_S, dt.UTC).date().isoformat()
                out.append(Day(file, date, tags, ts[rows], values[rows], bool(labels[rows].any())))
    return out


SPLITS = ("tuning", "heldout")


def split_of(day: Day, days: Sequence[Day]) -> str:
    """``"tuning"`` or ``"heldout"``: the day's place among its file's days of the same label, in date order,
    alternating from tuning (see the module docstring for why this split).

    >>> mk = lambda d, f: Day("A", d, (), np.zeros(0), np.zeros((0, 0)), f)
    >>> ds = [mk("2020-01-01", True), mk("2020-01-02", False), mk("2020-01-03", True), mk("2020-01-04", False)]
    >>> [split_of(d, ds) for d in ds]
    ['tuning', 'tuning', 'heldout', 'heldout']
    """
    same = sorted(d.date for d in days if d.file == day.file and d.faulted == day.faulted)
    return SPLITS[same.index(day.date) % 2]


def monitored(column: str) -> bool:
    """Whether a column is a measurement or control signal the daemon would watch (see the module docstring).

    >>> monitored("AHU: Supply Air Temperature"), monitored("AHU: Supply Air Temperature Set Point")
    (True, False)
    """
    return not any(w in column for w in EXCLUDED_COLUMN_WORDS)


def tag_name(file: str, column: str) -> str:
    name = column.strip().removeprefix("AHU:").strip().lower()
    return f"{file}.{'_'.join(name.split())}"


def warm_up_day(day: Day, days: Sequence[Day]) -> Day | None:
    """The fault-free day of the same file nearest in date to ``day`` (not ``day`` itself; ties: the earlier)."""
    near = warm_up_days(day, days, 1)
    return near[0] if near else None


def warm_up_days(day: Day, days: Sequence[Day], count: int) -> list[Day]:
    """Up to ``count`` fault-free days of the same file nearest in date to ``day`` (never ``day`` itself; ties:
    the earlier), the nearest *last*: it is the one replayed right before the scored day."""
    target = dt.date.fromisoformat(day.date)
    candidates = [d for d in days if d.file == day.file and not d.faulted and d.date != day.date]
    near = sorted(candidates, key=lambda d: (abs((dt.date.fromisoformat(d.date) - target).days), d.date))
    return near[:count][::-1]


def day_recording(day: Day, warm_up: Day | Sequence[Day]) -> Recording:
    """The warm-up day(s) moved to end where ``day`` starts (in the order given), then ``day``: one stream, the
    warm-up rows unscored."""
    warms = [warm_up] if isinstance(warm_up, Day) else list(warm_up)
    start = float(day.timestamps[0])
    w_start = start - len(warms) * DAY_S
    d_grid = np.rint((day.timestamps - start) / PERIOD_S).astype(np.int64)
    day_rows = int(DAY_S / PERIOD_S)
    w_rows = len(warms) * day_rows
    n = w_rows + int(d_grid[-1]) + 1
    values = np.full((n, len(day.tags)), np.nan)
    present = np.zeros(n, dtype=bool)
    train_parts = []
    for b, warm in enumerate(warms):
        w_grid = np.rint((warm.timestamps - float(warm.timestamps[0])) / PERIOD_S).astype(np.int64)
        # A warm-up day shorter than 24 h ends at its own last minute, right before the next day.
        offset = (b + 1) * day_rows - 1 - int(w_grid[-1])
        values[offset + w_grid] = warm.values
        present[offset + w_grid] = True
        train_parts.append(warm.values)
    values[w_rows + d_grid] = day.values
    present[w_rows + d_grid] = True
    # The scored day's first minutes warm up too: the stream jumps from one day's midnight to another's.
    warm_rows = int(present[: w_rows + SETTLE_ROWS].sum())
    train = np.concatenate(train_parts)
    return Recording(
        name=f"{day.file}/{day.date}",
        asset=day.file,
        tags=day.tags,
        units=tuple("degF" if "temperature" in t else "" for t in day.tags),
        timestamps=w_start + PERIOD_S * np.arange(n, dtype=np.float64),
        values=values,
        present=present,
        train_rows=warm_rows,
        min_spread=resolutions(train),
        period_s=PERIOD_S,
    )
