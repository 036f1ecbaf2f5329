"""Loaders for the public datasets in ``shared/data``: each returns named numpy series.

Pretraining and the benchmarks read the same files through these functions, so a
unit, a gap or a label is interpreted once.  What may be *used* for what is not
decided here but in :mod:`sentinelle.evaluation.heldout`.

Every :class:`Series` is float64 with NaN for gaps, on a regular grid of
``period_s`` seconds (missing samples become NaN rather than shifting the
rest), with its epoch-second timestamps alongside:

* electricity (``electricity_fr/daily.csv``): ``load_mw_mean`` (daily mean of the
  half-hourly national load, MW) and ``temp_c``; period one day.  The original
  study's unit is ``48 × load_mw_mean`` (:func:`to_study_units`).
* SKAB (``skab/<group>/<file>.csv``, ``;``-separated): every sensor channel of
  every file; period 1 s; per-point ``anomaly`` / ``changepoint`` labels kept.
* LBNL AHU (``lbnl_ahu_fdd/*.csv``): every channel, split where the files glue
  separate days together; period 60 s; the per-day fault label is kept per point.

>>> import tempfile, pathlib
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> (root / "electricity_fr").mkdir()
>>> _ = (root / "electricity_fr" / "daily.csv").write_text(
...     "date,load_mw_mean,temp_c\\n2014-10-30,50000,10\\n2014-10-31,51000.5,11\\n")
>>> load = load_electricity(root)["load_mw_mean"]
>>> load.values.tolist(), load.period_s, load.dates()
([50000.0, 51000.5], 86400.0, ['2014-10-30', '2014-10-31'])
"""

from __future__ import annotations

import csv
import datetime as dt
import itertools
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ..errors import ConfigError
from ..records import BoolArray, FloatArray

IntArray = npt.NDArray[np.int64]

DATA_DIR_ENV = "SENTINELLE_DATA_DIR"
"""Environment variable that overrides where the shared datasets are."""

DAY_S = 86_400.0
STUDY_UNIT_FACTOR = 48.0
"""The original LLM study on the electricity series worked on the daily *sum* of 48 half-hourly MW values."""

SKAB_GROUPS: tuple[str, ...] = ("anomaly-free", "valve1", "valve2", "other")
_SKAB_LABEL_COLUMNS = ("anomaly", "changepoint")
_SKAB_UNITS = {
    "Accelerometer1RMS": "g",
    "Accelerometer2RMS": "g",
    "Current": "A",
    "Pressure": "bar",
    "Temperature": "degC",
    "Thermocouple": "degC",
    "Voltage": "V",
    "Volume Flow RateRMS": "L/min",
}
LBNL_FILES: tuple[str, ...] = ("SZCAV", "SZVAV", "MZVAV-2-1", "MZVAV-2-2")
_LBNL_LABEL_COLUMN = "Fault Detection Ground Truth"
_LBNL_PERIOD_S = 60.0
_SKAB_PERIOD_S = 1.0


@dataclass(frozen=True, slots=True)
class Series:
    """One channel of one recording, on a regular time grid.

    ``name`` is unique across datasets (``skab/valve1/3/Current``);
    ``labels`` marks anomalous / faulted points (None: the dataset has none);
    ``group`` is the part of the dataset the held-out rules talk about (SKAB's
    folder, LBNL's file).
    """

    name: str
    dataset: str
    values: FloatArray
    timestamps: FloatArray
    period_s: float
    unit: str = ""
    group: str = ""
    labels: BoolArray | None = None
    changepoints: BoolArray | None = None
    meta: dict[str, str] = field(default_factory=dict)
    held: BoolArray | None = None
    """Points no sample was read for, only a held (forward-filled) value of a compressed export
    (:func:`~.history_data.resample`); None: every point was read.  Fine-tuning takes them for targets known
    only to within ``deadband`` (``finetune.held_targets``)."""
    deadband: float | None = None
    """The export's deadband (the tag's units): a held point's true value lay within ±``deadband`` of the value
    held — the export writes a value only once it moves further than that.  None: not known (then fine-tuning
    does not train on held points)."""

    def __post_init__(self) -> None:
        if self.values.shape != self.timestamps.shape or self.values.ndim != 1:
            raise ValueError(f"{self.name}: values and timestamps must be 1-D and aligned")
        for extra in (self.labels, self.changepoints, self.held):
            if extra is not None and extra.shape != self.values.shape:
                raise ValueError(f"{self.name}: labels must align with values")
        if self.deadband is not None and not (math.isfinite(self.deadband) and self.deadband >= 0):
            raise ValueError(f"{self.name}: deadband {self.deadband} is not a finite number >= 0")

    def __len__(self) -> int:
        return int(self.values.shape[0])

    def slice(self, start: int, stop: int, *, name: str | None = None) -> Series:
        """The points ``start:stop`` as a new series (labels follow)."""
        return Series(
            name=name or self.name,
            dataset=self.dataset,
            values=self.values[start:stop],
            timestamps=self.timestamps[start:stop],
            period_s=self.period_s,
            unit=self.unit,
            group=self.group,
            labels=None if self.labels is None else self.labels[start:stop],
            changepoints=None if self.changepoints is None else self.changepoints[start:stop],
            meta=dict(self.meta),
            held=None if self.held is None else self.held[start:stop],
            deadband=self.deadband,
        )

    def dates(self) -> list[str]:
        """ISO dates (UTC) of the points: readable checks of daily series."""
        return [dt.datetime.fromtimestamp(t, dt.UTC).date().isoformat() for t in self.timestamps.tolist()]


