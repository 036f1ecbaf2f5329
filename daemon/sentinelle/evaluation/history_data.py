"""``--data`` of the offline commands (finetune, backtest): plant history → one regular-grid series per tag.

The files are read by the daemon's own history readers
(:mod:`sentinelle.sources.history`), so a date, a decimal comma or a malformed
row means the same here as in the start-up backfill; this module only turns
their :class:`~sentinelle.records.Sample` records into arrays.

* ``path`` is a CSV file or a folder of CSV files (every ``*.csv``, sorted by
  name; a tag may continue from one file into the next).  A file whose header
  has the columns *parameter name* and *new value* is an event log
  (``csv_events``), anything else a wide sparse export (``csv_wide``: a date
  column, then one column per tag, an empty cell meaning "unchanged").
* Samples of Bad or Uncertain quality, non-numbers and non-finite values are
  skipped; of two samples with the same timestamp the first wins (as the live
  windows do).
* Resampling is the windows' rule: slot ``k`` ends at ``k·period`` and holds the
  last sample at or before its end (sample-and-hold, as historians do).  Unlike
  the live path, a held value does not expire unless ``max_hold_s`` is given:
  an export writes a row only when something changed, so a long-held value is
  data, not silence.
* **Held points**: a point whose slot received no **read** sample — only a
  compressed export's forward-filled cell, or the windows' own sample-and-hold
  between an event log's rows (:func:`~sentinelle.sources.history.held_mask`) —
  is marked in ``Series.held``, and each tag's deadband (the source's ``deadband``
  setting, else the readers' estimate from the export's own steps; the widest when
  a tag spans several sources) in ``Series.deadband``: ``sentinelle finetune``
  takes a held point for a target known only to within ±deadband, not for a
  measurement (the adapter would learn "flat" from the export's deadband).
* ``period_s`` per tag comes from ``periods`` (the daemon's tag settings), else
  ``default_period_s``, else the most common spacing of the rows' dates (all
  tags together; the shortest on a tie).  That is the export's row interval for
  a wide file; an event log of irregular changes needs the period given.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "wide.csv"
>>> _ = path.write_text("date;flow;power\\n2024-01-01 00:00:00;60,5;\\n2024-01-01 00:00:10;;410\\n"
...                     "2024-01-01 00:00:30;61;412\\n")
>>> [(s.name, s.period_s, s.values.tolist()) for s in load_history(path)]
[('flow', 10.0, [60.5, 60.5, 60.5, 61.0]), ('power', 10.0, [410.0, 410.0, 412.0])]
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import math
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from ..errors import ConfigError, ServiceUnavailable, SourceError
from ..records import Quality, Sample
from ..settings import CsvEventsSource, CsvWideSource, HistorySource
from .datasets import Series, load_electricity
from .heldout import ELECTRICITY_HELDOUT_FROM_TS

log = logging.getLogger(__name__)

DATASETS = ("electricity",)
"""Names accepted by ``--dataset``."""


def load_history(
    path: Path,
    *,
    tags: Collection[str] | None = None,
    periods: Mapping[str, float] | None = None,
    units: Mapping[str, str] | None = None,
    default_period_s: float | None = None,
    max_hold_s: float | None = None,
    timezone: str = "UTC",
) -> list[Series]:
    """Every tag (or only ``tags``) of the CSV file or folder at ``path``, resampled; sorted by name.

    ``periods`` and ``units`` come from the daemon's tag settings (by tag name).
    """
    from pydantic import ValidationError

    try:
        sources: list[HistorySource] = [
            CsvEventsSource(path=f, timezone=timezone) if _is_event_log(f) else CsvWideSource(path=f, timezone=timezone)
            for f in _files(path)
        ]
    except ValidationError as e:  # the one setting given here besides the path: --timezone
        raise ConfigError(str(e.errors()[0]["msg"]), field="--timezone") from None
    return load_sources(
        sources,
        tags=tags,
        periods=periods,
        units=units,
        default_period_s=default_period_s,
        max_hold_s=max_hold_s,
        where=str(path),
    )


def load_sources(
    sources: Sequence[HistorySource],
    *,
    tags: Collection[str] | None = None,
    periods: Mapping[str, float] | None = None,
    units: Mapping[str, str] | None = None,
    default_period_s: float | None = None,
    max_hold_s: float | None = None,
    start: float | None = None,
    end: float | None = None,
    where: str | None = None,
) -> list[Series]:
    """Every tag (or only ``tags``) of configured history sources, resampled; sorted by name.

    The sources are read by the daemon's own :class:`~sentinelle.sources.history.HistoryReader`
    with their whole configuration (format, columns, ``tag_map``, time zone), so the
    offline commands see the same tags under the same names as the start-up backfill;
    ``start``/``end`` (epoch seconds, ``start <= ts < end``) are passed to the readers,
    which read no further than they need to.  A tag may continue from one source into
    the next (sources are read in order).
    """
    from ..sources.history import HistoryReader, held_mask

    async def read(source: HistorySource) -> tuple[list[tuple[Sample, int]], int, dict[str, float]]:
        reader = HistoryReader(source)
        out = [
            pair
            async for chunk in reader.chunks(start=start, end=end, tags=tags)
            for pair in zip(chunk, held_mask(chunk), strict=True)
        ]
        return out, reader.report.malformed, reader.report.deadbands()

    by_tag: dict[str, list[tuple[float, float]]] = defaultdict(list)
    read_by_tag: dict[str, list[bool]] = defaultdict(list)
    deadbands: dict[str, float] = {}
    for source in sources:
        try:
            samples, malformed, source_deadbands = asyncio.run(read(source))
        except ServiceUnavailable as e:
            if source.kind == "postgres":  # the database is down or refuses us: exit 69, as the daemon's start
                raise
            raise ConfigError(str(e)) from None  # an export without a header, unreadable: the file (it names it)
        except SourceError as e:
            raise ConfigError(str(e), field=f"history {source.label}") from None
        for tag, deadband in source_deadbands.items():  # a tag in several sources: the widest (least precise)
            deadbands[tag] = max(deadband, deadbands.get(tag, 0.0))
        unusable: dict[str, int] = defaultdict(int)
        for s, held in samples:
            value, why = _usable(s)
            if value is None:
                unusable[why] += 1
                continue
            by_tag[s.tag].append((s.source_ts, value))
            read_by_tag[s.tag].append(not held)
        if malformed:
            log.warning("%s: %d malformed rows or cells skipped (see the log above)", _place(source), malformed)
        if unusable:
            counts = ", ".join(f"{n} {why}" for why, n in sorted(unusable.items()))
            log.warning("%s: %d samples skipped: %s", _place(source), sum(unusable.values()), counts)
    where = where or ", ".join(_place(s) for s in sources)
    if tags is not None:
        absent = sorted(set(tags) - set(by_tag))
        if absent:
            raise ConfigError(f"no usable samples of {absent} in {where}", field="data")
    if not by_tag:
        raise ConfigError(f"no usable samples in {where}", field="data")
    inferred: float | None = None
    out = []
    for tag in sorted(by_tag):
        _log_time_order(tag, by_tag[tag], where)
        period = (periods or {}).get(tag) or default_period_s
        if period is None:
            inferred = inferred or common_spacing([t for samples in by_tag.values() for t, _ in samples])
            period = inferred
        series = resample(tag, by_tag[tag], period, max_hold_s, read=read_by_tag[tag])
        out.append(dataclasses.replace(series, unit=(units or {}).get(tag, ""), deadband=deadbands.get(tag)))
    return out


def _place(source: HistorySource) -> str:
    path = getattr(source, "path", None)
    return str(path) if path is not None else source.label


def common_spacing(timestamps: Iterable[float]) -> float:
    """The most common gap between distinct timestamps (the shortest on a tie).

    >>> common_spacing([0.0, 10.0, 30.0, 40.0, 40.0, 60.0])
    10.0
    """
    ts = np.unique(np.asarray(list(timestamps), dtype=np.float64))
    if len(ts) < 2:
        raise ConfigError("fewer than two distinct dates: give the period (--period-s)", field="data")
    gaps, counts = np.unique(np.round(np.diff(ts), 6), return_counts=True)
    return float(gaps[np.argmax(counts)])  # argmax takes the first, i.e. shortest, of equal counts


def load_dataset(name: str, data_dir: Path | None = None) -> list[Series]:
    """A named public dataset as the offline commands see it: ``electricity`` → its daily load (MW)."""
    if name == "electricity":
        return [load_electricity(data_dir, columns=("load_mw_mean",))["load_mw_mean"]]
    raise ConfigError(f"unknown dataset {name!r} (known: {', '.join(DATASETS)})", field="dataset")


def dataset_training_cutoff(name: str) -> float | None:
    """Epoch second from which a dataset's data is held out of any training (``evaluation.heldout``)."""
    return ELECTRICITY_HELDOUT_FROM_TS if name == "electricity" else None


