"""Parquet history files (``parquet``), long or wide, read one record batch at a time."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Collection, Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ...errors import SourceError, SourceUnavailable
from ...records import Sample
from ...settings import ParquetSource
from .parsing import mapped_name, norm_name, number_of, parse_timestamp, quality_of, timezone_of
from .report import DEFAULT_CHUNK_SAMPLES, Chunks, HistoryReport, SampleChunk
from .wide import Cell, ForwardFill, Unreadable, wide_columns


def read_parquet(
    source: ParquetSource,
    *,
    start: float | None = None,
    end: float | None = None,
    tags: Collection[str] | None = None,
    report: HistoryReport | None = None,
    chunk_samples: int = DEFAULT_CHUNK_SAMPLES,
) -> Generator[SampleChunk, None, None]:
    """Samples of a Parquet file, long or wide, read one record batch at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    report = report if report is not None else HistoryReport(source.label, deadband=source.deadband)
    try:
        pf = pq.ParquetFile(source.path)
    except (OSError, pa.ArrowException) as e:
        raise SourceUnavailable(f"history {source.label}: cannot open {source.path}: {e}") from None
    try:
        names = list(pf.schema_arrow.names)
        zone = timezone_of(source.timezone)
        out = Chunks(chunk_samples, report)
        read = _Read(pf, names, source, zone, start, end, tags, out, report)
        yield from (_parquet_long if source.layout == "long" else _parquet_wide)(read)
        if out.buf:
            yield out.take()
    except pa.ArrowException as e:
        raise SourceError(f"history {source.label}: reading {source.path}: {e}") from None
    finally:
        pf.close()


@dataclass(frozen=True, slots=True)
class _Read:
    """One read of a Parquet file: the file, the request and where its samples go.

    Both layouts' readers take the same things; one record passes them as one.
    """

    pf: Any
    names: list[str]
    source: ParquetSource
    zone: dt.tzinfo
    start: float | None
    end: float | None
    tags: Collection[str] | None
    out: Chunks
    report: HistoryReport


def _parquet_column(names: Sequence[str], wanted: str, source: ParquetSource) -> str:
    for n in names:
        if norm_name(n) == norm_name(wanted):
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


def _parquet_long(read: _Read) -> Iterator[SampleChunk]:
    names, source, zone, start, end, tags = read.names, read.source, read.zone, read.start, read.end, read.tags
    out, report = read.out, read.report
    tag_col = _parquet_column(names, source.tag_column, source)
    ts_col = _parquet_column(names, source.ts_column, source)
    value_col = _parquet_column(names, source.value_column, source)
    quality_col = None
    if source.quality_column is not None:
        quality_col = next((n for n in names if norm_name(n) == norm_name(source.quality_column)), None)
    columns = [tag_col, ts_col, value_col] + ([quality_col] if quality_col else [])
    tag_map = source.tag_map
    row = 0
    for batch in read.pf.iter_batches(batch_size=out.size, columns=columns):
        raw_tags = batch.column(0).to_pylist()
        stamps = _epoch_seconds(batch.column(1), zone, source)
        values = batch.column(2).to_pylist()
        qualities = batch.column(3).to_pylist() if quality_col else [None] * len(raw_tags)
        for raw, ts, value, q in zip(raw_tags, stamps, values, qualities, strict=True):
            row += 1
            report.rows += 1
            where = f"{source.path}:row {row}"
            tag = mapped_name(str(raw), tag_map) if raw is not None else ""
            if not tag:
                report.skip("malformed_row", where, "no tag")
                continue
            if tags is not None and tag not in tags:
                report.other_tags += 1
                continue
            if ts is None or not math.isfinite(ts):
                report.skip("malformed_date", where, "missing or unreadable time")
                continue
            if (start is not None and ts < start) or (end is not None and ts >= end):
                continue
            try:
                number = number_of(value)
            except ValueError as e:
                report.skip("malformed_value", where, f"{tag}: {e}")
                continue
            out.add(Sample(tag, ts, number, quality_of(q)))
        if out.full():
            yield out.take()


def _parquet_wide(read: _Read) -> Iterator[SampleChunk]:
    names, source, zone, out, report = read.names, read.source, read.zone, read.out, read.report
    ts_col = _parquet_column(names, source.ts_column, source)
    i_ts = list(names).index(ts_col)
    indexes, tag_names = wide_columns(names, i_ts, source.tag_map, read.tags, source.label, report)
    columns = [ts_col] + [names[i] for i in indexes]
    fill = ForwardFill(tag_names, read.start, read.end, out, report)
    row = 0
    for batch in read.pf.iter_batches(batch_size=max(1, out.size // max(1, len(indexes))), columns=columns):
        stamps = _epoch_seconds(batch.column(0), zone, source)
        cols = [batch.column(k + 1).to_pylist() for k in range(len(indexes))]
        for r, ts in enumerate(stamps):
            row += 1
            report.rows += 1
            where = f"{source.path}:row {row}"
            if ts is None or not math.isfinite(ts):
                report.skip("malformed_date", where, "missing or unreadable time")
                continue
            cells: list[Cell] = []
            for col in cols:
                v = col[r]
                if v is None:
                    cells.append(None)
                    continue
                try:
                    cells.append(number_of(v))
                except ValueError:
                    cells.append(Unreadable(str(v)))
            fill.row(where, ts, cells)
        if out.full():
            yield out.take()
    fill.flush_start()
