"""Property tests (hypothesis): any input to the config loader or a history reader gives a result or a
clear error naming the place, never another exception and never a hang.

Example counts are bounded (``_FAST``, ``FUZZ_EXAMPLES`` in the environment raises them) so the
module runs in seconds; hypothesis' database is off (no files written next to the tests) and its
deadline (10 s an example) catches a reader that stalls.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import math
import os
import string
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import tomli_w
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sentinelle.errors import ConfigError, SentinelleError
from sentinelle.settings import CsvEventsSource, CsvWideSource, ParquetSource, Settings, load_settings, read_toml
from sentinelle.sources.history import (
    SampleChunk,
    parse_number,
    parse_timestamp,
    read_csv_events,
    read_csv_wide,
    read_parquet,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = read_toml(ROOT / "config" / "sentinelle.toml")
SECTIONS = set(Settings.model_fields)

_FAST = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "60")),  # more for a deeper run: FUZZ_EXAMPLES=5000
    deadline=10_000,  # generous on a loaded machine (the first read imports pyarrow); a hang still fails
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# TOML values of every kind, small.
_scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(string.ascii_lowercase + "_", max_size=12), inner, max_size=3)
    ),
    max_leaves=8,
)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("SENTINELLE_") or name == "CREDENTIALS_DIRECTORY":
            monkeypatch.delenv(name)


def _names_a_place(e: ConfigError, where: str) -> bool:
    """The error's field is a settings path (its section known), an environment variable or the file."""
    field = e.field or str(e).partition(":")[0]
    head = field.split(".")[0].split("[")[0]
    return head in SECTIONS or field.startswith("SENTINELLE_") or field == where


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside the example's data (dict keys and list indexes)."""
    out = [prefix] if prefix else []
    if isinstance(data, dict):
        for k, v in data.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out += _paths(v, (*prefix, i))
    return out


_EXAMPLE_PATHS = _paths(EXAMPLE)


@_FAST
@given(path=st.sampled_from(_EXAMPLE_PATHS), value=_values)
def test_any_value_anywhere_in_the_example_config_loads_or_names_the_place(
    tmp_path: Path, path: tuple[Any, ...], value: Any
) -> None:
    data = copy.deepcopy(EXAMPLE)
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    file = tmp_path / "fuzz.toml"
    try:
        file.write_text(tomli_w.dumps(data))
    except (TypeError, ValueError):  # not representable in TOML (e.g. a list of mixed tables)
        return
    try:
        load_settings(file)
    except ConfigError as e:
        assert _names_a_place(e, str(file)), str(e)


