"""The start-up backfill on simulated chiller history, without servers: warm vs cold, suppressed alerts, failures.

The daemon's stages are driven by hand here (windows → forecaster → detect), the
way ``app.py`` wires them, so the live ticks after the backfill are deterministic.
``tests/integration/test_backfill.py`` does the same through a real daemon and the
OPC-UA simulator.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from sentinelle.backfill import lookback_s, run_backfill
from sentinelle.detect.stage import DetectStage
from sentinelle.errors import SourceUnavailable
from sentinelle.forecast import make_forecaster
from sentinelle.forecast.base import Forecaster
from sentinelle.metrics import Metrics
from sentinelle.records import AlertEvent, FloatArray, ForecastBatch, Sample
from sentinelle.settings import FaultSettings, Settings, SimulatorSettings, load_settings
from sentinelle.sim.chiller import CHILLER_TAGS, ChillerModel
from sentinelle.sim.server import chiller_tags
from sentinelle.windows import Windows

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z: "now", the daemon's start
HISTORY_S = 300
CONTEXT = 64
GRACE = 30


def write_wide_history(path: Path, sim: SimulatorSettings, start: float, steps: int) -> None:
    """The chiller's history as the wide sparse export: `;`, decimal commas, local dates, blanks when unchanged."""
    model = ChillerModel(sim.model_copy(update={"start_ts": start}))
    paris = dt.timezone(dt.timedelta(hours=1))  # January in Europe/Paris
    previous: dict[str, str] = {}
    lines = ["date;" + ";".join(f"{short} (export)" for short in CHILLER_TAGS)]
    for k in range(steps):
        ts = start + k * sim.sample_period_s
        values = model.step(ts)
        cells = []
        for short in CHILLER_TAGS:
            text = f"{values[short]:.3f}".replace(".", ",")
            cells.append("" if previous.get(short) == text else text)
            previous[short] = text
        when = dt.datetime.fromtimestamp(ts, paris).strftime("%d/%m/%Y %H:%M:%S")
        lines.append(when + ";" + ";".join(cells))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8-sig")


def daemon_settings(sim: SimulatorSettings, history: dict[str, Any]) -> Settings:
    tag_map = {f"{short} (export)": f"{sim.asset}.{short}" for short in CHILLER_TAGS}
    for source in history.get("sources", []):
        source.setdefault("tag_map", tag_map)
        source.setdefault("timezone", "Europe/Paris")
    return load_settings(
        None,
        tags=[t.model_dump() for t in chiller_tags(sim)],
        windows={"context_steps": CONTEXT},
        detect={"grace_period_steps": GRACE},
        kafka={"enabled": False},
        prometheus={"enabled": False},
        history=history,
    )


