"""A PostgreSQL historian table (``postgres``), read through a server-side cursor with asyncpg."""

from __future__ import annotations

import asyncio
import datetime as dt
import math
from collections.abc import AsyncIterator, Collection
from decimal import Decimal

from ...errors import SourceError, SourceUnavailable
from ...records import Quality, Sample
from ...settings import PostgresSource
from .parsing import mapped_name, number_of, quality_of, timezone_of
from .report import Chunks, HistoryReport, SampleChunk


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
) -> AsyncIterator[SampleChunk]:
    """Samples of a historian table, ordered by time, ``chunk_rows`` rows per round trip.

    Raises :class:`SourceUnavailable` when the server, the database, the table or a
    column cannot be reached, and :class:`SourceError` when the read fails midway.
    """
    import asyncpg

    report = report if report is not None else HistoryReport(source.label, deadband=source.deadband)
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
                out = Chunks(len(records), report)
                for rec in records:
                    n += 1
                    report.rows += 1
                    raw_tag, raw_ts, raw_value = rec[0], rec[1], rec[2]
                    place = f"{source.table} row {n}"
                    tag = mapped_name(str(raw_tag), tag_map) if raw_tag is not None else ""
                    if not tag:
                        report.skip("malformed_row", place, "no tag")
                        continue
                    try:
                        ts = _pg_epoch(raw_ts, zone)
                    except ValueError:
                        report.skip("malformed_date", place, f"{tag}: {raw_ts!r}")
                        continue
                    try:
                        value = number_of(raw_value)
                    except ValueError as e:
                        report.skip("malformed_value", place, f"{tag} at {raw_ts}: {e}")
                        continue
                    quality = quality_of(rec[3]) if len(rec) > 3 else Quality.GOOD
                    out.add(Sample(tag, ts, value, quality))
                if out.buf:
                    yield out.take()
    except (asyncpg.PostgresError, asyncpg.InterfaceError) as e:
        raise SourceError(f"history {label}: {e}") from None
    finally:
        try:
            await asyncio.wait_for(conn.close(), timeout=source.connect_timeout_s)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
            conn.terminate()
