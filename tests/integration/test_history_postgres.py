"""The PostgreSQL history reader against a real PostgreSQL (deploy/postgres/postgres.sh, loopback, trust auth).

Each test creates its own historian table, fills it with asyncpg, reads it back through
the reader in chunks (a server-side cursor), and drops it.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio
from prometheus_client import CollectorRegistry

from sentinelle.errors import SourceUnavailable
from sentinelle.metrics import Metrics
from sentinelle.records import Quality, Sample
from sentinelle.settings import PostgresSource, load_settings
from sentinelle.sources.history import HistoryReader, HistoryReport, read_postgres

pytestmark = [pytest.mark.integration]

T0 = dt.datetime(2025, 6, 1, 8, 0, tzinfo=dt.UTC)
BAD = 0x80340000  # OPC-UA BadNoCommunication
UNCERTAIN = 0x40000000


@pytest_asyncio.fixture
async def conn(postgres_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    c = await asyncpg.connect(postgres_dsn, timeout=10)
    try:
        yield c
    finally:
        await c.close()


@pytest_asyncio.fixture
async def historian(conn: asyncpg.Connection) -> AsyncIterator[str]:
    """A historian table (tag, ts timestamptz, value float8, quality int8) with 3 tags × 3,000 s at 1 Hz."""
    table = f"history_{uuid.uuid4().hex[:8]}"
    await conn.execute(
        f"CREATE TABLE {table} (tag text NOT NULL, ts timestamptz NOT NULL, value double precision, quality bigint)"
    )
    rows: list[tuple[str, dt.datetime, float | None, int | None]] = []
    for k in range(3_000):
        ts = T0 + dt.timedelta(seconds=k)
        rows.append(("FIC-101", ts, 60.0 + k / 1000, 0))
        rows.append(("TI-200", ts, 5.0 + (k % 10) / 100, None))
        rows.append(("PI-300", ts, 2.5, 0))
    # The awkward ones: Bad and Uncertain quality, NaN, a missing value.
    rows += [
        ("FIC-101", T0 + dt.timedelta(seconds=3_000), 61.0, BAD),
        ("FIC-101", T0 + dt.timedelta(seconds=3_001), 61.1, UNCERTAIN),
        ("FIC-101", T0 + dt.timedelta(seconds=3_002), float("nan"), 0),
        ("FIC-101", T0 + dt.timedelta(seconds=3_003), None, 0),
        ("FIC-101", T0 + dt.timedelta(seconds=3_004), 61.4, 0),
    ]
    await conn.copy_records_to_table(table, records=rows, columns=["tag", "ts", "value", "quality"])
    try:
        yield table
    finally:
        await conn.execute(f"DROP TABLE {table}")


def _source(dsn: str, table: str, **kw: object) -> PostgresSource:
    return PostgresSource.model_validate(
        {"dsn": dsn, "table": table, "tag_map": {"FIC-101": "c1.flow", "TI-200": "c1.chw_temp"}, **kw}
    )


@pytest.mark.asyncio
async def test_reads_back_in_chunks_filtered_by_tags_and_time(postgres_dsn: str, historian: str) -> None:
    source = _source(postgres_dsn, historian, chunk_rows=1_000)
    metrics = Metrics(CollectorRegistry())
    report = HistoryReport("pg", metrics=metrics)
    start = (T0 + dt.timedelta(seconds=2_000)).timestamp()
    chunks = [
        chunk
        async for chunk in read_postgres(
            source, start=start, end=start + 1_100, tags={"c1.flow", "c1.chw_temp"}, report=report
        )
    ]
    samples = [s for chunk in chunks for s in chunk]
    # 1,100 s of two tags (PI-300 is not asked for), 1,000 rows per round trip.
    assert len(chunks) == 3 and max(len(c) for c in chunks) == 1_000
    assert len(samples) == 2 * 1_000 + 5 - 1  # the row without a value is skipped
    assert {s.tag for s in samples} == {"c1.flow", "c1.chw_temp"}
    times = [s.source_ts for s in samples]
    assert times == sorted(times) and times[0] == start and times[-1] < start + 1_100
    first_flow = next(s for s in samples if s.tag == "c1.flow")
    assert first_flow == Sample("c1.flow", start, 62.0, Quality.GOOD)
    tail = [s for s in samples if s.tag == "c1.flow"][-4:]
    assert [s.quality for s in tail] == [Quality.BAD, Quality.UNCERTAIN, Quality.GOOD, Quality.GOOD]
    assert tail[0].value == 61.0 and math.isnan(tail[2].value) and tail[3].value == 61.4  # type: ignore[arg-type]
    # The NULL value is reported (with its place) and counted; NaN and Bad go on to the windows' own checks.
    assert dict(report.skipped) == {"malformed_value": 1}
    assert report.problems[0].where == f"{historian} row {2 * 1_000 + 4}"
    assert metrics.registry.get_sample_value("sentinelle_samples_dropped_total", {"reason": "malformed_value"}) == 1


@pytest.mark.asyncio
async def test_custom_names_and_a_zone_less_time_column(postgres_dsn: str, conn: asyncpg.Connection) -> None:
    """``schema.table`` and own column names; ``timestamp`` without zone is wall-clock time in the source's zone."""
    schema = f"plant_{uuid.uuid4().hex[:6]}"
    await conn.execute(f"CREATE SCHEMA {schema}")
    try:
        await conn.execute(f"CREATE TABLE {schema}.archive (point text, stamp timestamp, reading numeric, status text)")
        await conn.executemany(
            f"INSERT INTO {schema}.archive VALUES ($1, $2, $3, $4)",
            [
                ("FIC-101", dt.datetime(2025, 1, 10, 12, 0, 0), 60.5, "Good"),
                ("FIC-101", dt.datetime(2025, 1, 10, 12, 0, 1), 60.7, "BadSensorFailure"),
                ("FIC-101", dt.datetime(2025, 7, 10, 12, 0, 0), 59.0, None),
            ],
        )
        source = _source(
            postgres_dsn,
            f"{schema}.archive",
            tag_column="point",
            ts_column="stamp",
            value_column="reading",
            quality_column="status",
            timezone="Europe/Paris",
        )
        winter = dt.datetime(2025, 1, 10, 11, 0, tzinfo=dt.UTC).timestamp()
        summer = dt.datetime(2025, 7, 10, 10, 0, tzinfo=dt.UTC).timestamp()
        reader = HistoryReader(source)
        got = [s async for chunk in reader.chunks(start=winter, tags={"c1.flow"}) for s in chunk]
        assert got == [
            Sample("c1.flow", winter, 60.5, Quality.GOOD),
            Sample("c1.flow", winter + 1, 60.7, Quality.BAD),
            Sample("c1.flow", summer, 59.0, Quality.GOOD),
        ]
        # The range is applied in SQL with the column's own type.
        got = [s async for chunk in reader.chunks(start=winter + 1, end=summer) for s in chunk]
        assert [s.source_ts for s in got] == [winter + 1]
    finally:
        await conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.mark.asyncio
