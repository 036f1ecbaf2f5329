"""Dataset loaders and the held-out rules, on tiny synthetic files (and one check on the real data)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from sentinelle.errors import ConfigError
from sentinelle.evaluation import datasets, heldout
from sentinelle.evaluation.datasets import Series, default_data_dir, load_electricity, load_lbnl, load_skab

from .conftest import HELDOUT_VALUE


def _max_value(series: list[Series]) -> float:
    return max(float(np.nanmax(np.abs(s.values))) for s in series if np.isfinite(s.values).any())


def test_electricity_loader(tiny_data_dir: Path) -> None:
    data = load_electricity(tiny_data_dir)
    load = data["load_mw_mean"]
    assert load.dataset == "electricity" and load.period_s == 86_400.0 and load.unit == "MW"
    assert len(load) == 90 and load.values.dtype == np.float64
    assert load.dates()[0] == "2014-09-01" and load.dates()[-1] == "2014-11-29"
    assert np.all(np.diff(load.timestamps) == 86_400.0)
    assert datasets.to_study_units(load.values[:1])[0] == 48 * load.values[0]


def test_skab_loader_resamples_and_keeps_labels(tiny_data_dir: Path) -> None:
    series = load_skab(tiny_data_dir)
    names = {s.name for s in series}
    assert "skab/anomaly-free/anomaly-free/Current" in names and "skab/valve1/0/Current" in names
    assert len(series) == 4 * 8  # four files, eight channels each
    free = next(s for s in series if s.name == "skab/anomaly-free/anomaly-free/Current")
    assert len(free) == 301 and np.isnan(free.values[5]) and free.period_s == 1.0
    assert free.labels is None
    valve = next(s for s in series if s.name == "skab/valve1/0/Pressure")
    assert valve.labels is not None and valve.changepoints is not None
    assert valve.labels.sum() == 60 and valve.changepoints.sum() == 1 and valve.group == "valve1"


def test_lbnl_loader_splits_at_gaps_and_reads_bad_cells_as_gaps(tiny_data_dir: Path) -> None:
    series = load_lbnl(tiny_data_dir)
    # Two separate days in each of the four files, three channels each.
    assert len(series) == 4 * 2 * 3
    temp = [s for s in series if s.group == "SZCAV" and s.meta["channel"] == "AHU: Supply Air Temperature"]
    assert [len(s) for s in temp] == [120, 120]
    faulted, normal = temp
    assert faulted.labels is not None and faulted.labels.all()
    assert normal.labels is not None and not normal.labels.any()
    assert np.isnan(normal.values[7]) and normal.unit == "degF"  # '#VALUE!'
    valve = next(
        s
        for s in series
        if s.group == "SZCAV"
        and s.meta["channel"].startswith("AHU: Cooling")
        and s.labels is not None
        and not s.labels.any()
    )
    assert np.isnan(valve.values[8])  # an empty cell
    assert np.all(np.diff(normal.timestamps) == 60.0)


def test_pretraining_series_hold_out_every_rule(tiny_data_dir: Path) -> None:
    series = heldout.pretraining_series(tiny_data_dir)
    assert series, "the tiny datasets have usable parts"
    assert _max_value(series) < HELDOUT_VALUE
    elec = [s for s in series if s.dataset == "electricity"]
    assert {s.dates()[-1] for s in elec} == {"2014-10-30"}
    assert {s.group for s in series if s.dataset == "skab"} == {"anomaly-free"}
    assert all(s.labels is not None and not s.labels.any() for s in series if s.dataset == "lbnl")


def test_pretraining_parts_and_checks() -> None:
    ts = np.arange(4.0) * 86_400.0 + dt.datetime(2014, 10, 29, tzinfo=dt.UTC).timestamp()
    elec = Series("electricity/x", "electricity", np.arange(4.0), ts, 86_400.0)
    (part,) = heldout.pretraining_parts(elec)
    assert part.dates() == ["2014-10-29", "2014-10-30"]
    heldout.check_pretraining_allowed(part)
    with pytest.raises(ValueError, match="held out"):
        heldout.check_pretraining_allowed(elec)
    fault = Series("skab/valve2/0/Current", "skab", np.zeros(4), ts, 1.0, group="valve2")
    assert heldout.pretraining_parts(fault) == []
    with pytest.raises(ValueError, match="held out"):
        heldout.check_pretraining_allowed(fault)


def test_simulator_seed_rules() -> None:
    rng = np.random.default_rng(0)
    drawn = [heldout.pretraining_seed(rng) for _ in range(2000)]
    assert not any(heldout.is_benchmark_seed(s) for s in drawn)
    assert all(heldout.is_benchmark_seed(s) for s in heldout.benchmark_seeds(5))


def test_skab_benchmark_tail_is_what_pretraining_leaves(tiny_data_dir: Path) -> None:
    (tail, *_) = heldout.skab_benchmark_series(tiny_data_dir)
    assert np.all(tail.values[np.isfinite(tail.values)] == HELDOUT_VALUE)


def test_missing_folder_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_electricity(tmp_path / "nowhere")
    monkeypatch.setenv(datasets.DATA_DIR_ENV, str(tmp_path))
    assert default_data_dir() == tmp_path


REAL_DATA = default_data_dir()


@pytest.mark.skipif(
    not (REAL_DATA / "electricity_fr" / "daily.csv").is_file(),
    reason=f"the shared datasets are not at {REAL_DATA} (set SENTINELLE_DATA_DIR)",
)
def test_real_electricity_cut_for_pretraining() -> None:
    full = load_electricity(REAL_DATA)["load_mw_mean"]
    assert "2014-10-31" in full.dates() and "2014-12-31" in full.dates()
    (train,) = heldout.pretraining_parts(full)
    dates = train.dates()
    assert dates[-1] == "2014-10-30"
    assert max(dates) < heldout.ELECTRICITY_HELDOUT_FROM.isoformat()
    # The cut removes every later day, including the study's window and the 2019 test year.
    assert len(dates) == len(full) - sum(d >= "2014-10-31" for d in full.dates())
    # 48 × the daily mean is the study's unit: ~2.1e6..3.6e6 over its window.
    window = [v for v, d in zip(full.values, full.dates(), strict=True) if "2014-10-31" <= d <= "2014-12-31"]
    study = datasets.to_study_units(np.array(window))
    assert study.min() > 1.9e6 and study.max() < 3.8e6