@_FAST
@given(text=st.text(max_size=300))
def test_any_text_as_a_config_file_loads_or_names_the_place(tmp_path: Path, text: str) -> None:
    file = tmp_path / "fuzz.toml"
    try:
        file.write_bytes(text.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate: no file could hold it
        return
    try:
        load_settings(file)
    except ConfigError as e:
        assert _names_a_place(e, str(file)), str(e)


@pytest.mark.parametrize("text", ["0=0", "detekt = {}", "[tag]\nname = 'x'"])
def test_an_unknown_top_level_key_names_the_file_and_the_sections(tmp_path: Path, text: str) -> None:
    """Found by the fuzz test above (``0=0``): the key alone named no section and no file."""
    file = tmp_path / "site.toml"
    file.write_text(text)
    with pytest.raises(ConfigError, match="unknown top-level key") as e:
        load_settings(file)
    assert e.value.field == str(file) and "detect" in str(e.value) and "tags" in str(e.value)


_env_names = st.lists(
    st.sampled_from(["SOURCES", "TAGS", "DETECT", "ASSETS", "KAFKA", "0", "1", "7", "PASSWORD", "URL", "NAME", "X"]),
    min_size=1,
    max_size=4,
).map(lambda parts: "SENTINELLE_" + "__".join(parts))
_env_values = st.one_of(
    st.text(string.printable, max_size=30), st.sampled_from(['[{"name": "a"}]', "{}", "[]", '{"0": {}}', "null"])
)


@_FAST
@given(env=st.dictionaries(_env_names, _env_values, max_size=3))
def test_any_environment_override_loads_or_names_the_place(env: dict[str, str]) -> None:
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        try:
            load_settings(ROOT / "config" / "sentinelle.toml")
        except ConfigError as e:
            assert _names_a_place(e, ""), str(e)


# --- history readers ---------------------------------------------------------------------------

_cells = st.one_of(
    st.sampled_from(["", " ", "1,5", "1.234,5", "nan", "inf", "true", "Good", "-0", "1e999", "2024-03-31 02:30:00"]),
    st.sampled_from(["05/03/2024 10:00:00", "2024-13-45", "31/02/2024 25:61", "1709629200", '"q;u"o"te"']),
    st.text(max_size=12),
)


def _csv(rows: list[list[str]], sep: str) -> str:
    return "\n".join(sep.join(r) for r in rows) + "\n"


def _read_source(source: CsvEventsSource | CsvWideSource | ParquetSource) -> int:
    """Every sample of a history export, read by the reader of its format."""
    if isinstance(source, ParquetSource):
        return _read_all(read_parquet(source))
    if isinstance(source, CsvEventsSource):
        return _read_all(read_csv_events(source))
    return _read_all(read_csv_wide(source))


def _read_all(chunks: Iterable[SampleChunk]) -> int:
    n = 0
    for chunk in chunks:
        for s in chunk:
            assert isinstance(s.source_ts, float) and isinstance(s.value, float)
            assert math.isfinite(s.source_ts)
            n += 1
    return n


def _clear(e: SentinelleError, label: str) -> bool:
    return f"history {label}" in str(e)


@_FAST
@given(
    rows=st.lists(st.lists(_cells, min_size=0, max_size=5), max_size=12),
    sep=st.sampled_from([";", ",", "\t"]),
    start=st.one_of(st.none(), st.floats(0, 2e9)),
)
@example(rows=[["", "1,5", "", "1,5"]], sep=";", start=None)  # an empty first date was read as NaN
def test_any_event_log_reads_or_fails_naming_the_source(
    tmp_path: Path, rows: list[list[str]], sep: str, start: float | None
) -> None:
    path = tmp_path / "events.csv"
    header = ["date", "parameter name", "value", "new value"]
    path.write_text(_csv([header, *rows], sep), encoding="utf-8", errors="replace")
    source = CsvEventsSource(path=path, name="fuzz", timezone="Europe/Paris")
    try:
        _read_all(read_csv_events(source, start=start, chunk_samples=3))
    except SentinelleError as e:
        assert _clear(e, "fuzz"), str(e)


@_FAST
@given(
    rows=st.lists(st.lists(_cells, min_size=0, max_size=5), max_size=12),
    header=st.lists(st.text(max_size=8), min_size=1, max_size=5),
    sep=st.sampled_from([";", ",", "\t"]),
)
def test_any_wide_export_reads_or_fails_naming_the_source(
    tmp_path: Path, rows: list[list[str]], header: list[str], sep: str
) -> None:
    path = tmp_path / "wide.csv"
    path.write_text(_csv([header, *rows], sep), encoding="utf-8", errors="replace")
    source = CsvWideSource(path=path, name="fuzz")
    try:
        _read_all(read_csv_wide(source, chunk_samples=4))
    except SentinelleError as e:
        assert _clear(e, "fuzz"), str(e)


@_FAST
@given(data=st.binary(max_size=400))
def test_any_bytes_as_an_export_read_or_fail_naming_the_source(tmp_path: Path, data: bytes) -> None:
    for name, source in (
        ("events.csv", CsvEventsSource(path=tmp_path / "events.csv", name="fuzz")),
        ("wide.csv", CsvWideSource(path=tmp_path / "wide.csv", name="fuzz")),
        ("long.parquet", ParquetSource(path=tmp_path / "long.parquet", name="fuzz")),
    ):
        (tmp_path / name).write_bytes(data)
        try:
            _read_source(source)
        except SentinelleError as e:
            assert _clear(e, "fuzz"), str(e)


_arrow_columns = st.sampled_from(
    [
        ("tag", pa.string(), st.one_of(st.none(), st.text(max_size=6))),
        ("ts", pa.float64(), st.one_of(st.none(), st.floats())),
        ("ts", pa.int64(), st.integers(-(2**62), 2**62)),
        ("ts", pa.timestamp("ms"), st.one_of(st.none(), st.integers(-(2**40), 2**40))),
        ("ts", pa.string(), st.one_of(st.none(), _cells)),
        ("value", pa.float64(), st.one_of(st.none(), st.floats())),
        ("value", pa.string(), st.one_of(st.none(), _cells)),
        ("value", pa.bool_(), st.one_of(st.none(), st.booleans())),
        ("quality", pa.int64(), st.one_of(st.none(), st.integers(-(2**40), 2**40))),
        ("quality", pa.string(), st.one_of(st.none(), st.text(max_size=8))),
        ("extra", pa.float64(), st.floats()),
    ]
)


@st.composite
def _arrow_tables(draw: st.DrawFn) -> pa.Table:
    columns = draw(st.lists(_arrow_columns, min_size=1, max_size=5, unique_by=lambda c: c[0]))
    n = draw(st.integers(0, 8))
    arrays = {name: pa.array([draw(values) for _ in range(n)], type=kind) for name, kind, values in columns}
    return pa.table(arrays)


@_FAST
@given(table=_arrow_tables(), layout=st.sampled_from(["long", "wide"]))
@example(  # a numeric time of +inf was read as a sample at infinity (only NaN was skipped)
    table=pa.table({"value": pa.array([0.0], pa.float64()), "ts": pa.array([math.inf], pa.float64())}), layout="wide"
)
@example(table=pa.table({"tag": ["a"], "ts": pa.array([-math.inf], pa.float64()), "value": [1.0]}), layout="long")
def test_any_parquet_table_reads_or_fails_naming_the_source(tmp_path: Path, table: pa.Table, layout: str) -> None:
    path = tmp_path / "history.parquet"
    pq.write_table(table, path)
    source = ParquetSource(path=path, name="fuzz", layout=layout)  # type: ignore[arg-type]
    try:
        _read_all(read_parquet(source, chunk_samples=3))
    except SentinelleError as e:
        assert _clear(e, "fuzz"), str(e)


@_FAST
@given(text=st.one_of(st.text(max_size=40), _cells))
def test_numbers_and_dates_parse_or_raise_value_error(text: str) -> None:
    with contextlib.suppress(ValueError):
        assert isinstance(parse_number(text), float)
    with contextlib.suppress(ValueError):
        assert math.isfinite(parse_timestamp(text, dt.UTC))
