"""Plant history in: CSV exports, Parquet files and a PostgreSQL historian → chunks of :class:`Sample`.

The backfill (``backfill.py``) and offline tools read a plant's past through these
readers, and they produce exactly what the live OPC-UA source produces — frozen
:class:`~sentinelle.records.Sample` records — so the same ``Windows`` resample them
and the same checks (quality, finiteness, order) count what they skip.  Files are
read as streams: a reader holds one chunk (``chunk_samples``) and the per-tag
state, never the file, so a multi-gigabyte export costs no more memory than a
small one.

The four formats
----------------
* **Event log CSV** (``csv_events``): one row per change, with the columns
  *date*, *parameter name*, *value* and *new value*.  *value* is the parameter's
  value **before** the change and *new value* the value **after** it: the row's
  sample is the new value at the row's date.  A parameter's first row also tells
  what it held before (the old value); that seeds the tag: a sample of the old
  value is emitted at the previous row date of the export (or the read's start,
  whichever is later), so the tag is known from there instead of only from its
  first change.  An unreadable old value only loses the seed.
* **Wide sparse CSV** (``csv_wide``): a date column (the first, unless named),
  then one column per tag.  An empty cell means "unchanged since the previous
  row": every row emits the held value of every tag already known (forward
  fill); a tag starts at its first non-empty cell.  A cell that cannot be read,
  or holds NaN/inf, ends the held value: the tag is unknown until its next
  readable cell, because forward-filling past an unreadable change would invent
  data.
* **Parquet** (``parquet``): long — columns ``tag, ts, value[, quality]``, one
  sample per row — or wide, with the same forward-fill rule as the wide CSV
  (null = unchanged).
* **PostgreSQL** (``postgres``): a historian table ``(tag, ts, value, quality)``
  (names configurable), read with asyncpg through a server-side cursor inside a
  read-only transaction, ``chunk_rows`` rows per round trip, filtered in SQL by
  tag list and time range and ordered by time.

One rule for dates, numbers and names
-------------------------------------
* **Dates**: ISO 8601 (``2024-03-31 02:30:00``, ``2024-03-31T02:30:00.250+02:00``,
  ``…Z``, a bare date is midnight) or day-first ``dd/mm/yyyy hh:mm[:ss[.fff]]``
  (``31/03/2024 02:30``), each optionally followed by ``Z`` or ``±hh:mm``.  A date
  with an offset is taken as written.  A date **without** one is wall-clock time
  in the source's ``timezone`` (IANA name, default UTC); inside a daylight-saving
  change it takes the offset in force *before* the change (``fold=0``): repeated
  autumn hours land on their first occurrence (the repeats then fail the windows'
  order check and are counted), and skipped spring times shift by the change.
  Export in UTC when you can.  Parquet timestamps with a zone and PostgreSQL
  ``timestamptz`` are exact; zone-less ones follow the same rule; numeric time
  columns are seconds since the Unix epoch.
* **Numbers**: spaces (also no-break and narrow no-break spaces) are thousands
  separators and removed; one ``,`` or ``.`` is the decimal separator; when both
  appear, the last one is the decimal separator and the other groups thousands
  (``1.234,5`` and ``1,234.5`` are both 1234.5).  ``true``/``false`` are 1/0;
  ``nan``/``inf`` are read as such and counted later by the windows (``non_finite``).
* **CSV layout**: UTF-8 by default (a byte-order mark is skipped); the separator
  is ``;`` if the header line contains one, else a tab if it contains one, else
  ``,`` (or set ``delimiter``); fields may be quoted.  Header names match the
  configured column names ignoring case and repeated spaces.  Blank lines are
  ignored; separators after the last column are ignored when the fields they
  open are empty.
* **Names**: a column or parameter name is stripped of surrounding spaces and
  then mapped by ``tag_map`` (export name → configured tag name); names not in
  the map are used as they are.  A read may ask for a set of tags: other tags are
  not read (as a SQL ``WHERE`` would not return them) and are only counted in
  :attr:`HistoryReport.other_tags`, not as drops.
* **Quality**: NULL or absent is Good; integers 0, 1, 2 are sentinelle's Good,
  Uncertain, Bad; other integers are OPC-UA StatusCodes (their top two bits);
  strings starting with Good / Uncertain / Bad (OPC-UA status names) likewise;
  anything else is Bad.  Bad and Uncertain samples are skipped and counted by
  the windows, as live ones are.
* **Time range**: a read may have a ``start`` and an ``end`` (epoch seconds,
  ``start <= ts < end``).  Rows before ``start`` are not emitted but still set the
  tags' state: when the first row at or after ``start`` comes (or the file ends),
  every known tag's value at ``start`` is emitted, dated ``start`` — so a tag that
  changed an hour before the look-back begins still has its value in it.

Malformed input is reported, counted, and skipped, never silently
------------------------------------------------------------------
A row whose date cannot be read (``malformed_date``), whose value cannot be read
(``malformed_value``; in a wide file only that cell is skipped) or whose number of
fields differs from the header's (``malformed_row``) is skipped.  Each skip is
counted by reason in the reader's :class:`HistoryReport` (and, when the report has
the daemon's metrics, in ``sentinelle_samples_dropped_total{reason}``), located as
``file:line`` (CSV), ``file:row N`` (Parquet) or ``table row N`` (PostgreSQL), and
logged — the first :data:`MAX_LOGGED_PROBLEMS` one by one, the rest in the
summary each reader logs at its end.

Ordering: readers emit rows in the order the file or query gives them.  Exports
are normally in time order; a long Parquet file sorted by tag is not, so the
backfill sorts what it read by time before the windows see it.

An event log, as a plant's historian writes it::

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "events.csv"
    >>> _ = path.write_text(
    ...     "date;parameter name;value;new value\\n"
    ...     "05/03/2024 10:00:00;chw temp;5,0;5,2\\n"
    ...     "05/03/2024 10:00:05;chw temp;5,2;5,1\\n", encoding="utf-8-sig")
    >>> source = CsvEventsSource(path=path, timezone="Europe/Paris", tag_map={"chw temp": "chiller1.chw_temp_c"})
    >>> for chunk in read_csv_events(source):
    ...     for sample in chunk:
    ...         print(sample)
    Sample(tag='chiller1.chw_temp_c', source_ts=1709629200.0, value=5.2, quality=<Quality.GOOD: 0>)
    Sample(tag='chiller1.chw_temp_c', source_ts=1709629205.0, value=5.1, quality=<Quality.GOOD: 0>)
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import csv
import datetime as dt
import logging
import math
import re
import zoneinfo
from collections.abc import AsyncIterator, Callable, Collection, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, Final

from ..errors import SentinelleError, SourceError, SourceUnavailable
from ..metrics import Metrics
from ..records import Quality, Sample
from ..settings import CsvEventsSource, CsvWideSource, HistorySource, ParquetSource, PostgresSource

__all__ = [
    "MAX_LOGGED_PROBLEMS",
    "HistoryReader",
    "HistoryReport",
    "Problem",
    "parse_number",
    "parse_timestamp",
    "quality_of",
    "read_csv_events",
    "read_csv_wide",
    "read_parquet",
    "read_postgres",
    "timezone_of",
]

_log = logging.getLogger(__name__)

MAX_LOGGED_PROBLEMS: Final = 20
"""Malformed rows logged one by one per read; the rest are counted and summarised, so a
systematically broken file cannot flood the journal."""

MAX_KEPT_PROBLEMS: Final = 100
"""Malformed rows kept, with their location, in a :class:`HistoryReport`."""

DEFAULT_CHUNK_SAMPLES: Final = 10_000


# -- the report -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Problem:
    """One skipped row (or wide cell): where, why, and what it said."""

    where: str
    reason: str
    detail: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}: {self.detail}"


@dataclass(slots=True)
class HistoryReport:
    """What one read of one source did: rows read, samples emitted, skips by reason.

    Skips go to ``metrics`` (``samples_dropped_total{reason}``) as they happen when
    the report has the daemon's metrics, so a backfill's skips are visible where the
    live path's are.
    """

    source: str
    metrics: Metrics | None = field(default=None, repr=False)
    rows: int = 0
    """Data rows (PostgreSQL, Parquet: records) read, malformed ones included."""
    samples: int = 0
    skipped: collections.Counter[str] = field(default_factory=collections.Counter)
    problems: list[Problem] = field(default_factory=list)
    """The first :data:`MAX_KEPT_PROBLEMS` skips, with their location."""
    other_tags: int = 0
    """Rows (wide files: columns) of tags the read did not ask for."""

    @property
    def malformed(self) -> int:
        return sum(self.skipped.values())

    def skip(self, reason: str, where: str, detail: str) -> None:
        """Count, keep and (the first few) log one malformed row."""
        self.skipped[reason] += 1
        n = self.malformed
        problem = Problem(where, reason, detail)
        if len(self.problems) < MAX_KEPT_PROBLEMS:
            self.problems.append(problem)
        if n <= MAX_LOGGED_PROBLEMS:
            _log.warning("history %s: skipped %s", self.source, problem)
            if n == MAX_LOGGED_PROBLEMS:
                _log.warning("history %s: further malformed rows are counted, not logged one by one", self.source)
        if self.metrics is not None:
            self.metrics.drop(reason)

    def log_summary(self) -> None:
        skipped = ", ".join(f"{reason} {n}" for reason, n in sorted(self.skipped.items()))
        _log.log(
            logging.WARNING if self.skipped else logging.INFO,
            "history %s: %d rows, %d samples%s%s",
            self.source,
            self.rows,
            self.samples,
            f", skipped {skipped} (first: {self.problems[0]})" if self.skipped else "",
            f", {self.other_tags} rows of tags not asked for" if self.other_tags else "",
        )


# -- values -------------------------------------------------------------------------


def timezone_of(name: str) -> dt.tzinfo:
    """The zone naive dates are read in; ``UTC`` needs no tz database.

    >>> timezone_of("UTC"), timezone_of("Europe/Paris")
    (datetime.timezone.utc, zoneinfo.ZoneInfo(key='Europe/Paris'))
    """
    if name == "UTC":
        return dt.UTC
    return zoneinfo.ZoneInfo(name)


_DAY_FIRST = re.compile(
    r"(\d{1,2})/(\d{1,2})/(\d{4})"
    r"(?:[ T]+(\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,6}))?)?)?"
    r"\s*(Z|[+-]\d{2}(?::?\d{2})?)?"
)


def parse_timestamp(text: str, zone: dt.tzinfo) -> float:
    """Epoch seconds of an ISO 8601 or ``dd/mm/yyyy hh:mm[:ss]`` date; naive dates are in ``zone``.

    >>> paris = timezone_of("Europe/Paris")
    >>> parse_timestamp("2024-01-15 12:00:00", paris), parse_timestamp("15/01/2024 12:00", paris)
    (1705316400.0, 1705316400.0)
    >>> parse_timestamp("2024-01-15T11:00:00Z", paris), parse_timestamp("15/01/2024 13:00:00+02:00", paris)
    (1705316400.0, 1705316400.0)
    """
    s = text.strip()
    if "/" in s:
        m = _DAY_FIRST.fullmatch(s)
        if m is None:
            raise ValueError("not dd/mm/yyyy [hh:mm[:ss]]")
        day, month, year, hour, minute, second, fraction, offset = m.groups()
        when = dt.datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            int((fraction or "0").ljust(6, "0")),
            tzinfo=_offset(offset) if offset else None,
        )
    else:
        if not s[:4].isdigit():
            raise ValueError("not an ISO 8601 date")
        when = dt.datetime.fromisoformat(s)
    if when.tzinfo is None:
        when = when.replace(tzinfo=zone)
    return when.timestamp()


def _offset(text: str) -> dt.tzinfo:
    if text == "Z":
        return dt.UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    minutes = int(digits[:2]) * 60 + int(digits[2:] or 0)
    return dt.timezone(sign * dt.timedelta(minutes=minutes))


_GROUPING_SPACES = str.maketrans("", "", " \u00a0\u202f\u2009")


def parse_number(text: str) -> float:
    """A decimal number with ``.`` or ``,`` as decimal separator and spaces grouping thousands.

    >>> [parse_number(t) for t in ("5,25", "5.25", "1 234,5", "1.234,5", "1,234.5", "-3e2", "TRUE")]
    [5.25, 5.25, 1234.5, 1234.5, 1234.5, -300.0, 1.0]
    """
    s = text.translate(_GROUPING_SPACES)
    if not s:
        raise ValueError("empty")
    low = s.lower()
    if low == "true":
        return 1.0
    if low == "false":
        return 0.0
    if "_" in s:  # float() would read 1_000 as a thousand
        raise ValueError("not a number")
    comma, dot = s.rfind(","), s.rfind(".")
    if comma >= 0:
        if dot >= 0:
            s = s.replace(".", "").replace(",", ".") if comma > dot else s.replace(",", "")
        elif s.count(",") == 1:
            s = s.replace(",", ".")
        else:
            raise ValueError("more than one decimal comma")
    return float(s)


def _number_of(x: object) -> float:
    """A value from Parquet or PostgreSQL as a float (strings by :func:`parse_number`)."""
    if isinstance(x, bool):
        return 1.0 if x else 0.0
    if isinstance(x, (int, float, Decimal)):
        return float(x)
    if isinstance(x, str):
        return parse_number(x)
    raise ValueError("missing" if x is None else f"not a number: {type(x).__name__}")


def quality_of(x: object) -> Quality:
    """The quality rule of the module docstring.

    >>> [quality_of(q).name for q in (None, 0, 2, 0x40000000, 0x80350000, -2147483648, "BadSensorFailure", "??")]
    ['GOOD', 'GOOD', 'BAD', 'UNCERTAIN', 'BAD', 'BAD', 'BAD', 'BAD']
    """
    if x is None:
        return Quality.GOOD
    if isinstance(x, str):
        s = x.strip().casefold()
        if not s:
            return Quality.GOOD
        if s.lstrip("-").isdigit():
            return quality_of(int(s))
        for prefix, q in (("good", Quality.GOOD), ("uncertain", Quality.UNCERTAIN), ("bad", Quality.BAD)):
            if s.startswith(prefix):
                return q
        return Quality.BAD
    if isinstance(x, float) and x.is_integer():
        x = int(x)
    if isinstance(x, int) and not isinstance(x, bool):
        if 0 <= x <= 2:
            return Quality(x)
        # An OPC-UA StatusCode, possibly stored as a signed 32-bit integer.
        severity = ((x & 0xFFFFFFFF) >> 30) & 0b11
        return Quality.GOOD if severity == 0 else Quality.UNCERTAIN if severity == 1 else Quality.BAD
    return Quality.BAD


# -- shared plumbing ------------------------------------------------------------------


class _Chunks:
    """Collects samples and hands them out ``size`` at a time."""

    __slots__ = ("buf", "report", "size")

    def __init__(self, size: int, report: HistoryReport) -> None:
        self.size = size
        self.report = report
        self.buf: list[Sample] = []

    def add(self, sample: Sample) -> None:
        self.buf.append(sample)

    def full(self) -> bool:
        return len(self.buf) >= self.size

    def take(self) -> list[Sample]:
        out, self.buf = self.buf, []
        self.report.samples += len(out)
        return out


def _norm(name: str) -> str:
    return " ".join(name.split()).casefold()


def _open_text(path: Path, encoding: str, label: str) -> IO[str]:
    # utf-8-sig reads plain UTF-8 too and drops a byte-order mark.  Undecodable bytes become
    # U+FFFD, so a bad byte costs one malformed value (counted, with its line), not the file.
    enc = "utf-8-sig" if encoding.replace("_", "-").lower() in ("utf-8", "utf8") else encoding
    try:
        return open(path, encoding=enc, errors="replace", newline="")
    except OSError as e:
        raise SourceUnavailable(f"history {label}: cannot open {path}: {e.strerror or e}") from None
    except LookupError:
        raise SourceUnavailable(f"history {label}: unknown encoding {encoding!r}") from None


def _sniff_delimiter(header_line: str, configured: str) -> str:
    if configured != "auto":
        return configured
    if ";" in header_line:
        return ";"
    if "\t" in header_line:
        return "\t"
    return ","


class _CsvFile:
    """A CSV export opened for streaming: header parsed, rows with their line numbers."""

    def __init__(self, path: Path, delimiter: str, encoding: str, label: str) -> None:
        self.path = path
        self.label = label
        self.f = _open_text(path, encoding, label)
        try:
            header_line = self.f.readline()
        except OSError as e:
            self.f.close()
            raise SourceUnavailable(f"history {label}: cannot read {path}: {e.strerror or e}") from None
        if not header_line.strip():
            self.f.close()
            raise SourceUnavailable(f"history {label}: {path} has no header line")
        self.delimiter = _sniff_delimiter(header_line, delimiter)
        header = next(csv.reader([header_line.lstrip("\ufeff")], delimiter=self.delimiter))
        while header and not header[-1].strip():
            header.pop()  # a separator after the last column
        self.header = header
        self._reader = csv.reader(self.f, delimiter=self.delimiter)

    def column(self, name: str) -> int:
        wanted = _norm(name)
        for i, h in enumerate(self.header):
            if _norm(h) == wanted:
                return i
        raise SourceUnavailable(
            f"history {self.label}: {self.path} has no column {name!r} (header: {self.header}); "
            "set the source's column names"
        )

    def rows(self, report: HistoryReport) -> Iterator[tuple[str, list[str]]]:
        """(``file:line``, fields) of every non-blank row with the header's number of fields."""
        n = len(self.header)
        try:
            for row in self._reader:
                if not any(f.strip() for f in row):
                    continue
                # The header was line 1 and csv counts the lines it read itself.
                where = f"{self.path}:{self._reader.line_num + 1}"
                report.rows += 1
                if len(row) != n and (len(row) < n or any(f.strip() for f in row[n:])):
                    report.skip("malformed_row", where, f"{len(row)} fields, the header has {n}")
                    continue
                yield where, row
        except csv.Error as e:
            raise SourceError(f"history {self.label}: {self.path}: {e}") from None
        except OSError as e:
            raise SourceError(f"history {self.label}: reading {self.path}: {e.strerror or e}") from None

    def close(self) -> None:
        self.f.close()


