"""Property test (hypothesis) of the PostgreSQL history reader against the real server: any table content of
the column types a historian uses gives samples with finite times, or a clear error naming the source.

Each example creates its table, reads it back through ``read_postgres`` and drops it; the
example count is bounded so the test takes seconds (``FUZZ_EXAMPLES`` raises it).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import os
import uuid
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sentinelle.errors import SentinelleError
from sentinelle.settings import PostgresSource
from sentinelle.sources.history import read_postgres

pytestmark = [pytest.mark.integration]

_FAST = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "30")),
    deadline=None,  # a round trip per example; a hang is caught by the read's own timeout below
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# (SQL type, values of that type as asyncpg sends them)
_TIMES = st.sampled_from(["timestamptz", "timestamp", "double precision", "bigint", "numeric", "text"])
_VALUES = st.sampled_from(["double precision", "numeric", "text", "boolean", "bigint"])
_QUALITIES = st.sampled_from(["bigint", "text", "integer"])


_EARLIEST, _LATEST = dt.datetime(1, 1, 2), dt.datetime(9999, 12, 30)  # .timestamp() defined, any zone


def _values_of(sql_type: str) -> st.SearchStrategy[Any]:
    none = st.none()
    if sql_type == "timestamptz":
        return none | st.datetimes(
            timezones=st.just(dt.UTC), min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30)
        )
    if sql_type == "timestamp":
        return none | st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30))
    if sql_type == "double precision":
        return none | st.floats()
    if sql_type == "numeric":
        return none | st.decimals(allow_nan=True, allow_infinity=False, places=3, min_value=-1e12, max_value=1e12)
    if sql_type in ("bigint", "integer"):
        bound = 2**31 - 1 if sql_type == "integer" else 2**63 - 1
        return none | st.integers(-bound, bound)
    if sql_type == "boolean":
        return none | st.booleans()
    return none | st.text(st.characters(blacklist_characters="\x00", blacklist_categories=["Cs"]), max_size=16)


@st.composite
def _tables(draw: st.DrawFn) -> tuple[list[str], list[tuple[Any, ...]]]:
    types = [draw(_TIMES), draw(_VALUES), draw(_QUALITIES)]
    tags = st.none() | st.sampled_from(["FIC-101", " TI-200 ", "", "x"])
    rows = draw(st.lists(st.tuples(tags, *(_values_of(t) for t in types)), max_size=12))
    return types, rows


async def _read(dsn: str, types: list[str], rows: list[tuple[Any, ...]], start: float | None) -> None:
    conn = await asyncpg.connect(dsn, timeout=10)
    table = f"fuzz_{uuid.uuid4().hex[:8]}"
    try:
        await conn.execute(f"CREATE TABLE {table} (tag text, ts {types[0]}, value {types[1]}, quality {types[2]})")
        await conn.executemany(f"INSERT INTO {table} VALUES ($1, $2, $3, $4)", rows)
        source = PostgresSource.model_validate({"dsn": dsn, "table": table, "name": "fuzz", "chunk_rows": 5})
        try:
            async with asyncio.timeout(30):
                async for chunk in read_postgres(source, start=start):
                    for s in chunk:
                        assert math.isfinite(s.source_ts), s
                        assert isinstance(s.value, float)
        except SentinelleError as e:
            assert "history fuzz" in str(e), str(e)
    finally:
        await conn.execute(f"DROP TABLE IF EXISTS {table}")
        await conn.close()


@_FAST
@given(table=_tables(), start=st.none() | st.floats(0, 2e9))
@example(table=(["double precision", "double precision", "bigint"], [("FIC-101", math.nan, 1.0, 0)]), start=None)
@example(table=(["numeric", "numeric", "bigint"], [("FIC-101", Decimal("NaN"), Decimal("NaN"), 0)]), start=None)
def test_any_historian_table_reads_or_fails_naming_the_source(
    postgres_dsn: str, table: tuple[list[str], list[tuple[Any, ...]]], start: float | None
) -> None:
    types, rows = table
    asyncio.run(_read(postgres_dsn, types, rows, start))
