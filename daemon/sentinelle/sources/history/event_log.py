"""The event-log CSV export (``csv_events``): one row per change, old and new value."""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Generator

from ...records import Sample
from ...settings import CsvEventsSource
from .parsing import CsvFile, DateReader, parse_number, timezone_of
from .report import DEFAULT_CHUNK_SAMPLES, Chunks, HistoryReport, SampleChunk


def read_csv_events(
    source: CsvEventsSource,
    *,
    start: float | None = None,
    end: float | None = None,
    tags: Collection[str] | None = None,
    report: HistoryReport | None = None,
    chunk_samples: int = DEFAULT_CHUNK_SAMPLES,
) -> Generator[SampleChunk, None, None]:
    """Samples of an event-log export (one row per change), in chunks; see the package docstring."""
    report = report if report is not None else HistoryReport(source.label, deadband=source.deadband)
    f = CsvFile(source.path, source.delimiter, source.encoding, source.label)
    try:
        i_date, i_tag = f.column(source.date_column), f.column(source.tag_column)
        i_old, i_new = f.column(source.value_column), f.column(source.new_value_column)
        date_of = DateReader(timezone_of(source.timezone))
        out = Chunks(chunk_samples, report)
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
                    out.add(Sample(known, start, value), held=True)
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
                out.add(Sample(known, start, value), held=True)
        if out.buf:
            yield out.take()
    finally:
        f.close()