class _DateReader:
    """:func:`parse_timestamp` with the last answer remembered: an event log repeats each date per tag."""

    __slots__ = ("_last_text", "_last_ts", "zone")

    def __init__(self, zone: dt.tzinfo) -> None:
        self.zone = zone
        # None, not "": an empty first date must be parsed (and refused), not answered with NaN.
        self._last_text: str | None = None
        self._last_ts = math.nan

    def __call__(self, text: str) -> float:
        if text != self._last_text:
            self._last_ts = parse_timestamp(text, self.zone)
            self._last_text = text
        return self._last_ts


def _mapped(name: str, tag_map: Mapping[str, str]) -> str:
    name = name.strip()
    return tag_map.get(name, name)


# -- event log CSV -----------------------------------------------------------------------


def read_csv_events(
    source: CsvEventsSource,
    *,
    start: float | None = None,
    end: float | None = None,
    tags: Collection[str] | None = None,
    report: HistoryReport | None = None,
    chunk_samples: int = DEFAULT_CHUNK_SAMPLES,
) -> Generator[list[Sample], None, None]:
    """Samples of an event-log export (one row per change), in chunks; see the module docstring."""
    report = report if report is not None else HistoryReport(source.label)
    f = _CsvFile(source.path, source.delimiter, source.encoding, source.label)
    try:
        i_date, i_tag = f.column(source.date_column), f.column(source.tag_column)
        i_old, i_new = f.column(source.value_column), f.column(source.new_value_column)
        date_of = _DateReader(timezone_of(source.timezone))
        out = _Chunks(chunk_samples, report)
        state: dict[str, float] = {}
        start_pending = start is not None
        latest: float | None = None  # the latest date read so far: where a first row's old value is seeded
        for where, row in f.rows(report):
            name = row[i_tag].strip()
            if not name:
                report.skip("malformed_row", where, "empty parameter name")
                continue
            tag = source.tag_map.get(name, name)
            if tags is not None and tag not in tags:
                report.other_tags += 1
                continue
            try:
                ts = date_of(row[i_date])
            except ValueError:
                report.skip("malformed_date", where, repr(row[i_date]))
                continue
            try:
                new = parse_number(row[i_new])
            except ValueError:
                report.skip("malformed_value", where, f"new value {row[i_new]!r}")
                continue
            if end is not None and ts >= end:
                continue
            if start is not None and ts < start:
                state[tag] = new
                latest = ts if latest is None else max(latest, ts)
                continue
            if start_pending and start is not None:
                start_pending = False
                for known, value in state.items():
                    out.add(Sample(known, start, value))
            if tag not in state:
                seed_at = latest if start is None else start if latest is None else max(latest, start)
                if seed_at is not None and seed_at < ts:
                    # Documented: an unreadable old value only loses the seed.
                    with contextlib.suppress(ValueError):
                        out.add(Sample(tag, seed_at, parse_number(row[i_old])))
            state[tag] = new
            latest = ts if latest is None else max(latest, ts)
            out.add(Sample(tag, ts, new))
            if out.full():
                yield out.take()
        if start_pending and start is not None:
            for known, value in state.items():
                out.add(Sample(known, start, value))
        if out.buf:
            yield out.take()
    finally:
        f.close()


