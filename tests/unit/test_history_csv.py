"""The history readers on files written from the export descriptions (issue 5), no servers.

* Event log: ``date, parameter name, value, new value`` — one row per change; value is the
  value before the change, new value the value after it (the sample).
* Wide sparse: a date column, then one column per tag; an empty cell means unchanged.
* Parquet: long (tag, ts, value, quality) and wide, written with pyarrow and read back.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from prometheus_client import CollectorRegistry

from sentinelle.errors import SourceUnavailable
from sentinelle.metrics import DROP_REASONS, Metrics
from sentinelle.records import Quality, Sample
from sentinelle.settings import (
    CsvEventsSource,
    CsvWideSource,
    ParquetSource,
    TagSettings,
    WindowSettings,
    load_settings,
)
from sentinelle.sources.history import (
    HistoryReader,
    HistoryReport,
    parse_number,
    parse_timestamp,
    read_csv_events,
    read_csv_wide,
    read_parquet,
    timezone_of,
)
from sentinelle.windows import Windows

UTC = dt.UTC
PARIS = timezone_of("Europe/Paris")


def _ts(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, tz: dt.tzinfo = UTC) -> float:
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=tz).timestamp()


def _samples(chunks: object) -> list[Sample]:
    return [s for chunk in chunks for s in chunk]  # type: ignore[attr-defined]


def _triples(samples: Sequence[Sample]) -> list[tuple[str, float, object]]:
    return [(s.tag, s.source_ts, s.value) for s in samples]


def _dropped(m: Metrics, reason: str) -> float:
    return m.registry.get_sample_value("sentinelle_samples_dropped_total", {"reason": reason}) or 0.0


# -- the event log ----------------------------------------------------------------------------


EVENT_LOG = (
    "date;parameter name;value;new value\n"
    "05/03/2024 10:00:00;Chilled water temperature;5,00;5,20\n"
    "05/03/2024 10:00:00;Flow;60,0;61,5\n"
    "05/03/2024 10:00:04;Chilled water temperature;5,20;5,10\n"
    "05/03/2024 10:00:07;Power;400,0;410,0\n"
    "05/03/2024 10:00:09;Flow;61,5;59,8\n"
)
NAMES = {
    "Chilled water temperature": "chiller1.chw_temp_c",
    "Flow": "chiller1.flow_m3h",
    "Power": "chiller1.power_kw",
}


def test_event_log_sample_is_the_new_value_and_a_first_old_value_seeds_the_tag(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text(EVENT_LOG, encoding="utf-8-sig")  # Excel's UTF-8, with a byte-order mark
    source = CsvEventsSource(path=path, timezone="Europe/Paris", tag_map=NAMES)
    report = HistoryReport("events")
    got = _triples(_samples(read_csv_events(source, report=report)))
    t0 = _ts(2024, 3, 5, 10, 0, 0, tz=PARIS)
    assert t0 == _ts(2024, 3, 5, 9, 0, 0)  # CET: UTC+1 in March before the change
    assert got == [
        ("chiller1.chw_temp_c", t0, 5.2),  # first row of the file: no earlier date to seed at
        ("chiller1.flow_m3h", t0, 61.5),
        ("chiller1.chw_temp_c", t0 + 4, 5.1),  # the new value; its old value 5.20 is what it held
        # Power's first row: it held 400.0 before, known since the export's previous date.
        ("chiller1.power_kw", t0 + 4, 400.0),
        ("chiller1.power_kw", t0 + 7, 410.0),
        ("chiller1.flow_m3h", t0 + 9, 59.8),
    ]
    assert (report.rows, report.samples, report.malformed) == (5, 6, 0)


def test_event_log_range_start_carries_each_tags_value_into_the_look_back(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text(EVENT_LOG, encoding="utf-8")
    source = CsvEventsSource(path=path, timezone="Europe/Paris", tag_map=NAMES)
    t0 = _ts(2024, 3, 5, 10, 0, 0, tz=PARIS)
    got = _triples(_samples(read_csv_events(source, start=t0 + 5, end=t0 + 9)))
    assert got == [
        # Changes before the start set the state; it is emitted at the start ...
        ("chiller1.chw_temp_c", t0 + 5, 5.1),
        ("chiller1.flow_m3h", t0 + 5, 61.5),
        # ... Power, first seen inside the range, is seeded at the start with its old value.
        ("chiller1.power_kw", t0 + 5, 400.0),
        ("chiller1.power_kw", t0 + 7, 410.0),
        # The change at t0 + 9 is at the (exclusive) end.
    ]


def test_event_log_tag_filter_reads_only_the_tags_asked_for(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text(EVENT_LOG, encoding="utf-8")
    source = CsvEventsSource(path=path, tag_map=NAMES)
    report = HistoryReport("events")
    got = _samples(read_csv_events(source, tags={"chiller1.flow_m3h"}, report=report))
    assert {s.tag for s in got} == {"chiller1.flow_m3h"}
    assert report.other_tags == 3 and report.malformed == 0


def test_event_log_columns_are_found_by_name_in_any_order_and_case(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text(
        "New Value,Unit,DATE,Parameter  Name,Value\n"
        '"5,2",°C,2024-03-05T09:00:00Z,chw,5.0\n'  # a quoted decimal comma in a comma-separated file
        "5.1,°C,2024-03-05T09:00:01Z,chw,5.2\n"
    )
    got = _triples(_samples(read_csv_events(CsvEventsSource(path=path))))
    assert got == [("chw", _ts(2024, 3, 5, 9, 0, 0), 5.2), ("chw", _ts(2024, 3, 5, 9, 0, 1), 5.1)]


def test_event_log_missing_column_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text("date;tag;value\n2024-01-01;a;1\n")
    with pytest.raises(SourceUnavailable, match="no column 'parameter name'"):
        _samples(read_csv_events(CsvEventsSource(path=path)))
    with pytest.raises(SourceUnavailable, match="cannot open"):
        _samples(read_csv_events(CsvEventsSource(path=tmp_path / "missing.csv")))


# -- the wide sparse export ----------------------------------------------------------------------


WIDE = (
    "date;flow;pump %;supply temperature;chilled-water temperature;power\n"
    "2024-07-01 12:00:00;60,2;45,0;12,1;5,02;\n"  # power not known yet
    "2024-07-01 12:00:01;;;;5,04;\n"  # only the chilled water changed
    "2024-07-01 12:00:02;60,4;;;;401,5\n"  # power's first value starts it
    "2024-07-01 12:00:03;;;;;\n"  # nothing changed: every known value holds
)


def test_wide_empty_cell_means_unchanged_and_a_first_value_starts_the_tag(tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    path.write_text(WIDE)
    source = CsvWideSource(path=path, timezone="Europe/Paris")
    t0 = _ts(2024, 7, 1, 10, 0, 0)  # CEST: UTC+2 in July
    got = _triples(_samples(read_csv_wide(source)))
    by_time: dict[float, dict[str, object]] = {}
    for tag, ts, value in got:
        by_time.setdefault(ts, {})[tag] = value
    assert sorted(by_time) == [t0, t0 + 1, t0 + 2, t0 + 3]
    assert by_time[t0] == {"flow": 60.2, "pump %": 45.0, "supply temperature": 12.1, "chilled-water temperature": 5.02}
    assert by_time[t0 + 1] == {
        "flow": 60.2,
        "pump %": 45.0,
        "supply temperature": 12.1,
        "chilled-water temperature": 5.04,
    }
    assert by_time[t0 + 2]["flow"] == 60.4 and by_time[t0 + 2]["power"] == 401.5
    assert by_time[t0 + 3] == by_time[t0 + 2]


def test_wide_tag_map_date_column_by_name_and_range_start(tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    path.write_text(
        "\ufeffFlow\tTimestamp\tPower\n60\t2024-01-01T00:00:00Z\t400\n61\t2024-01-01T00:00:10Z\t\n"
        "62\t2024-01-01T00:00:20Z\t402\n",
        encoding="utf-8",
    )
    source = CsvWideSource(path=path, date_column="timestamp", tag_map={"Flow": "c.flow", "Power": "c.power"})
    t0 = _ts(2024, 1, 1)
    got = _triples(_samples(read_csv_wide(source, start=t0 + 5)))
    assert got == [
        ("c.flow", t0 + 5, 60.0),
        ("c.power", t0 + 5, 400.0),  # the values at the start
        ("c.flow", t0 + 10, 61.0),
        ("c.power", t0 + 10, 400.0),
        ("c.flow", t0 + 20, 62.0),
        ("c.power", t0 + 20, 402.0),
    ]


def test_both_exports_of_one_history_give_the_same_windows(tmp_path: Path) -> None:
    """The event log and the wide export of the same changes resample to the same windows."""
    changes = [  # (seconds after t0, tag, old, new)
        (0, "a", 1.0, 1.5),
        (0, "b", 10.0, 10.0),
        (1, "a", 1.5, 1.6),
        (3, "b", 10.0, 11.0),
        (4, "a", 1.6, 1.2),
        (6, "a", 1.2, 1.3),
        (6, "b", 11.0, 12.5),
        (9, "a", 1.3, 1.0),
    ]
    t0 = _ts(2024, 2, 1)
    iso = {k: dt.datetime.fromtimestamp(t0 + k, UTC).isoformat() for k in range(10)}
    events = tmp_path / "events.csv"
    events.write_text(
        "date,parameter name,value,new value\n"
        + "".join(f"{iso[k]},{tag},{old},{new}\n" for k, tag, old, new in changes)
    )
    wide = tmp_path / "wide.csv"
    rows = {k: {tag: new for kk, tag, _, new in changes if kk == k} for k in sorted({c[0] for c in changes})}
    wide.write_text("date,a,b\n" + "".join(f"{iso[k]},{r.get('a', '')},{r.get('b', '')}\n" for k, r in rows.items()))

    def windows_of(samples: list[Sample]) -> list[tuple[float, list[float]]]:
        tags = [TagSettings(name=n, asset="x", node_id=f"ns=2;s={n}") for n in ("a", "b")]
        w = Windows(
            tags, WindowSettings(context_steps=8, allowed_lateness_s=0.0, max_hold_s=5.0), Metrics(CollectorRegistry())
        )
        return [(b.ts, b.values.tolist()) for b in w.ingest(samples)]

    from_events = windows_of(_samples(read_csv_events(CsvEventsSource(path=events))))
    from_wide = windows_of(_samples(read_csv_wide(CsvWideSource(path=wide))))
    assert from_events == from_wide
    assert [v for _, v in from_events] == [
        [1.5, 10.0],
        [1.6, 10.0],
        [1.6, 10.0],
        [1.6, 11.0],
        [1.2, 11.0],
        [1.2, 11.0],
        [1.3, 12.5],
        [1.3, 12.5],
        [1.3, 12.5],
    ]


# -- the one rule for dates and numbers -----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "zone", "expected"),
    [
        ("2024-01-15 12:00:00", "UTC", _ts(2024, 1, 15, 12)),
        ("2024-01-15T12:00:00.250Z", "Europe/Paris", _ts(2024, 1, 15, 12) + 0.25),
        ("2024-01-15 12:00:00+01:00", "UTC", _ts(2024, 1, 15, 11)),
        ("2024-01-15", "UTC", _ts(2024, 1, 15)),
        ("15/01/2024 12:00", "UTC", _ts(2024, 1, 15, 12)),
        ("15/01/2024 12:00:30,5", "UTC", _ts(2024, 1, 15, 12, 0, 30) + 0.5),
        ("5/1/2024 12:00:00 Z", "Europe/Paris", _ts(2024, 1, 5, 12)),
        ("15/01/2024 12:00:00 -0230", "UTC", _ts(2024, 1, 15, 14, 30)),
        # Naive: wall-clock time in the zone, winter and summer offsets.
        ("15/01/2024 12:00:00", "Europe/Paris", _ts(2024, 1, 15, 11)),
        ("2024-07-15 12:00:00", "Europe/Paris", _ts(2024, 7, 15, 10)),
        # Autumn's repeated hour: its first occurrence (fold=0, still summer time).
        ("2024-10-27 02:30:00", "Europe/Paris", _ts(2024, 10, 27, 0, 30)),
        # Spring's skipped hour: read with the offset before the change.
        ("2024-03-31 02:30:00", "Europe/Paris", _ts(2024, 3, 31, 1, 30)),
    ],
)
def test_dates(text: str, zone: str, expected: float) -> None:
    assert parse_timestamp(text, timezone_of(zone)) == expected


@pytest.mark.parametrize("text", ["", "yesterday", "2024-13-01", "31/02/2024 10:00", "12:00:00", "01/2024"])
def test_bad_dates(text: str) -> None:
    with pytest.raises(ValueError):
        parse_timestamp(text, UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5,2", 5.2),
        (" 5.2 ", 5.2),
        ("-0,5", -0.5),
        ("1\u202f234,5", 1234.5),
        ("1 234 567", 1234567.0),
        ("1.234,5", 1234.5),
        ("1,234.5", 1234.5),
        ("1e3", 1000.0),
        ("False", 0.0),
    ],
)
def test_numbers(text: str, expected: float) -> None:
    assert parse_number(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "1,2,3", "1_000", "5,2 °C", "--1"])
def test_bad_numbers(text: str) -> None:
    with pytest.raises(ValueError):
        parse_number(text)


def test_nan_is_read_and_left_for_the_windows_to_count() -> None:
    assert math.isnan(parse_number("NaN"))


# -- malformed rows: reported with file and line, counted, skipped ----------------------------------


def test_malformed_event_rows_are_reported_with_file_and_line_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text(
        "date;parameter name;value;new value\n"
        "2024-01-01 00:00:00;a;1;2\n"  # line 2: fine
        "2024-01-01 00:00:01;a;2;oops\n"  # line 3: value
        "not a date;a;2;3\n"  # line 4: date
        "2024-01-01 00:00:02;a;2\n"  # line 5: a field missing
        "\n"  # line 6: blank, ignored
        "2024-01-01 00:00:03;a;2;3;\n"  # line 7: trailing separator, fine
        "2024-01-01 00:00:04;a;3;4;extra\n"  # line 8: one field too many
        "2024-01-01 00:00:05;;3;4\n"  # line 9: no parameter name
        "32/01/2024 00:00:06;a;4;5\n"  # line 10: no such day
    )
    metrics = Metrics(CollectorRegistry())
    report = HistoryReport("events", metrics=metrics)
    got = _triples(_samples(read_csv_events(CsvEventsSource(path=path), report=report)))
    assert got == [("a", _ts(2024, 1, 1), 2.0), ("a", _ts(2024, 1, 1, 0, 0, 3), 3.0)]
    assert dict(report.skipped) == {"malformed_value": 1, "malformed_date": 2, "malformed_row": 3}
    assert [(p.where, p.reason) for p in report.problems] == [
        (f"{path}:3", "malformed_value"),
        (f"{path}:4", "malformed_date"),
        (f"{path}:5", "malformed_row"),
        (f"{path}:8", "malformed_row"),
        (f"{path}:9", "malformed_row"),
        (f"{path}:10", "malformed_date"),
    ]
    assert "oops" in report.problems[0].detail
    assert report.rows == 8
    for reason in ("malformed_value", "malformed_date", "malformed_row"):
        assert reason in DROP_REASONS
    assert _dropped(metrics, "malformed_row") == 3 and _dropped(metrics, "malformed_date") == 2
    assert _dropped(metrics, "malformed_value") == 1


def test_malformed_wide_cell_skips_that_cell_and_ends_its_held_value(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "wide.csv"
    path.write_text(
        "date,a,b\n"
        "2024-01-01T00:00:00Z,1,10\n"
        "2024-01-01T00:00:01Z,#N/A,\n"  # line 3: a unreadable, b held
        "2024-01-01T00:00:02Z,,11\n"  # a stays unknown until its next value
        "2024-01-01T00:00:03Z,2\n"  # line 5: a field short
        "yesterday,3,12\n"  # line 6
        "2024-01-01T00:00:04Z,nan,\n"  # a: NaN emitted once (the windows count it), then unknown
        "2024-01-01T00:00:05Z,,\n"
    )
    report = HistoryReport("wide")
    with caplog.at_level("WARNING", logger="sentinelle.sources.history"):
        got = _triples(_samples(read_csv_wide(CsvWideSource(path=path), report=report)))
    t0 = _ts(2024, 1, 1)
    assert [(tag, ts - t0, v) for tag, ts, v in got if not (isinstance(v, float) and math.isnan(v))] == [
        ("a", 0, 1.0),
        ("b", 0, 10.0),
        ("b", 1, 10.0),
        ("b", 2, 11.0),
        ("b", 4, 11.0),
        ("b", 5, 11.0),
    ]
    assert [(tag, ts - t0) for tag, ts, v in got if isinstance(v, float) and math.isnan(v)] == [("a", 4)]
    assert dict(report.skipped) == {"malformed_value": 1, "malformed_row": 1, "malformed_date": 1}
    assert [p.where for p in report.problems] == [f"{path}:3", f"{path}:5", f"{path}:6"]
    assert f"{path}:3: malformed_value: column 'a': '#N/A'" in caplog.text


def test_many_malformed_rows_are_all_counted_but_logged_a_bounded_number_of_times(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "events.csv"
    path.write_text("date,parameter name,value,new value\n" + "bad,a,1,2\n" * 500)
    report = HistoryReport("events")
    with caplog.at_level("WARNING", logger="sentinelle.sources.history"):
        assert _samples(read_csv_events(CsvEventsSource(path=path), report=report)) == []
    assert report.skipped["malformed_date"] == 500
    assert len(caplog.records) <= 25


# -- Parquet ---------------------------------------------------------------------------------


def test_parquet_long_round_trip_with_quality_nan_and_tag_map(tmp_path: Path) -> None:
    t0 = dt.datetime(2024, 5, 1, 12, tzinfo=UTC)
    table = pa.table(
        {
            "tag": ["FIC101", "TI200", "FIC101", "TI200", "FIC101", None],
            "ts": pa.array([t0 + dt.timedelta(seconds=k) for k in (0, 0, 1, 1, 2, 3)], pa.timestamp("ms", tz="UTC")),
            "value": [60.5, 5.01, float("nan"), 5.02, 61.0, 1.0],
            "quality": [0, 0, 0, 0x80000000, None, 0],
        }
    )
    path = tmp_path / "history.parquet"
    pq.write_table(table, path, row_group_size=2)
    source = ParquetSource(path=path, tag_map={"FIC101": "c.flow", "TI200": "c.chw"})
    report = HistoryReport("pq")
    samples = _samples(read_parquet(source, report=report, chunk_samples=3))
    s0 = t0.timestamp()
    assert [(s.tag, s.source_ts - s0, s.quality) for s in samples] == [
        ("c.flow", 0, Quality.GOOD),
        ("c.chw", 0, Quality.GOOD),
        ("c.flow", 1, Quality.GOOD),
        ("c.chw", 1, Quality.BAD),
        ("c.flow", 2, Quality.GOOD),
    ]
    assert math.isnan(samples[2].value)  # type: ignore[arg-type]
    assert [p.where for p in report.problems] == [f"{path}:row 6"]
    # The time range and the tag filter apply as for CSV.
    ranged = _samples(read_parquet(source, start=s0 + 1, end=s0 + 2, tags={"c.chw"}))
    assert [(s.tag, s.source_ts - s0, s.value) for s in ranged] == [("c.chw", 1, 5.02)]


def test_parquet_naive_times_are_in_the_configured_zone_and_numbers_are_epoch_seconds(tmp_path: Path) -> None:
    naive = pa.table(
        {
            "tag": ["a"],
            "ts": pa.array([dt.datetime(2024, 7, 1, 12)], pa.timestamp("us")),
            "value": [1.0],
        }
    )
    pq.write_table(naive, tmp_path / "naive.parquet")
    got = _samples(read_parquet(ParquetSource(path=tmp_path / "naive.parquet", timezone="Europe/Paris")))
    assert got[0].source_ts == _ts(2024, 7, 1, 10)
    numeric = pa.table({"Tag": ["a"], "TS": [1_700_000_000.5], "Value": ["5,5"]})
    pq.write_table(numeric, tmp_path / "numeric.parquet")
    got = _samples(read_parquet(ParquetSource(path=tmp_path / "numeric.parquet")))
    assert _triples(got) == [("a", 1_700_000_000.5, 5.5)]


def test_parquet_wide_forward_fills_nulls(tmp_path: Path) -> None:
    t0 = dt.datetime(2024, 5, 1, tzinfo=UTC)
    table = pa.table(
        {
            "ts": pa.array(
                [t0, t0 + dt.timedelta(seconds=1), t0 + dt.timedelta(seconds=2)], pa.timestamp("s", tz="UTC")
            ),
            "flow": [60.0, None, 61.0],
            "power": [None, 400.0, None],
        }
    )
    pq.write_table(table, tmp_path / "wide.parquet")
    got = _triples(_samples(read_parquet(ParquetSource(path=tmp_path / "wide.parquet", layout="wide"))))
    s0 = t0.timestamp()
    assert got == [
        ("flow", s0, 60.0),
        ("flow", s0 + 1, 60.0),
        ("power", s0 + 1, 400.0),
        ("flow", s0 + 2, 61.0),
        ("power", s0 + 2, 400.0),
    ]


def test_parquet_unreadable_file_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "junk.parquet").write_bytes(b"not parquet")
    with pytest.raises(SourceUnavailable):
        _samples(read_parquet(ParquetSource(path=tmp_path / "junk.parquet")))
    pq.write_table(pa.table({"tag": ["a"], "value": [1.0]}), tmp_path / "no_ts.parquet")
    with pytest.raises(SourceUnavailable, match="no column 'ts'"):
        _samples(read_parquet(ParquetSource(path=tmp_path / "no_ts.parquet")))


# -- the async reader and the settings ------------------------------------------------------------


@pytest.mark.asyncio
async def test_reader_streams_a_large_file_in_bounded_chunks(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    path.write_text(
        "date,parameter name,value,new value\n"
        + "".join(f"{dt.datetime.fromtimestamp(k, UTC).isoformat()},t{k % 7},0,{k}\n" for k in range(25_000))
    )
    reader = HistoryReader(CsvEventsSource(path=path))
    sizes = [len(chunk) async for chunk in reader.chunks(chunk_samples=4_000)]
    assert max(sizes) <= 4_000 and sum(sizes) == reader.report.samples == 25_000 + 7 - 1  # 6 seeds


def test_history_settings_from_toml(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(
        """