async def test_unreachable_server_or_missing_table_is_unavailable(postgres_dsn: str, historian: str) -> None:
    with pytest.raises(SourceUnavailable, match="cannot connect"):
        async for _ in read_postgres(_source("postgresql://nobody@127.0.0.1:1/none", "history", connect_timeout_s=2)):
            pass
    with pytest.raises(SourceUnavailable, match="no_such_table"):
        async for _ in read_postgres(_source(postgres_dsn, "no_such_table")):
            pass
    with pytest.raises(SourceUnavailable, match="reading"):
        async for _ in read_postgres(_source(postgres_dsn, historian, value_column="reading")):
            pass


@pytest.mark.asyncio
async def test_password_from_a_credential_file_logs_in_and_is_never_shown(
    postgres_dsn: str, historian: str, conn: asyncpg.Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A role that must give a password (SCRAM, pg_hba.conf of deploy/postgres) reads the historian with the
    password systemd's LoadCredential= would hand over; a wrong one is a clear error without the password."""
    role, password = "sentinelle_password", f"pw-{uuid.uuid4().hex}"  # pg_hba.conf: SCRAM for this role
    await conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
    await conn.execute(f"GRANT SELECT ON {historian} TO {role}")
    try:
        dsn = postgres_dsn.replace("//sentinelle@", f"//{role}@")
        assert dsn != postgres_dsn
        settings_file = tmp_path / "sentinelle.toml"
        settings_file.write_text(
            f'[[history.sources]]\nkind = "postgres"\nname = "historian"\ndsn = "{dsn}"\ntable = "{historian}"\n'
        )
        credentials = tmp_path / "credentials"
        credentials.mkdir()
        monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
        for name in [n for n in os.environ if n.startswith("SENTINELLE_")]:
            monkeypatch.delenv(name)

        # Without the password the server refuses: the role really needs one.
        (source,) = load_settings(settings_file).history.sources
        assert isinstance(source, PostgresSource) and source.password is None
        with pytest.raises(SourceUnavailable, match="cannot connect"):
            async for _ in read_postgres(source, tags={"FIC-101"}):
                pass

        (credentials / "sentinelle_history.sources.historian.password").write_text(password + "\n")
        (source,) = load_settings(settings_file).history.sources
        assert isinstance(source, PostgresSource)
        got = [s async for chunk in read_postgres(source, tags={"FIC-101"}) for s in chunk]
        assert len(got) > 3_000

        (credentials / "sentinelle_history.sources.historian.password").write_text("wrong-" + password)
        (source,) = load_settings(settings_file).history.sources
        assert isinstance(source, PostgresSource)
        with pytest.raises(SourceUnavailable, match="cannot connect") as e:
            async for _ in read_postgres(source, tags={"FIC-101"}):
                pass
        assert password not in str(e.value)
    finally:
        await conn.execute(f"REVOKE ALL ON {historian} FROM {role}")
        await conn.execute(f"DROP ROLE {role}")