# -- wide files (CSV and Parquet) ------------------------------------------------------------


class _Unreadable:
    """A wide cell that could not be read: ends the tag's held value."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


Cell = float | None | _Unreadable
"""A parsed wide cell: a value, None (empty: unchanged), or unreadable."""


class _ForwardFill:
    """The wide formats' rule: every row emits each known tag's held value; empty cells hold."""

    def __init__(
        self,
        tags: Sequence[str],
        start: float | None,
        end: float | None,
        out: _Chunks,
        report: HistoryReport,
    ) -> None:
        self.tags = tags
        self.start = start
        self.end = end
        self.out = out
        self.report = report
        self.held: list[float | None] = [None] * len(tags)
        self.start_pending = start is not None

    def row(self, where: str, ts: float, cells: Sequence[Cell]) -> None:
        if self.end is not None and ts >= self.end:
            return
        in_range = self.start is None or ts >= self.start
        if in_range and self.start_pending:
            self.flush_start()
        add, held, tags = self.out.add, self.held, self.tags
        for j, cell in enumerate(cells):
            if cell is None:
                continue
            if isinstance(cell, _Unreadable):
                self.report.skip("malformed_value", where, f"column {tags[j]!r}: {cell.text!r}")
                held[j] = None
            elif math.isfinite(cell):
                held[j] = cell
            else:
                held[j] = None
                if in_range:
                    add(Sample(tags[j], ts, cell))  # once, for the windows to count as non-finite
        if in_range:
            for j, value in enumerate(held):
                if value is not None:
                    add(Sample(tags[j], ts, value))

    def flush_start(self) -> None:
        """Emit each known tag's value at the read's start (once)."""
        start = self.start
        if not self.start_pending or start is None:
            return
        self.start_pending = False
        for j, value in enumerate(self.held):
            if value is not None:
                self.out.add(Sample(self.tags[j], start, value))


def _wide_columns(
    names: Sequence[str],
    skip: int,
    tag_map: Mapping[str, str],
    tags: Collection[str] | None,
    label: str,
    report: HistoryReport,
) -> tuple[list[int], list[str]]:
    """Indexes and tag names of the columns to read (all but the date column ``skip``)."""
    indexes: list[int] = []
    names_out: list[str] = []
    ignored: list[str] = []
    for i, raw in enumerate(names):
        if i == skip:
            continue
        tag = _mapped(raw, tag_map)
        if not tag:
            ignored.append(f"#{i + 1} (no name)")
            continue
        if tags is not None and tag not in tags:
            ignored.append(raw.strip())
            report.other_tags += 1
            continue
        if tag in names_out:
            raise SourceUnavailable(f"history {label}: two columns are tag {tag!r}")
        indexes.append(i)
        names_out.append(tag)
    if ignored:
        shown = ", ".join(ignored[:10]) + (f" and {len(ignored) - 10} more" if len(ignored) > 10 else "")
        _log.info("history %s: not reading %d columns: %s", label, len(ignored), shown)
    return indexes, names_out


def read_csv_wide(
    source: CsvWideSource,
    *,
    start: float | None = None,
    end: float | None = None,
    tags: Collection[str] | None = None,
    report: HistoryReport | None = None,
    chunk_samples: int = DEFAULT_CHUNK_SAMPLES,
) -> Generator[list[Sample], None, None]:
    """Samples of a wide sparse export (empty cell = unchanged), in chunks; see the module docstring."""
    report = report if report is not None else HistoryReport(source.label)
    f = _CsvFile(source.path, source.delimiter, source.encoding, source.label)
    try:
        i_date = 0 if source.date_column is None else f.column(source.date_column)
        indexes, names = _wide_columns(f.header, i_date, source.tag_map, tags, source.label, report)
        date_of = _DateReader(timezone_of(source.timezone))
        out = _Chunks(chunk_samples, report)
        fill = _ForwardFill(names, start, end, out, report)
        for where, row in f.rows(report):
            try:
                ts = date_of(row[i_date])
            except ValueError:
                report.skip("malformed_date", where, repr(row[i_date]))
                continue
            cells: list[Cell] = []
            for i in indexes:
                text = row[i].strip()
                if not text:
                    cells.append(None)
                    continue
                try:
                    cells.append(parse_number(text))
                except ValueError:
                    cells.append(_Unreadable(text))
            fill.row(where, ts, cells)
            if out.full():
                yield out.take()
        fill.flush_start()
        if out.buf:
            yield out.take()
    finally:
        f.close()


# -- Parquet ---------------------------------------------------------------------------------


def read_parquet(
    source: ParquetSource,
    *,
    start: float | None = None,
    end: float | None = None,
    tags: Collection[str] | None = None,
    report: HistoryReport | None = None,
    chunk_samples: int = DEFAULT_CHUNK_SAMPLES,
) -> Generator[list[Sample], None, None]:
    """Samples of a Parquet file, long or wide, read one record batch at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    report = report if report is not None else HistoryReport(source.label)
    try:
        pf = pq.ParquetFile(source.path)
    except (OSError, pa.ArrowException) as e:
        raise SourceUnavailable(f"history {source.label}: cannot open {source.path}: {e}") from None
    try:
        names = list(pf.schema_arrow.names)
        zone = timezone_of(source.timezone)
        out = _Chunks(chunk_samples, report)
        if source.layout == "long":
            yield from _parquet_long(pf, names, source, zone, start, end, tags, out, report)
        else:
            yield from _parquet_wide(pf, names, source, zone, start, end, tags, out, report)
        if out.buf:
            yield out.take()
    except pa.ArrowException as e:
        raise SourceError(f"history {source.label}: reading {source.path}: {e}") from None
    finally:
        pf.close()