def default_data_dir() -> Path:
    """``$SENTINELLE_DATA_DIR``, else ``<repo>/../shared/data`` (the checkout's sibling ``shared``)."""
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env)
    repo = Path(__file__).resolve().parents[3]
    return repo.parent / "shared" / "data"


def to_study_units(load_mw_mean: FloatArray) -> FloatArray:
    """Daily mean MW → the original study's unit, the daily sum of 48 half-hourly MW values.

    >>> to_study_units(np.array([50_000.0])).tolist()
    [2400000.0]
    """
    return np.asarray(load_mw_mean, dtype=np.float64) * STUDY_UNIT_FACTOR


# -- electricity ------------------------------------------------------------------


def load_electricity(
    data_dir: Path | None = None, columns: Iterable[str] = ("load_mw_mean", "temp_c")
) -> dict[str, Series]:
    """``electricity_fr/daily.csv``: the named columns, daily, keyed by column name."""
    path = _dir(data_dir) / "electricity_fr" / "daily.csv"
    header, rows = _read_csv(path, ",")
    wanted = list(columns)
    for c in wanted:
        if c not in header:
            raise ConfigError(f"no column {c!r} (has {header})", field=str(path))
    dates = [r[header.index("date")] for r in rows]
    day = np.array([_date_ts(d) for d in dates], dtype=np.float64)
    grid = _grid_index(day, DAY_S, path)
    timestamps = day[0] + DAY_S * np.arange(grid[-1] + 1 if len(grid) else 0, dtype=np.float64)
    out: dict[str, Series] = {}
    units = {"load_mw_mean": "MW", "energy_mwh": "MWh", "temp_c": "degC"}
    for c in wanted:
        values = np.full(timestamps.shape, np.nan)
        values[grid] = _floats([r[header.index(c)] for r in rows])
        out[c] = Series(
            name=f"electricity/{c}",
            dataset="electricity",
            values=values,
            timestamps=timestamps,
            period_s=DAY_S,
            unit=units.get(c, ""),
            group="daily",
        )
    return out


# -- SKAB -------------------------------------------------------------------------


def skab_files(data_dir: Path | None = None, groups: Iterable[str] = SKAB_GROUPS) -> list[tuple[str, Path]]:
    """``(group, path)`` of SKAB's CSVs in a stable order (files sorted by number)."""
    root = _dir(data_dir) / "skab"
    found: list[tuple[str, Path]] = []
    for group in groups:
        folder = root / group
        if not folder.is_dir():
            raise ConfigError("SKAB folder not found", field=str(folder))
        files = sorted(folder.glob("*.csv"), key=lambda p: (len(p.stem), p.stem))
        found.extend((group, f) for f in files)
    return found


def load_skab(data_dir: Path | None = None, groups: Iterable[str] = SKAB_GROUPS) -> list[Series]:
    """Every sensor channel of every SKAB file of ``groups``, resampled to its 1 s grid.

    A few seconds are missing in every file (and once four minutes): they become
    NaN so that a forecast horizon of 16 steps stays 16 seconds.
    """
    out: list[Series] = []
    for group, path in skab_files(data_dir, groups):
        header, rows = _read_csv(path, ";")
        if not rows:  # a header alone (a copy cut short): nothing to resample
            raise ConfigError("no data rows under the header", field=str(path))
        ts = np.array([_datetime_ts(r[0], path) for r in rows], dtype=np.float64)
        grid = _grid_index(ts, _SKAB_PERIOD_S, path)
        n = int(grid[-1]) + 1 if len(grid) else 0
        timestamps = ts[0] + _SKAB_PERIOD_S * np.arange(n, dtype=np.float64)
        labels: dict[str, BoolArray] = {}
        for c in _SKAB_LABEL_COLUMNS:
            if c in header:
                mask = np.zeros(n, dtype=bool)
                mask[grid] = _floats([r[header.index(c)] for r in rows]) > 0.5
                labels[c] = mask
        for i, c in enumerate(header):
            if i == 0 or c in _SKAB_LABEL_COLUMNS:
                continue
            values = np.full(n, np.nan)
            values[grid] = _floats([r[i] for r in rows])
            out.append(
                Series(
                    name=f"skab/{group}/{path.stem}/{c}",
                    dataset="skab",
                    values=values,
                    timestamps=timestamps,
                    period_s=_SKAB_PERIOD_S,
                    unit=_SKAB_UNITS.get(c, ""),
                    group=group,
                    labels=labels.get("anomaly"),
                    changepoints=labels.get("changepoint"),
                    meta={"file": f"{group}/{path.name}", "channel": c},
                )
            )
    return out