def resample(
    tag: str,
    samples: list[tuple[float, float]],
    period_s: float,
    max_hold_s: float | None = None,
    *,
    read: Sequence[bool] | None = None,
) -> Series:
    """``(ts, value)`` samples of one tag → a :class:`Series` on the slots ``k·period`` (see the module docstring).

    ``read`` (per sample: measured, not a held repeat) marks ``Series.held``: the slots
    with no read sample in ``((k−1)·p, k·p]``.

    >>> resample("t", [(0.5, 1.0), (2.0, 2.0), (2.0, 9.0), (5.2, 3.0)], 1.0).values.tolist()
    [1.0, 2.0, 2.0, 2.0, 2.0, 3.0]
    >>> resample("t", [(0.0, 1.0), (5.0, 2.0)], 1.0, max_hold_s=2.0).values.tolist()
    [1.0, 1.0, 1.0, nan, nan, 2.0]
    >>> resample("t", [(0.0, 1.0), (1.0, 1.0), (3.0, 2.0)], 1.0, read=[True, False, True]).held.tolist()
    [False, True, True, False]
    """
    flags = np.ones(len(samples), dtype=bool) if read is None else np.asarray(read, dtype=bool)
    order = sorted(range(len(samples)), key=lambda i: samples[i][0])
    data = np.array([samples[i] for i in order], dtype=np.float64).reshape(-1, 2)
    flags = flags[np.array(order, dtype=np.intp)]
    ts, values = data[:, 0], data[:, 1]
    keep = np.concatenate(([True], np.diff(ts) > 0))  # sorted is stable: the first of equal stamps wins
    ts, values, flags = ts[keep], values[keep], flags[keep]
    first, last = math.ceil(ts[0] / period_s - 1e-9), math.ceil(ts[-1] / period_s - 1e-9)
    slot_end = period_s * np.arange(first, last + 1, dtype=np.float64)
    at = np.searchsorted(ts, slot_end + 1e-9 * period_s, side="right") - 1
    grid = np.where(at >= 0, values[np.maximum(at, 0)], np.nan)
    if max_hold_s is not None:
        grid = np.where(slot_end - ts[np.maximum(at, 0)] > max_hold_s, np.nan, grid)
    held = None
    if read is not None:
        slots = np.ceil(ts[flags] / period_s - 1e-9).astype(np.int64) - first
        changed = np.zeros(len(slot_end), dtype=bool)
        changed[slots[(slots >= 0) & (slots < len(slot_end))]] = True
        held = np.isfinite(grid) & ~changed
    return Series(name=tag, dataset="history", values=grid, timestamps=slot_end, period_s=float(period_s), held=held)