def _parquet_column(names: Sequence[str], wanted: str, source: ParquetSource) -> str:
    for n in names:
        if _norm(n) == _norm(wanted):
            return n
    raise SourceUnavailable(
        f"history {source.label}: {source.path} has no column {wanted!r} (columns: {list(names)[:20]})"
    )


def _epoch_seconds(column: Any, zone: dt.tzinfo, source: ParquetSource) -> list[float | None]:
    """A Parquet time column as epoch seconds: None where null, NaN where unreadable."""
    import pyarrow as pa
    import pyarrow.compute as pc

    t = column.type
    if pa.types.is_timestamp(t):
        per_second = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}[t.unit]
        ints = pc.cast(column, pa.int64()).to_pylist()
        if t.tz is None and zone is not dt.UTC:
            # Zone-less: wall-clock time in the configured zone, by the same rule as CSV dates.
            return [
                None
                if v is None
                else dt.datetime.fromtimestamp(v / per_second, dt.UTC).replace(tzinfo=zone).timestamp()
                for v in ints
            ]
        return [None if v is None else v / per_second for v in ints]
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        return [None if v is None else float(v) for v in column.to_pylist()]
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        out: list[float | None] = []
        for v in column.to_pylist():
            try:
                out.append(None if v is None else parse_timestamp(v, zone))
            except ValueError:
                out.append(math.nan)
        return out
    raise SourceUnavailable(
        f"history {source.label}: {source.path}: time column of type {t} is not a timestamp, a number or a string"
    )