class Stages:
    """Windows → forecaster → detect, as the daemon wires them, stepped by hand."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = Metrics(CollectorRegistry())
        self.windows = Windows(settings.tags, settings.windows, self.metrics)
        self.forecaster = make_forecaster(settings.forecast)
        self.detect = DetectStage(settings.tags, settings.detect, self.metrics)
        self.scored: list[tuple[float, int]] = []

    def live(self, samples: list[Sample]) -> list[AlertEvent]:
        events: list[AlertEvent] = []
        for w in self.windows.ingest(samples):
            fb = ForecastBatch(w, self.forecaster.levels, self.forecaster.forecast(w.contexts), self.forecaster.name)
            before = self.counter("sentinelle_ticks_scored_total")
            events += self.detect.process(fb)
            self.scored.append((w.ts, int(self.counter("sentinelle_ticks_scored_total") - before)))
        return events

    def counter(self, name: str, **labels: str) -> float:
        return self.metrics.registry.get_sample_value(name, labels) or 0.0


def live_samples(sim: SimulatorSettings, steps: int) -> list[list[Sample]]:
    """What the OPC-UA source would deliver from T0 on: one chunk per sample period."""
    model = ChillerModel(sim.model_copy(update={"start_ts": T0}))
    out = []
    for k in range(steps):
        ts = T0 + k
        out.append([Sample(f"{sim.asset}.{short}", ts, v) for short, v in model.step(ts).items()])
    return out


# A sensor drift on the chilled-water temperature starting exactly at the daemon's start.
DRIFT_AT_START = FaultSettings(kind="sensor_drift", onset_s=0.0, duration_s=20.0, tag="chw_temp_c", magnitude=10.0)


def first_residual_alert(events: list[AlertEvent]) -> AlertEvent | None:
    return next((e for e in events if e.event == "opened" and e.kind == "forecast_residual"), None)


@pytest.mark.asyncio
async def test_warm_start_scores_the_first_live_slot_and_alerts_within_a_few_ticks(tmp_path: Path) -> None:
    history_sim = SimulatorSettings(seed=11)
    write_wide_history(tmp_path / "wide.csv", history_sim, T0 - HISTORY_S, HISTORY_S)
    settings = daemon_settings(history_sim, {"sources": [{"kind": "csv_wide", "path": str(tmp_path / "wide.csv")}]})
    assert lookback_s(settings) == CONTEXT + GRACE
    stages = Stages(settings)
    result = await run_backfill(settings, stages.metrics, stages.windows, stages.forecaster, stages.detect, now=T0)
    # Only the look-back was replayed: (64 + 30) s of 7 tags, plus each tag's value at its start.
    assert result.samples == 7 * (CONTEXT + GRACE) + 7
    assert result.ticks >= CONTEXT + GRACE - 2 and result.unavailable == ()
    assert stages.counter("sentinelle_backfill_samples_total", source="csv_wide") == result.samples
    assert stages.counter("sentinelle_samples_ingested_total", source="history:csv_wide") == result.samples
    assert stages.counter("sentinelle_samples_dropped_total", reason="malformed_value") == 0

    live_sim = SimulatorSettings(seed=12, faults=(DRIFT_AT_START,))
    events: list[AlertEvent] = []
    for chunk in live_samples(live_sim, 8):
        events += stages.live(chunk)
    first_ts, first_scored = stages.scored[0]
    # The first slot the live samples close (history ended at T0 - 1, lateness 1 s) is scored at once ...
    assert first_ts == T0 - 2 and first_scored == 7
    assert all(n == 7 for _, n in stages.scored)
    alert = first_residual_alert(events)
    assert alert is not None and alert.tag == "chiller1.chw_temp_c"
    assert alert.start_ts <= T0 + 4, f"residual alert {alert.start_ts - T0:.0f} s after start"


@pytest.mark.asyncio
async def test_cold_start_is_blind_until_the_detectors_warm_up() -> None:
    """The control: the same live data without history neither scores the first slot nor alerts early."""
    settings = daemon_settings(SimulatorSettings(seed=11), {})
    stages = Stages(settings)
    events: list[AlertEvent] = []
    for chunk in live_samples(SimulatorSettings(seed=12, faults=(DRIFT_AT_START,)), 8):
        events += stages.live(chunk)
    assert stages.scored[0][1] == 0
    assert first_residual_alert(events) is None


@pytest.mark.asyncio
async def test_alerts_of_the_historical_period_are_suppressed_counted_and_forgotten(tmp_path: Path) -> None:
    drift_in_history = FaultSettings(
        kind="sensor_drift", onset_s=HISTORY_S - 60, duration_s=90.0, tag="chw_temp_c", magnitude=3.0
    )
    history_sim = SimulatorSettings(seed=11, faults=(drift_in_history,))
    write_wide_history(tmp_path / "wide.csv", history_sim, T0 - HISTORY_S, HISTORY_S)
    settings = daemon_settings(history_sim, {"sources": [{"kind": "csv_wide", "path": str(tmp_path / "wide.csv")}]})
    stages = Stages(settings)
    result = await run_backfill(settings, stages.metrics, stages.windows, stages.forecaster, stages.detect, now=T0)
    assert result.events_suppressed >= 1
    assert stages.counter("sentinelle_backfill_events_suppressed_total", event="opened") >= 1
    # Nothing of it counts as produced, and no alert is open for the live stream to update or clear.
    assert stages.counter("sentinelle_alert_events_total", event="opened") == 0
    assert stages.detect.book.open == {}
    assert all(
        (stages.counter("sentinelle_alerts_active", asset="chiller1", severity=s) or 0) == 0
        for s in ("warning", "critical")
    )
    # The live stream (the fault has ended) produces no 'updated' or 'cleared' of a historical alert.
    events: list[AlertEvent] = []
    for chunk in live_samples(SimulatorSettings(seed=12), 15):
        events += stages.live(chunk)
    assert [e for e in events if e.event != "opened"] == []


@pytest.mark.asyncio
async def test_unreadable_source_exits_when_required_and_starts_cold_otherwise(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    missing = {"kind": "csv_events", "path": str(tmp_path / "missing.csv")}
    required = daemon_settings(SimulatorSettings(), {"sources": [dict(missing)], "required_at_start": True})
    stages = Stages(required)
    with pytest.raises(SourceUnavailable, match=r"missing\.csv"):
        await run_backfill(required, stages.metrics, stages.windows, stages.forecaster, stages.detect, now=T0)

    optional = daemon_settings(SimulatorSettings(), {"sources": [dict(missing)]})
    stages = Stages(optional)
    with caplog.at_level("WARNING", logger="sentinelle.backfill"):
        result = await run_backfill(optional, stages.metrics, stages.windows, stages.forecaster, stages.detect, now=T0)
    assert result.unavailable == ("csv_events",) and result.samples == 0
    assert "continuing without it" in caplog.text and "starting cold" in caplog.text


@pytest.mark.asyncio
async def test_sources_are_merged_in_time_order_and_the_first_listed_wins_ties(tmp_path: Path) -> None:
    """A long Parquet file sorted by tag still reaches the windows in time order."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tags = ["chiller1.flow_m3h", "chiller1.power_kw"]
    steps = np.arange(-60, 0, dtype=float)
    table = pa.table(
        {
            "tag": [t for t in tags for _ in steps],
            "ts": np.concatenate([T0 + steps, T0 + steps]),
            "value": np.concatenate([60.0 + 0 * steps, 400.0 + steps]),
        }
    )
    pq.write_table(table, tmp_path / "by_tag.parquet")
    (tmp_path / "events.csv").write_text(
        "date,parameter name,value,new value\n"
        # No old value: no seed at the look-back's start, only the change at T0 - 30.
        f"{dt.datetime.fromtimestamp(T0 - 30, dt.UTC).isoformat()},chiller1.power_kw,,999\n"
    )
    settings = daemon_settings(
        SimulatorSettings(),
        {
            "sources": [
                {"kind": "parquet", "path": str(tmp_path / "by_tag.parquet"), "tag_map": {}},
                {"kind": "csv_events", "path": str(tmp_path / "events.csv"), "tag_map": {}, "timezone": "UTC"},
            ],
            "backfill_lookback_s": 60.0,
        },
    )
    stages = Stages(settings)
    await run_backfill(settings, stages.metrics, stages.windows, stages.forecaster, stages.detect, now=T0)
    assert stages.counter("sentinelle_samples_dropped_total", reason="late") == 0
    assert stages.counter("sentinelle_samples_dropped_total", reason="out_of_order") == 0
    # Equal time: the Parquet value (listed first) is kept, the event log's is a duplicate.
    assert stages.counter("sentinelle_samples_dropped_total", reason="duplicate") == 1
    power = stages.windows.groups[0]
    row = power.row["chiller1.power_kw"]
    ctx = np.concatenate((power.ring[row, power.pos :], power.ring[row, : power.pos]))
    finite = ctx[np.isfinite(ctx)]
    # The last closed slot ends at T0 - 3 (lateness 1 s), whose value is 400 - 3.
    assert finite.size >= 55 and not np.any(finite == 999.0) and math.isclose(finite[-1], 397.0)