def cut(series: list[Series], *, start: float | None = None, end: float | None = None) -> list[Series]:
    """The points with ``start <= ts < end`` of every series (series left empty are dropped)."""
    out = []
    for s in series:
        lo = 0 if start is None else int(np.searchsorted(s.timestamps, start, side="left"))
        hi = len(s) if end is None else int(np.searchsorted(s.timestamps, end, side="left"))
        if hi > lo:
            out.append(s.slice(lo, hi))
    return out


def parse_date(text: str) -> float:
    """A command-line date or date-time (ISO 8601; without an offset it is UTC) → epoch seconds.

    >>> parse_date("2014-10-31"), parse_date("2024-01-01T00:00:10+01:00")
    (1414713600.0, 1704063610.0)
    """
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"not an ISO date or date-time: {text!r}", field="date") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() == ".csv" and p.is_file())
        if not files:
            raise ConfigError("folder holds no .csv file", field=str(path))
        return files
    if not path.is_file():
        raise ConfigError("file or folder not found", field=str(path))
    return [path]


def _is_event_log(path: Path) -> bool:
    """The event-log export names its columns; the wide export has one column per tag."""
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as f:
            header = " ".join(f.readline().lower().split())
    except OSError as e:
        raise ConfigError(f"cannot read: {e.strerror}", field=str(path)) from None
    return "parameter name" in header and "new value" in header


def _usable(s: Sample) -> tuple[float | None, str]:
    """The sample's value, or None and why it cannot be used (the reason is counted and logged)."""
    if s.quality != Quality.GOOD:
        return None, f"of {s.quality.name} quality"
    if isinstance(s.value, str) or s.value is None:
        return None, "not numeric"
    value = float(s.value)
    return (value, "") if math.isfinite(value) else (None, "NaN or infinite")


def _log_time_order(tag: str, samples: Sequence[tuple[float, float]], where: str) -> None:
    """Warn of samples out of time order (resampling sorts them) and of repeated stamps (it keeps the first).

    Both are legal in an export (a merge of files, a clock set back, the autumn hour in local time)
    but change what the model sees, so they are counted rather than fixed silently.
    """
    ts = np.fromiter((t for t, _ in samples), dtype=np.float64, count=len(samples))
    backward = int(np.count_nonzero(np.diff(ts) < 0))
    repeated = len(ts) - len(np.unique(ts))
    if backward or repeated:
        log.warning(
            "%s in %s: %d samples earlier than the one before (sorted), %d with a timestamp already seen "
            "(the first read is kept)",
            tag,
            where,
            backward,
            repeated,
        )