def _parquet_long(
    pf: Any,
    names: Sequence[str],
    source: ParquetSource,
    zone: dt.tzinfo,
    start: float | None,
    end: float | None,
    tags: Collection[str] | None,
    out: _Chunks,
    report: HistoryReport,
) -> Iterator[list[Sample]]:
    tag_col = _parquet_column(names, source.tag_column, source)
    ts_col = _parquet_column(names, source.ts_column, source)
    value_col = _parquet_column(names, source.value_column, source)
    quality_col = None
    if source.quality_column is not None:
        quality_col = next((n for n in names if _norm(n) == _norm(source.quality_column)), None)
    columns = [tag_col, ts_col, value_col] + ([quality_col] if quality_col else [])
    tag_map = source.tag_map
    row = 0
    for batch in pf.iter_batches(batch_size=out.size, columns=columns):
        raw_tags = batch.column(0).to_pylist()
        stamps = _epoch_seconds(batch.column(1), zone, source)
        values = batch.column(2).to_pylist()
        qualities = batch.column(3).to_pylist() if quality_col else [None] * len(raw_tags)
        for raw, ts, value, q in zip(raw_tags, stamps, values, qualities, strict=True):
            row += 1
            report.rows += 1
            where = f"{source.path}:row {row}"
            tag = _mapped(str(raw), tag_map) if raw is not None else ""
            if not tag:
                report.skip("malformed_row", where, "no tag")
                continue
            if tags is not None and tag not in tags:
                report.other_tags += 1
                continue
            if ts is None or math.isnan(ts):
                report.skip("malformed_date", where, "missing or unreadable time")
                continue
            if (start is not None and ts < start) or (end is not None and ts >= end):
                continue
            try:
                number = _number_of(value)
            except ValueError as e:
                report.skip("malformed_value", where, f"{tag}: {e}")
                continue
            out.add(Sample(tag, ts, number, quality_of(q)))
        if out.full():
            yield out.take()


