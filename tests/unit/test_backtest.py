"""Backtests: origins, scores checked by hand, the report folder, and the finetune/backtest commands end to end."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from sentinelle.cli import EXIT_CONFIG, EXIT_OK, main
from sentinelle.evaluation.backtest import LEVELS, BacktestPlan, run_backtest
from sentinelle.evaluation.backtest_report import write_report
from sentinelle.evaluation.datasets import Series
from sentinelle.evaluation.scores import pinball
from sentinelle.records import FloatArray

TINY = Path(__file__).resolve().parents[1] / "data" / "tiny-model"
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def _last_value_with_band(contexts: FloatArray) -> FloatArray:
    """Median = the last value; level q sits (q − 0.5)·10 away from it (so the 80 % band is ±4)."""
    last = contexts[:, -1]
    offsets = (np.asarray(LEVELS) - 0.5) * 10.0
    return np.repeat((last[:, None] + offsets[None, :])[:, :, None], 4, axis=2)


def test_scores_on_a_ramp_are_right(tmp_path: Path) -> None:
    """y = t: from origin o the last value o − 1 misses step h by exactly −h; the context's steps are all 1."""
    ramp = Series("plant.ramp", "test", np.arange(100.0), T0 + 60.0 * np.arange(100.0), 60.0, unit="m")
    plan = BacktestPlan(horizons=(1, 4), origins=3, context_steps=16, min_context_steps=16)
    result = run_backtest([ramp], {"last": _last_value_with_band}, plan)
    assert result.windows.origin_index.tolist() == [16, 56, 96]

    h1, h4 = result.scores["plant.ramp"]["h1"]["last"], result.scores["plant.ramp"]["h4"]["last"]
    assert (h1["mae"], h1["error_mean"], h1["error_std"], h1["max_error"], h1["min_error"]) == (1, -1, 0, -1, -1)
    assert h1["mase"] == 1.0 and h1["coverage_80"] == 1.0
    assert (h4["mae"], h4["error_mean"], h4["error_median"], h4["max_error"], h4["min_error"]) == (
        2.5,
        -2.5,
        -2.5,
        -1,
        -4,
    )
    assert h4["error_std"] == pytest.approx(math.sqrt(1.25))
    assert h4["mase"] == 2.5 and h4["coverage_80"] == 1.0  # |error| ≤ 4: inside the band
    # WQL from its definition: 2 · Σ pinball / (levels · Σ|y|), over the three origins.
    num = den = 0.0
    for o in (16, 56, 96):
        y = np.arange(o, o + 4.0)
        q = (o - 1) + (np.asarray(LEVELS) - 0.5)[:, None] * 10.0 * np.ones((1, 4))
        num += 2.0 * pinball(y, q, LEVELS).sum() / len(LEVELS)
        den += np.abs(y).sum()
    assert h4["wql"] == pytest.approx(num / den)
    assert result.overall["h4"]["last"]["mase"] == 2.5

    written = write_report(result, tmp_path / "report", title="Ramp", meta={"data": "a ramp"})
    doc = json.loads((tmp_path / "report" / "report.json").read_text())
    assert doc["scores"]["plant.ramp"]["h4"]["last"]["mae"] == 2.5
    assert doc["plots"]["plant.ramp"]["origin"] == "2026-01-01T01:36:00Z"
    assert doc["plots"]["plant.ramp"]["actual"] == [96.0, 97.0, 98.0, 99.0]
    md = (tmp_path / "report" / "report.md").read_text()
    assert "| last | 2.5 | -2.5 | -2.5 | 1.118 | -1 | -4 | 2.5 |" in md
    png = tmp_path / "report" / "plots" / "plant.ramp.png"
    assert png in written and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_a_failing_forecaster_is_reported_not_fatal() -> None:
    ramp = Series("r", "test", np.arange(60.0), T0 + np.arange(60.0), 1.0)

    def broken(contexts: FloatArray) -> FloatArray:
        raise RuntimeError("weights corrupt")

    result = run_backtest(
        [ramp],
        {"broken": broken, "last": _last_value_with_band},
        BacktestPlan(horizons=(4,), origins=2, context_steps=16, min_context_steps=16),
    )
    assert result.failures == {"broken": "weights corrupt"} and list(result.forecasts) == ["last"]