[history]
backfill_lookback_s = 900.0
required_at_start = true

[[history.sources]]
kind = "csv_events"
path = "/var/lib/sentinelle/history/events.csv"
timezone = "Europe/Paris"
tag_map = { "Chilled water temperature" = "chiller1.chw_temp_c" }

[[history.sources]]
kind = "postgres"
dsn = "postgresql://reader@historian:5432/plant"
table = "archive.history"
"""
    )
    h = load_settings(path).history
    assert h.backfill_lookback_s == 900.0 and h.required_at_start
    events, pg = h.sources
    assert isinstance(events, CsvEventsSource) and events.tag_map == {
        "Chilled water temperature": "chiller1.chw_temp_c"
    }
    assert pg.kind == "postgres" and "reader" not in repr(pg)  # the DSN is a secret


def test_the_documented_examples_in_the_example_config_are_valid() -> None:
    """config/sentinelle.toml shows one commented [[history.sources]] per kind: uncommented, they load."""
    import re
    import tomllib

    example = Path(__file__).resolve().parents[2] / "config" / "sentinelle.toml"
    lines = example.read_text().splitlines()
    first = lines.index("# [[history.sources]]")
    # The TOML lines of the commented examples, not the prose between them.
    block = [line[2:] for line in lines[first:] if re.match(r"# (\[\[|[a-z_]+ = )", line)]
    sources = tomllib.loads("\n".join(line.replace("[[history.sources]]", "[[sources]]") for line in block))["sources"]
    settings = load_settings(example, history={"sources": sources})
    assert [s.kind for s in settings.history.sources] == ["csv_events", "csv_wide", "parquet", "postgres"]
    assert settings.history.required_at_start is False
