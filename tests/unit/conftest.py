"""Shared fixtures of the unit tests."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

HELDOUT_VALUE = 999_999.0
"""Every held-out cell of the tiny datasets holds this, so a test can prove none of it reached training."""

SKAB_HEADER = (
    "datetime;Accelerometer1RMS;Accelerometer2RMS;Current;Pressure;Temperature;Thermocouple;Voltage;Volume Flow RateRMS"
)
LBNL_HEADER = (
    "Datetime,AHU: Supply Air Temperature,AHU: Cooling Coil Valve Control Signal  ,Occupancy Mode Indicator,"
    "Fault Detection Ground Truth"
)


@pytest.fixture
def tiny_data_dir(tmp_path: Path) -> Path:
    """A miniature ``shared/data`` with the real layouts; held-out cells are :data:`HELDOUT_VALUE`.

    * electricity: 2014-09-01 .. 2014-11-29 (90 days), held out from 2014-10-31;
    * SKAB anomaly-free: 300 s (one second missing early on), held out after 60 % of its grid;
      one fault file in each of valve1, valve2, other, all held out;
    * LBNL: in each of the four files, a faulted day (held out) then a normal day of 120 minutes,
      with one ``#VALUE!`` and one empty cell.
    """
    root = tmp_path / "data"
    elec = root / "electricity_fr"
    elec.mkdir(parents=True)
    lines = ["date,load_mw_mean,energy_mwh,temp_c"]
    day0 = dt.date(2014, 9, 1)
    for i in range(90):
        d = day0 + dt.timedelta(days=i)
        held = d >= dt.date(2014, 10, 31)
        load = HELDOUT_VALUE if held else 50_000.0 + 1_000.0 * (i % 7)
        lines.append(f"{d.isoformat()},{load},{load * 24},{HELDOUT_VALUE if held else 10.0 + i % 5}")
    (elec / "daily.csv").write_text("\n".join(lines) + "\n")

    start = dt.datetime(2020, 2, 8, 13, 0, 0)
    free = root / "skab" / "anomaly-free"
    free.mkdir(parents=True)
    rows = [SKAB_HEADER]
    seconds = [s for s in range(301) if s != 5]  # 300 rows on a 301-point grid
    cut = int(301 * 0.6)
    for s in seconds:
        v = HELDOUT_VALUE if s >= cut else 1.0 + 0.01 * (s % 13)
        rows.append(f"{(start + dt.timedelta(seconds=s)).isoformat(sep=' ')};" + ";".join([str(v)] * 8))
    (free / "anomaly-free.csv").write_text("\n".join(rows) + "\n")
    for group in ("valve1", "valve2", "other"):
        folder = root / "skab" / group
        folder.mkdir(parents=True)
        rows = [SKAB_HEADER + ";anomaly;changepoint"]
        for s in range(120):
            label = "1.0" if s >= 60 else "0.0"
            when = (start + dt.timedelta(seconds=s)).isoformat(sep=" ")
            rows.append(f"{when};" + ";".join([str(HELDOUT_VALUE)] * 8) + f";{label};{label if s == 60 else '0.0'}")
        (folder / ("1.csv" if group == "other" else "0.csv")).write_text("\n".join(rows) + "\n")

    lbnl = root / "lbnl_ahu_fdd"
    lbnl.mkdir()
    for stem in ("SZCAV", "SZVAV", "MZVAV-2-1", "MZVAV-2-2"):
        rows = [LBNL_HEADER]
        for day, fault in ((dt.datetime(2017, 3, 11), 1), (dt.datetime(2017, 3, 13), 0)):
            for minute in range(120):
                t = day + dt.timedelta(minutes=minute)
                stamp = f"{t.month}/{t.day}/{t.year} {t.hour}:{t.minute:02d}"
                if fault:
                    cells = [str(HELDOUT_VALUE)] * 3
                else:
                    cells = [f"{70 + (minute % 10) * 0.1:.2f}", f"{(minute % 30) / 30:.3f}", "1"]
                    if minute == 7:
                        cells[0] = "#VALUE!"
                    if minute == 8:
                        cells[1] = ""
                rows.append(f"{stamp},{','.join(cells)},{fault}")
        (lbnl / f"{stem}.csv").write_text("\n".join(rows) + "\n")
    return root