def _write_plant(folder: Path) -> tuple[Path, Path]:
    """A wide CSV export of one asset (2 tags, 1-minute rows, empty cells = unchanged) and its daemon config."""
    rng = np.random.default_rng(0)
    n = 600
    t = np.arange(n)
    temp = 8.0 + 2.0 * np.sign(np.sin(2 * np.pi * t / 24)) + rng.normal(0, 0.1, n)
    power = 400.0 + 60.0 * np.sin(2 * np.pi * t / 24) ** 3 + rng.normal(0, 3.0, n)
    rows = ["date;pump1.temp_c;pump1.power_kw"]
    for k in range(n):
        stamp = f"2026-01-01T{k // 60:02d}:{k % 60:02d}:00Z"
        temp_cell = f"{temp[k]:.3f}".replace(".", ",")  # a decimal comma, as French exports write it
        power_cell = "" if k % 7 == 3 else f"{power[k]:.2f}"  # empty: unchanged since the previous row
        rows.append(f"{stamp};{temp_cell};{power_cell}")
    csv_path = folder / "plant.csv"
    csv_path.write_text("\n".join(rows) + "\n")
    config = folder / "sentinelle.toml"
    config.write_text(
        f'[forecast]\nforecaster = "model"\nmodel_path = "{TINY}"\nadapters_dir = "{folder / "adapters"}"\n'
        "horizon_steps = 8\n[finetune]\nmax_steps = 10\neval_every_steps = 5\nbatch_size = 8\nthreads = 1\n"
        + "".join(
            f'[[tags]]\nname = "pump1.{n}"\nasset = "pump1"\nnode_id = "ns=2;s={n}"\nperiod_s = 60.0\n'
            for n in ("temp_c", "power_kw")
        )
    )
    return csv_path, config


def test_finetune_then_backtest_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv_path, config = _write_plant(tmp_path)
    assert (
        main(
            [
                "finetune",
                "--config",
                str(config),
                "--asset",
                "pump1",
                "--data",
                str(csv_path),
                "--until",
                "2026-01-01T08:00:00Z",
                "--no-progress",
            ]
        )
        == EXIT_OK
    )
    adapter = tmp_path / "adapters" / "pump1"
    manifest = json.loads((adapter / "manifest.json").read_text())
    assert manifest["tags"] == ["pump1.power_kw", "pump1.temp_c"] and manifest["data"]["last"] == "2026-01-01T07:59:00Z"
    assert "adapter for pump1 saved" in capsys.readouterr().out

    out = tmp_path / "report"
    assert (
        main(
            [
                "backtest",
                "--config",
                str(config),
                "--data",
                str(csv_path),
                "--adapter",
                str(adapter),
                "--out",
                str(out),
                "--horizons",
                "1",
                "8",
                "--origins",
                "4",
                "--skip",
                "autoets",
            ]
        )
        == EXIT_OK
    )
    doc = json.loads((out / "report.json").read_text())
    assert doc["forecasters"] == ["base", "adapted", "seasonal_naive", "holt"]
    # Origins start after the adapter's training data by default: nothing is scored in-sample.
    assert doc["series"]["pump1.temp_c"]["first_origin"] > manifest["data"]["last"]
    assert set(doc["overall"]["h8"]) == {"base", "adapted", "seasonal_naive", "holt"}
    assert sorted(p.name for p in (out / "plots").iterdir()) == ["pump1.power_kw.png", "pump1.temp_c.png"]

    # An adapter trained on another base is refused with the file named, not silently replaced by the base.
    other = tmp_path / "other-base"
    other.mkdir()
    for part in TINY.iterdir():
        (other / part.name).write_bytes(part.read_bytes())
    with open(other / "model.safetensors", "r+b") as f:
        f.seek(-4, 2)
        f.write(b"\x00\x00\x80\x3f")
    code = main(
        [
            "backtest",
            "--config",
            str(config),
            "--data",
            str(csv_path),
            "--adapter",
            str(adapter),
            "--base",
            str(other),
            "--out",
            str(tmp_path / "r2"),
            "--skip",
            "autoets",
        ]
    )
    assert code == EXIT_CONFIG
    assert "manifest.json: adapter was trained on base model sha256" in capsys.readouterr().err
