"""The one rule for dates, numbers, quality, names and CSV layout that every format shares.

The rules are the package docstring's (:mod:`sentinelle.sources.history`); these are their
implementations, each a small function or class so the format modules stay about their format.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import re
import zoneinfo
from collections.abc import Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import IO

from ...errors import SourceError, SourceUnavailable
from ...records import Quality
from .report import HistoryReport


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


def number_of(x: object) -> float:
    """A value from Parquet or PostgreSQL as a float (strings by :func:`parse_number`)."""
    if isinstance(x, bool):
        return 1.0 if x else 0.0
    if isinstance(x, (int, float, Decimal)):
        return float(x)
    if isinstance(x, str):
        return parse_number(x)
    raise ValueError("missing" if x is None else f"not a number: {type(x).__name__}")


def quality_of(x: object) -> Quality:
    """The quality rule of the package docstring.

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


def norm_name(name: str) -> str:
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


class CsvFile:
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
        wanted = norm_name(name)
        for i, h in enumerate(self.header):
            if norm_name(h) == wanted:
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


class DateReader:
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


def mapped_name(name: str, tag_map: Mapping[str, str]) -> str:
    name = name.strip()
    return tag_map.get(name, name)