class _Counting:
    """The daemon's forecaster, counting the rows it is asked for."""

    def __init__(self, inner: Forecaster) -> None:
        self.inner, self.name, self.levels, self.horizon = inner, inner.name, inner.levels, inner.horizon
        self.rows = 0

    def forecast(self, contexts: FloatArray, assets: Sequence[str] | None = None) -> FloatArray:
        self.rows += len(contexts)
        return self.inner.forecast(contexts, assets)


@pytest.mark.asyncio
async def test_backfill_forecasts_a_rotating_share_of_rows_as_live_ticks_do(tmp_path: Path) -> None:
    """With refresh_every_steps R the backfill costs what live ticks cost: 1/R of the rows, all still scored."""
    history_sim = SimulatorSettings(seed=11)
    write_wide_history(tmp_path / "wide.csv", history_sim, T0 - HISTORY_S, HISTORY_S)
    rows, scored, ticks = {}, {}, {}
    for r in (1, 4):
        settings = daemon_settings(history_sim, {"sources": [{"kind": "csv_wide", "path": str(tmp_path / "wide.csv")}]})
        forecast = settings.forecast.model_copy(update={"forecaster": "holt", "refresh_every_steps": r})
        settings = settings.model_copy(update={"forecast": forecast})
        stages = Stages(settings)
        counting = _Counting(stages.forecaster)
        result = await run_backfill(settings, stages.metrics, stages.windows, counting, stages.detect, now=T0)
        rows[r], ticks[r] = counting.rows, result.ticks
        scored[r] = stages.counter("sentinelle_ticks_scored_total")
    assert ticks[1] == ticks[4] and rows[1] == 7 * ticks[1]
    assert abs(rows[4] - rows[1] / 4) <= 7, rows
    # Between refreshes a row is scored against its last forecast: only the first R-1 slots lose rows.
    assert scored[1] - 7 * 3 <= scored[4] <= scored[1], scored
