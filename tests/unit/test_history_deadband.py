"""Deadband-compressed exports (issue 17 item 3): held samples marked, held shares and deadbands reported.

The exports are written here from a slow random walk compressed the way a historian does it
(a value is written only once it moved more than the deadband from the last written one), so
the expected held cells, shares and deadband come from the generator, not from the reader.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import logging
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pydantic
import pytest

from sentinelle.records import Sample
from sentinelle.settings import CsvEventsSource, CsvWideSource, ParquetSource
from sentinelle.sources.history import (
    HistoryReader,
    HistoryReport,
    SampleChunk,
    TagHistory,
    held_mask,
    read_csv_events,
    read_csv_wide,
    read_parquet,
)

DEADBAND = 0.1
ROWS = 2_000
T0 = 1_717_200_000.0  # 2024-06-01T00:00:00Z


def _walk(seed: int, step_sd: float) -> list[float]:
    rng = np.random.default_rng(seed)
    return [float(v) for v in 6.0 + np.cumsum(rng.normal(0.0, step_sd, ROWS))]


def _compress(values: list[float], deadband: float) -> list[float | None]:
    """Report by exception: a value is written when it moved more than ``deadband`` from the last written one."""
    out: list[float | None] = []
    last: float | None = None
    for v in values:
        r = round(v, 4)
        if last is None or abs(r - last) > deadband:
            out.append(r)
            last = r
        else:
            out.append(None)
    return out


def _iso(k: int) -> str:
    return dt.datetime.fromtimestamp(T0 + 60 * k, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _flatten(chunks: Iterable[list[Sample]]) -> tuple[list[Sample], list[int]]:
    samples: list[Sample] = []
    held: list[int] = []
    for chunk in chunks:
        assert isinstance(chunk, SampleChunk)
        mask = held_mask(chunk)
        assert len(mask) == len(chunk)
        samples.extend(chunk)
        held.extend(mask)
    return samples, held


@pytest.fixture
def signal() -> tuple[list[float | None], list[float]]:
    """(compressed chilled-water temperature, uncompressed flow) per minute."""
    return _compress(_walk(1, 0.02), DEADBAND), [round(v, 3) for v in _walk(2, 0.5)]


def _write_wide(path: Path, chw: list[float | None], flow: list[float]) -> None:
    lines = ["date;chw;flow"]
    for k, (c, f) in enumerate(zip(chw, flow, strict=True)):
        lines.append(f"{_iso(k)};{'' if c is None else str(c).replace('.', ',')};{str(f).replace('.', ',')}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_wide_export_marks_every_empty_cell_held_and_estimates_the_deadband(
    tmp_path: Path, signal: tuple[list[float | None], list[float]], caplog: pytest.LogCaptureFixture
) -> None:
    chw, flow = signal
    path = tmp_path / "wide.csv"
    _write_wide(path, chw, flow)
    report = HistoryReport("wide")
    source = CsvWideSource(path=path, tag_map={"chw": "chiller1.chw_temp_c", "flow": "chiller1.flow_m3h"})
    samples, held = _flatten(read_csv_wide(source, report=report, chunk_samples=333))

    expected_chw_held = [c is None for c in chw]  # the first cell is filled, so every row emits chw
    got_chw_held = [bool(h) for s, h in zip(samples, held, strict=True) if s.tag == "chiller1.chw_temp_c"]
    assert got_chw_held == expected_chw_held
    assert not any(h for s, h in zip(samples, held, strict=True) if s.tag == "chiller1.flow_m3h")

    share = sum(expected_chw_held) / ROWS
    assert share > 0.5, "the generator should compress most minutes"
    chw_stats = report.tags["chiller1.chw_temp_c"]
    assert (chw_stats.held, chw_stats.changed) == (sum(expected_chw_held), ROWS - sum(expected_chw_held))
    assert report.held_shares() == {"chiller1.chw_temp_c": pytest.approx(share), "chiller1.flow_m3h": 0.0}

    deadbands = report.deadbands()
    # Every written step exceeds the deadband (up to the 4-decimal rounding); most lie just above it.
    assert DEADBAND - 1e-4 <= deadbands["chiller1.chw_temp_c"] <= 1.3 * DEADBAND
    steps = np.abs(np.diff(flow))
    assert deadbands["chiller1.flow_m3h"] == pytest.approx(np.quantile(steps[steps > 0], 0.05), rel=0.1)

    report.units = {"chiller1.chw_temp_c": "°C"}
    with caplog.at_level(logging.INFO, logger="sentinelle.sources.history"):
        report.log_summary()
    lines = [r.getMessage() for r in caplog.records]
    chw_line = f"history wide: chiller1.chw_temp_c: {100 * share:.0f} % of {ROWS} samples held (deadband ≈ "
    assert any(line.startswith(chw_line) and "°C, estimated" in line for line in lines), lines
    assert any(line.startswith("history wide: chiller1.flow_m3h: 0 % of") for line in lines), lines


def test_event_log_has_no_held_samples_and_its_deadband_comes_from_its_changes(
    tmp_path: Path, signal: tuple[list[float | None], list[float]]
) -> None:
    chw, _ = signal
    lines = ["date;parameter name;value;new value"]
    written = [(k, v) for k, v in enumerate(chw) if v is not None]
    for (_, old), (k, new) in itertools.pairwise(written):
        lines.append(f"{_iso(k)};chw;{old};{new}")
    path = tmp_path / "events.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = HistoryReport("events")
    samples, held = _flatten(read_csv_events(CsvEventsSource(path=path), report=report))

    assert len(samples) == len(written) - 1  # no seed: the first row has no earlier date
    assert not any(held)
    assert report.held_shares() == {"chw": 0.0}
    assert DEADBAND - 1e-4 <= report.deadbands()["chw"] <= 1.3 * DEADBAND

    # With a start, the value carried to it is the one held sample.
    start = T0 + 60 * written[len(written) // 2][0] + 30
    report = HistoryReport("events")
    samples, held = _flatten(read_csv_events(CsvEventsSource(path=path), start=start, report=report))
    assert [s.source_ts for s, h in zip(samples, held, strict=True) if h] == [start]
    assert report.tags["chw"].held == 1


def test_parquet_wide_nulls_are_held(tmp_path: Path, signal: tuple[list[float | None], list[float]]) -> None:
    chw, _ = signal
    table = pa.table({"ts": [T0 + 60 * k for k in range(ROWS)], "chw": chw})
    path = tmp_path / "wide.parquet"
    pq.write_table(table, path, row_group_size=500)
    report = HistoryReport("parquet")
    _, held = _flatten(read_parquet(ParquetSource(path=path, layout="wide"), report=report))
    assert [bool(h) for h in held] == [c is None for c in chw]
    assert DEADBAND - 1e-4 <= report.deadbands()["chw"] <= 1.3 * DEADBAND


def test_the_deadband_setting_overrides_the_estimate(tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    values = [1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0]
    _write_wide(path, [*values, None], [*values, 9.0])

    async def read(source: CsvWideSource) -> dict[str, float]:
        reader = HistoryReader(source)
        async for _ in reader.chunks():
            pass
        return reader.report.deadbands()

    assert asyncio.run(read(CsvWideSource(path=path))) == {"chw": pytest.approx(0.5), "flow": pytest.approx(0.5)}
    assert asyncio.run(read(CsvWideSource(path=path, deadband=0.2))) == {"chw": 0.2, "flow": 0.2}
    assert asyncio.run(read(CsvWideSource(path=path, deadband={"chw": 0.05}))) == {
        "chw": 0.05,
        "flow": pytest.approx(0.5),
    }
    with pytest.raises(pydantic.ValidationError, match="deadband"):
        CsvWideSource(path=path, deadband=-0.1)
    with pytest.raises(pydantic.ValidationError, match="deadband"):
        CsvWideSource(path=path, deadband={"chw": float("nan")})


def test_the_estimate_is_a_low_quantile_not_the_minimum_and_needs_a_few_steps() -> None:
    t = TagHistory()
    for v in [0.0, 0.1, 0.2, 0.3]:
        t.add(v, held=False)
    assert t.deadband_estimate() is None  # 3 steps: too few
    t = TagHistory()
    value = 0.0
    rng = np.random.default_rng(3)
    for step in rng.uniform(0.1, 0.3, 200):
        value += float(step) * (1 if rng.random() < 0.5 else -1)
        t.add(value, held=False)
        t.add(value, held=True)
    t.add(value + 1e-4, held=False)  # one stray tiny step (a heartbeat rewrite)
    estimate = t.deadband_estimate()
    assert estimate is not None and 0.1 <= estimate <= 0.13
    assert t.held_share == pytest.approx(200 / 401)


def test_an_unreadable_cell_starts_no_step(tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    path.write_text("date,a\n" + "".join(f"{_iso(k)},{v}\n" for k, v in enumerate(["1", "2", "x", "10", "11"])))
    report = HistoryReport("wide")
    _flatten(read_csv_wide(CsvWideSource(path=path), report=report))
    # Steps 1 (1→2) and 1 (10→11); not 8 across the unreadable cell.
    assert report.tags["a"].steps == 2


def test_a_long_table_is_all_read_and_bad_quality_starts_no_step(tmp_path: Path) -> None:
    values = [1.0, 1.2, 1.4, 9.9, 1.6, 1.8, 2.0, 2.2]
    table = pa.table(
        {
            "tag": ["a"] * len(values),
            "ts": [T0 + k for k in range(len(values))],
            "value": values,
            "quality": [0, 0, 0, 2, 0, 0, 0, 0],  # the 9.9 is Bad: no step into or out of it
        }
    )
    path = tmp_path / "long.parquet"
    pq.write_table(table, path)
    report = HistoryReport("long")
    _, held = _flatten(read_parquet(ParquetSource(path=path), report=report))
    assert not any(held)
    assert (report.tags["a"].changed, report.tags["a"].held, report.tags["a"].steps) == (8, 0, 5)
    assert report.deadbands() == {"a": pytest.approx(0.2)}