# -- LBNL AHU ---------------------------------------------------------------------


def load_lbnl(data_dir: Path | None = None, files: Iterable[str] = LBNL_FILES) -> list[Series]:
    """Every channel of the LBNL AHU files, one series per contiguous stretch of days.

    The files glue separate test days together; a forecast across such a seam
    would learn a jump that never happened, so each stretch is its own series.
    ``labels`` is the day's fault flag at every minute of that day.
    """
    root = _dir(data_dir) / "lbnl_ahu_fdd"
    out: list[Series] = []
    for stem in files:
        path = root / f"{stem}.csv"
        header, rows = _read_csv(path, ",")
        header = [h.strip() for h in header]
        ts = np.array([_lbnl_ts(r[0], path) for r in rows], dtype=np.float64)
        if _LBNL_LABEL_COLUMN not in header:
            raise ConfigError(f"no column {_LBNL_LABEL_COLUMN!r}", field=str(path))
        fault = _floats([r[header.index(_LBNL_LABEL_COLUMN)] for r in rows]) > 0.5
        seams = np.flatnonzero(np.diff(ts) != _LBNL_PERIOD_S) + 1
        bounds = [0, *seams.tolist(), len(rows)]
        channels = [(i, c) for i, c in enumerate(header) if i > 0 and c != _LBNL_LABEL_COLUMN]
        columns = {i: _floats([r[i] for r in rows]) for i, _ in channels}
        for start, stop in itertools.pairwise(bounds):
            if stop <= start:
                continue
            first_day = dt.datetime.fromtimestamp(ts[start], dt.UTC).date().isoformat()
            for i, c in channels:
                out.append(
                    Series(
                        name=f"lbnl/{stem}/{first_day}/{c}",
                        dataset="lbnl",
                        values=columns[i][start:stop].copy(),
                        timestamps=ts[start:stop].copy(),
                        period_s=_LBNL_PERIOD_S,
                        unit=_lbnl_unit(c),
                        group=stem,
                        labels=fault[start:stop].copy(),
                        meta={"file": path.name, "channel": c},
                    )
                )
    return out


# -- helpers ----------------------------------------------------------------------


def _dir(data_dir: Path | None) -> Path:
    d = data_dir if data_dir is not None else default_data_dir()
    if not d.is_dir():
        raise ConfigError(f"data folder not found (set {DATA_DIR_ENV} or pass the path)", field=str(d))
    return d


def _read_csv(path: Path, delimiter: str) -> tuple[list[str], list[list[str]]]:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f, delimiter=delimiter)
            header = next(reader)
            rows = [r for r in reader if r]
    except FileNotFoundError:
        raise ConfigError("file not found", field=str(path)) from None
    except StopIteration:
        raise ConfigError("empty file", field=str(path)) from None
    bad = next((i for i, r in enumerate(rows) if len(r) != len(header)), None)
    if bad is not None:
        raise ConfigError(f"row {bad + 2} has {len(rows[bad])} fields, header has {len(header)}", field=str(path))
    return header, rows


def _floats(cells: list[str]) -> FloatArray:
    """Numbers; empty cells and spreadsheet errors (LBNL's ``#VALUE!``) are gaps (NaN), not zeros."""
    return np.array([_float_or_nan(c) for c in cells], dtype=np.float64)


def _float_or_nan(cell: str) -> float:
    try:
        return float(cell)
    except ValueError:
        return np.nan


def _date_ts(text: str) -> float:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp()


def _datetime_ts(text: str, path: Path) -> float:
    try:
        return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp()
    except ValueError:
        raise ConfigError(f"bad timestamp {text!r}", field=str(path)) from None


def _lbnl_ts(text: str, path: Path) -> float:
    try:
        return dt.datetime.strptime(text.strip(), "%m/%d/%Y %H:%M").replace(tzinfo=dt.UTC).timestamp()
    except ValueError:
        raise ConfigError(f"bad timestamp {text!r}", field=str(path)) from None


def _grid_index(ts: FloatArray, period_s: float, path: Path) -> IntArray:
    """Position of each row on the regular grid that starts at the first row."""
    if len(ts) == 0:
        return np.zeros(0, dtype=np.int64)
    steps: IntArray = np.rint((ts - ts[0]) / period_s).astype(np.int64)
    if (np.diff(steps) <= 0).any():
        raise ConfigError("timestamps must increase", field=str(path))
    return steps


def _lbnl_unit(column: str) -> str:
    # The dataset documents °F for temperatures and 0..1 fractions for control signals only.
    return "degF" if "Temperature" in column else ""