def _parquet_wide(
    pf: Any,
    names: Sequence[str],
    source: ParquetSource,
    zone: dt.tzinfo,
    start: float | None,
    end: float | None,
    tags: Collection[str] | None,
    out: _Chunks,
    report: HistoryReport,
) -> Iterator[list[Sample]]:
    ts_col = _parquet_column(names, source.ts_column, source)
    i_ts = list(names).index(ts_col)
    indexes, tag_names = _wide_columns(names, i_ts, source.tag_map, tags, source.label, report)
    columns = [ts_col] + [names[i] for i in indexes]
    fill = _ForwardFill(tag_names, start, end, out, report)
    row = 0
    for batch in pf.iter_batches(batch_size=max(1, out.size // max(1, len(indexes))), columns=columns):
        stamps = _epoch_seconds(batch.column(0), zone, source)
        cols = [batch.column(k + 1).to_pylist() for k in range(len(indexes))]
        for r, ts in enumerate(stamps):
            row += 1
            report.rows += 1
            where = f"{source.path}:row {row}"
            if ts is None or math.isnan(ts):
                report.skip("malformed_date", where, "missing or unreadable time")
                continue
            cells: list[Cell] = []
            for col in cols:
                v = col[r]
                if v is None:
                    cells.append(None)
                    continue
                try:
                    cells.append(_number_of(v))
                except ValueError:
                    cells.append(_Unreadable(str(v)))
            fill.row(where, ts, cells)
        if out.full():
            yield out.take()
    fill.flush_start()


# -- PostgreSQL ------------------------------------------------------------------------------


def _quote(name: str) -> str:
    """A settings-validated identifier (``name`` or ``schema.name``), double-quoted."""
    return ".".join(f'"{part}"' for part in name.split("."))


def _sql_time(ts: float, type_name: str, zone: dt.tzinfo) -> object:
    """``ts`` as the parameter type PostgreSQL inferred for the time column."""
    if type_name == "timestamptz":
        return dt.datetime.fromtimestamp(ts, dt.UTC)
    if type_name == "timestamp":
        return dt.datetime.fromtimestamp(ts, zone).replace(tzinfo=None)
    if type_name in ("int2", "int4", "int8"):
        return math.floor(ts)
    if type_name == "numeric":
        return Decimal(repr(ts))
    return float(ts)


def _pg_epoch(value: object, zone: dt.tzinfo) -> float:
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo is not None else value.replace(tzinfo=zone)).timestamp()
    # A NaN time would scramble the backfill's sort by time: a malformed date, as in the files.
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    raise ValueError(f"time {value!r}")


async def read_postgres(
    source: PostgresSource,
    *,
    start: float | None = None,
    end: float | None = None,
    tags: Collection[str] | None = None,
    report: HistoryReport | None = None,
    chunk_samples: int | None = None,
) -> AsyncIterator[list[Sample]]:
    """Samples of a historian table, ordered by time, ``chunk_rows`` rows per round trip.

    Raises :class:`SourceUnavailable` when the server, the database, the table or a
    column cannot be reached, and :class:`SourceError` when the read fails midway.
    """
    import asyncpg

    report = report if report is not None else HistoryReport(source.label)
    zone = timezone_of(source.timezone)
    label = source.label
    try:
        password = source.password.get_secret_value() if source.password is not None else None
        conn = await asyncpg.connect(source.dsn.get_secret_value(), password=password, timeout=source.connect_timeout_s)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
        # The DSN may hold a password: name the failure, never the DSN.
        raise SourceUnavailable(f"history {label}: cannot connect to PostgreSQL: {type(e).__name__}: {e}") from None
    try:
        columns = [source.tag_column, source.ts_column, source.value_column]
        if source.quality_column is not None:
            columns.append(source.quality_column)
        where: list[str] = []
        args: list[object] = []
        if tags is not None:
            # The filter speaks the historian's names: map configured names back through tag_map.
            back = {configured: exported for exported, configured in source.tag_map.items()}
            args.append(sorted({back.get(t, t) for t in tags}))
            where.append(f"{_quote(source.tag_column)} = ANY(${len(args)}::text[])")
        time_args: list[int] = []
        for bound, op in ((start, ">="), (end, "<")):
            if bound is not None:
                args.append(bound)
                time_args.append(len(args) - 1)
                where.append(f"{_quote(source.ts_column)} {op} ${len(args)}")
        sql = (
            f"SELECT {', '.join(_quote(c) for c in columns)} FROM {_quote(source.table)}"
            + (f" WHERE {' AND '.join(where)}" if where else "")
            + f" ORDER BY {_quote(source.ts_column)}"
        )
        rows_per_fetch = source.chunk_rows if chunk_samples is None else chunk_samples
        tag_map = source.tag_map
        # A server-side cursor lives in a transaction; read-only, since we only look.
        async with conn.transaction(readonly=True):
            try:
                stmt = await conn.prepare(sql)
            except asyncpg.PostgresError as e:
                raise SourceUnavailable(f"history {label}: table {source.table!r}: {e}") from None
            params = stmt.get_parameters()
            for i in time_args:
                args[i] = _sql_time(float(args[i]), params[i].name, zone)  # type: ignore[arg-type]
            cursor = await stmt.cursor(*args)
            n = 0
            while True:
                try:
                    records = await cursor.fetch(rows_per_fetch)
                except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as e:
                    raise SourceError(f"history {label}: reading {source.table!r}: {e}") from None
                if not records:
                    break
                chunk: list[Sample] = []
                for rec in records:
                    n += 1
                    report.rows += 1
                    raw_tag, raw_ts, raw_value = rec[0], rec[1], rec[2]
                    place = f"{source.table} row {n}"
                    tag = _mapped(str(raw_tag), tag_map) if raw_tag is not None else ""
                    if not tag:
                        report.skip("malformed_row", place, "no tag")
                        continue
                    try:
                        ts = _pg_epoch(raw_ts, zone)
                    except ValueError:
                        report.skip("malformed_date", place, f"{tag}: {raw_ts!r}")
                        continue
                    try:
                        value = _number_of(raw_value)
                    except ValueError as e:
                        report.skip("malformed_value", place, f"{tag} at {raw_ts}: {e}")
                        continue
                    quality = quality_of(rec[3]) if len(rec) > 3 else Quality.GOOD
                    chunk.append(Sample(tag, ts, value, quality))
                report.samples += len(chunk)
                if chunk:
                    yield chunk
    except (asyncpg.PostgresError, asyncpg.InterfaceError) as e:
        raise SourceError(f"history {label}: {e}") from None
    finally:
        try:
            await asyncio.wait_for(conn.close(), timeout=source.connect_timeout_s)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
            conn.terminate()


# -- one reader over any source ---------------------------------------------------------------


FileReader = Callable[..., Generator[list[Sample], None, None]]

_FILE_READERS: Final[dict[str, FileReader]] = {
    "csv_events": read_csv_events,
    "csv_wide": read_csv_wide,
    "parquet": read_parquet,
}


class HistoryReader:
    """One configured history source, read as async chunks of samples.

    Files are parsed on a worker thread, one chunk per hop, so the event loop stays
    free (signals, metrics) while a large export is read; PostgreSQL is natively
    async.  Errors are sentinelle's own: :class:`SourceUnavailable` when the source
    cannot be opened, :class:`SourceError` when it fails midway.

    >>> import asyncio, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "wide.csv"
    >>> _ = path.write_text("date,flow,power\\n2024-01-01T00:00:00Z,60.1,\\n2024-01-01T00:00:01Z,,410\\n")
    >>> async def read():
    ...     reader = HistoryReader(CsvWideSource(path=path))
    ...     return [s async for chunk in reader.chunks() for s in chunk], reader.report
    >>> samples, report = asyncio.run(read())
    >>> [(s.tag, s.source_ts, s.value) for s in samples]
    [('flow', 1704067200.0, 60.1), ('flow', 1704067201.0, 60.1), ('power', 1704067201.0, 410.0)]
    >>> report.rows, report.samples, report.malformed
    (2, 3, 0)
    """

    def __init__(self, source: HistorySource, metrics: Metrics | None = None) -> None:
        self.source = source
        self.report = HistoryReport(source.label, metrics=metrics)

    @property
    def label(self) -> str:
        return self.source.label

    async def chunks(
        self,
        start: float | None = None,
        end: float | None = None,
        tags: Collection[str] | None = None,
        chunk_samples: int = DEFAULT_CHUNK_SAMPLES,
    ) -> AsyncIterator[list[Sample]]:
        src = self.source
        try:
            if isinstance(src, PostgresSource):
                async for chunk in read_postgres(
                    src, start=start, end=end, tags=tags, report=self.report, chunk_samples=None
                ):
                    yield chunk
                return
            it = _FILE_READERS[src.kind](
                src, start=start, end=end, tags=tags, report=self.report, chunk_samples=chunk_samples
            )
            try:
                while True:
                    parsed = await asyncio.to_thread(_next_chunk, it)
                    if parsed is None:
                        break
                    yield parsed
            finally:
                # Still running on its thread if we were cancelled mid-chunk: it then closes when collected.
                with contextlib.suppress(ValueError):
                    it.close()
        except SentinelleError:
            raise
        except OSError as e:
            raise SourceError(f"history {self.label}: {e}") from None
        finally:
            self.report.log_summary()


def _next_chunk(it: Iterator[list[Sample]]) -> list[Sample] | None:
    return next(it, None)


def all_samples(chunks: Iterable[list[Sample]]) -> list[Sample]:
    """Every sample of a chunked read, in order (tests, small files)."""
    return [s for chunk in chunks for s in chunk]
