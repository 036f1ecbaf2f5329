"""The fault-detection scoring (chiller, any run with a ground truth) and LBNL's day-level scoring, by hand.

Every expected number below is worked out in the comments from the inputs alone.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest

from sentinelle.evaluation.chiller_eval import (
    FAULT_KINDS,
    Config,
    chiller_plan,
    evaluate_chiller,
    simulate,
    without_rules,
)
from sentinelle.evaluation.chiller_markdown import write_report
from sentinelle.evaluation.detection import (
    AlertSpan,
    FaultInterval,
    alert_rate,
    alert_spans,
    by_kind,
    false_alarms_per_day,
    peak_per_window,
    score_run,
)
from sentinelle.evaluation.heldout import is_benchmark_seed
from sentinelle.evaluation.lbnl import Day, DayResult, day_recording, day_scores, per_fault_type, warm_up_day
from sentinelle.evaluation.replay import Recording, replay, replay_settings
from sentinelle.records import AlertEvent, AlertEventType
from sentinelle.settings import DetectSettings

from .event_helpers import alert_event

T0 = 1_700_000_000.0


def _span(start: float, end: float | None, asset: str = "chiller1", kind: str = "forecast_residual") -> AlertSpan:
    return AlertSpan(asset, f"{asset}.x", kind, T0 + start, None if end is None else T0 + end)


def test_score_run_by_hand() -> None:
    truth = [
        FaultInterval("spike", "chiller1", ("chiller1.power_kw",), T0 + 1000, T0 + 1600),
        FaultInterval("fouling", "chiller1", ("chiller1.power_kw",), T0 + 5000, T0 + 5600),
    ]
    spans = [
        _span(100, 200),  # before any fault: false alarm
        _span(990, 1700),  # opened 10 s before the first onset: neither a detection nor ... a false alarm (outside)
        _span(1045, 1100),  # first opening inside fault 1: delay 45 s
        _span(1200, None),  # second opening inside fault 1: ignored for the delay
        _span(1650, 1700),  # after fault 1's end, inside the tolerance: neither
        _span(1000, 1010, asset="other"),  # another asset's alert inside fault 1: not a detection, not false
        _span(7000, None),  # after everything: false alarm
        _span(9500, None),  # after scored_to: not counted at all
    ]
    r = score_run(truth, spans, scored_from=T0, scored_to=T0 + 9000, tolerance_s=300)
    assert [(f.detected, f.delay_s) for f in r.faults[:1]] == [(True, 45.0)]
    assert r.faults[1].detected is False and math.isnan(r.faults[1].delay_s)  # fouling: nothing opened 5000..5600
    # False: 100 and 990 (before the onset) and 7000; 1650 is inside [1600, 1900); the other asset's at 1000 is inside.
    assert r.false_alarms == 3
    # Exposure: 9000 s minus [1000, 1900) and [5000, 5900) = 9000 - 900 - 900.
    assert r.exposure_s == 7200.0
    assert r.scored_s == 9000.0 and len(r.openings) == 7
    per_day, count, hours = false_alarms_per_day([r])
    assert (count, hours) == (3, 2.0) and per_day == pytest.approx(36.0)  # 3 in 2 h = 36 per day
    kinds = by_kind([r])
    assert kinds["spike"].summary()["delay_s_median"] == 45.0 and kinds["spike"].all_detected
    assert kinds["fouling"].detected == 0 and not kinds["fouling"].all_detected


def test_overlapping_fault_windows_are_merged_for_exposure() -> None:
    truth = [
        FaultInterval("a", "p", (), T0 + 100, T0 + 200),
        FaultInterval("b", "p", (), T0 + 250, T0 + 300),
    ]
    # [100, 300) and [250, 400) overlap: one window [100, 400) → exposure 1000 - 300.
    r = score_run(truth, [], T0, T0 + 1000, tolerance_s=100)
    assert r.exposure_s == 700.0 and r.false_alarms == 0
    assert [f.detected for f in r.faults] == [False, False]


def _event(kind: AlertEventType, alert_id: str, start: float, ts: float) -> AlertEvent:
    end = ts if kind == "cleared" else None
    return alert_event(
        event=kind, alert_id=alert_id, asset="p", tag="p.t", subject="", severity="critical", start_ts=start,
        event_ts=ts, end_ts=end,
    )  # fmt: skip


def test_alert_spans_pair_openings_and_clearings() -> None:
    events = [
        _event("opened", "b", 20.0, 20.0),
        _event("opened", "a", 10.0, 10.0),
        _event("updated", "a", 10.0, 25.0),
        _event("cleared", "b", 20.0, 30.0),
        _event("cleared", "zzz", 5.0, 31.0),  # a clearing of an alert opened before the trace: ignored
    ]
    # Sorted by opening; "a" never cleared (open at the end), "b" cleared at 30.
    assert [(s.start_ts, s.end_ts) for s in alert_spans(events)] == [(10.0, None), (20.0, 30.0)]


def test_alert_rate_mean_and_peak() -> None:
    # Run 1: 4 openings in 30 min, three of them within 10 min; run 2: none in 30 min.
    run1 = [T0 + 60, T0 + 120, T0 + 659, T0 + 1500]
    assert peak_per_window(run1) == 3
    r = alert_rate([(run1, 1800.0), ([], 1800.0)])
    # 4 openings in 3600 s = 4 / 6 per 10 min.
    assert r.mean_per_10_min == pytest.approx(4 / 6) and r.peak_per_10_min == 3 and r.hours == 1.0


def test_replayed_alerts_scored_against_a_fault_by_hand() -> None:
    # One tag, high limit 5; above it at rows 300-399 (the "fault": 300..400 s) and rows 600-601 (a blip).
    n = 800
    x = np.zeros(n)
    x[300:400] = 10.0
    x[600:602] = 10.0
    rec = Recording(
        "toy",
        "pump",
        ("pump.p",),
        ("bar",),
        T0 + np.arange(n, dtype=np.float64),
        x[:, None],
        np.ones(n, dtype=bool),
        train_rows=100,
        high_limits=(5.0,),
    )
    detect = DetectSettings(open_k=2, open_n=2, clear_normal_steps=2, grace_period_steps=100_000)
    trace = replay(rec, replay_settings("naive", detect))
    spans = alert_spans(trace.events)
    # 2 of 2 violating ticks: opens at rows 301 and 601; the condition ends after 2 normal ticks (rows 401,
    # 603), and each 'cleared' is sent once the 60 s re-arm time has passed (detect.rearm_min_s).
    assert [(s.start_ts - T0, None if s.end_ts is None else s.end_ts - T0) for s in spans] == [
        (301.0, 461.0),
        (601.0, 663.0),
    ]
    # The rows predicted anomalous are those of the condition, not of the re-arm time.
    assert np.flatnonzero(trace.anomalous).tolist() == [*range(301, 401), 601, 602]
    truth = [FaultInterval("spike", "pump", ("pump.p",), T0 + 300, T0 + 400)]
    r = score_run(truth, spans, T0 + 100, T0 + n, tolerance_s=60)
    # Detected 1 s after the onset; the blip at 601 is a false alarm; exposure 700 - 160 s.
    assert r.faults[0].detected and r.faults[0].delay_s == 1.0
    assert r.false_alarms == 1 and r.exposure_s == 540.0
    # The same run without its limit (a configuration without rules) raises nothing.
    untagged = dataclasses.replace(rec, tag_config=without_rules(rec.tag_settings()))
    assert alert_spans(replay(untagged, replay_settings("naive", detect)).events) == []


def test_chiller_plan_uses_benchmark_seeds_and_every_kind() -> None:
    plan = chiller_plan(runs_per_kind=2, fault_free_runs=1, fault_free_s=600.0)
    assert all(is_benchmark_seed(r.seed) for r in plan)
    assert len({r.seed for r in plan}) == len(plan)
    assert sorted({r.faults[0].kind for r in plan if r.faults}) == sorted(FAULT_KINDS)
    # Sensor faults rotate over tags: the second spike run is on another tag than the first.
    spikes = [r.faults[0].tag for r in plan if r.faults and r.faults[0].kind == "spike"]
    assert spikes[0] != spikes[1]


def test_simulated_run_and_its_ground_truth() -> None:
    run = chiller_plan(runs_per_kind=1, fault_free_runs=0, kinds=("sensor_drift",))[0]
    rec, truth = simulate(run)
    fault = run.faults[0]
    assert len(rec.timestamps) == int(run.duration_s) and rec.values.shape[1] == 7
    assert [t.start_ts - rec.timestamps[0] for t in truth] == [fault.onset_s]
    assert truth[0].end_ts - truth[0].start_ts == fault.duration_s and truth[0].tags == ("chiller1.chw_temp_c",)
    # The drift is in the data: the last faulted sample sits about +0.6 °C above the setpoint's band.
    j = rec.tags.index("chiller1.chw_temp_c")
    end_row = int(fault.onset_s + fault.duration_s) - 1
    assert rec.values[end_row, j] - rec.values[int(fault.onset_s) - 1, j] == pytest.approx(0.6, abs=0.15)
    # The recording carries the simulator's limits (4.8 / 5.2 °C) for the configurations with rules.
    assert rec.tag_settings()[j].high_limit == pytest.approx(5.2)


# -- LBNL, day level --------------------------------------------------------------------


def test_day_level_confusion_by_hand() -> None:
    days = [
        DayResult("A", "2017-03-11", True, "valve stuck", 2, 100),  # TP
        DayResult("A", "2017-03-12", True, "valve stuck", 0, -1),  # FN
        DayResult("A", "2017-03-13", True, "damper leaking", 1, 50),  # TP
        DayResult("A", "2017-03-14", False, None, 3, 10),  # FP
        DayResult("B", "2017-03-15", False, None, 0, -1),  # TN
        DayResult("B", "2017-03-16", False, None, 0, -1),  # TN
    ]
    s = day_scores(days)
    assert (s.tp, s.fn, s.fp, s.tn) == (2, 1, 1, 2)
    summary = s.summary()
    # detection 2/3, false positives 1/3, precision 2/3, accuracy 4/6
    assert summary["detection_rate"] == 0.667 and summary["false_positive_rate"] == 0.333
    assert summary["precision"] == 0.667 and summary["accuracy"] == 0.667
    assert per_fault_type(days) == {"damper leaking": (1, 1), "valve stuck": (1, 2)}


def _day(date: str, faulted: bool, minutes: int = 1440, level: float = 0.0) -> Day:
    start = np.datetime64(date).astype("datetime64[s]").astype(np.int64).astype(np.float64)
    ts = start + 60.0 * np.arange(minutes)
    return Day(
        "F", date, ("F.t",), ts, np.full((minutes, 1), level) + 0.01 * np.sin(np.arange(minutes))[:, None], faulted
    )


def test_warm_up_day_is_the_nearest_other_fault_free_day() -> None:
    days = [_day("2017-03-01", False), _day("2017-03-05", True), _day("2017-03-08", False), _day("2017-03-09", False)]
    assert warm_up_day(days[1], days) is days[2]  # 3 days after beats 4 days before
    assert warm_up_day(days[2], days) is days[3]  # never the scored day itself
    assert warm_up_day(days[1], [days[1]]) is None


def test_day_recording_layout() -> None:
    warm = _day("2017-03-08", False, minutes=1000, level=1.0)  # a short warm-up day
    day = _day("2017-03-05", True, level=2.0)
    rec = day_recording(day, warm)
    # The warm-up day ends one minute before the scored day's midnight; its 1000 rows, then 30 settling minutes.
    assert rec.timestamps[1440] == day.timestamps[0] and rec.timestamps[1439] == day.timestamps[0] - 60
    assert rec.present[:440].sum() == 0 and rec.present[440:].all()
    assert rec.values[1439, 0] == pytest.approx(warm.values[-1, 0]) and rec.values[1440, 0] == pytest.approx(2.0)
    assert rec.train_rows == 1000 + 30 and rec.timestamps[rec.test_start] == day.timestamps[0] + 30 * 60


def test_evaluate_command_offers_the_new_datasets() -> None:
    from sentinelle.cli import build_parser

    args = build_parser().parse_args(["evaluate", "--dataset", "chiller", "--runs-per-kind", "1", "--no-ablation"])
    assert (args.dataset, args.runs_per_kind, args.no_ablation, args.forecaster, args.first_seed) == (
        "chiller",
        1,
        True,
        "model",
        2000,
    )
    assert build_parser().parse_args(["evaluate", "--dataset", "lbnl"]).dataset == "lbnl"


def test_the_chiller_report_carries_the_alarm_kpis(tmp_path: Path) -> None:
    """A short fault-free development run (seed 5) through evaluate_chiller and write_report: the KPI section."""
    plan = chiller_plan(runs_per_kind=0, fault_free_runs=1, fault_free_s=120.0, first_seed=5)
    config = Config("holt: per-tag + rules", "holt", asset=False, rules=True)
    result = evaluate_chiller([simulate(r) for r in plan], replay_settings("holt", config.detect_settings()), config)
    assert result.kpis is not None and result.kpis.hours == pytest.approx(120.0 / 3600.0)
    write_report(result, [("development", result)], tmp_path, {"generated": "test"})
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["headline"]["alarm_kpis"]["openings"] == result.kpis.openings
    assert "max_subject_openings_per_10_min" in report["ablation"][0]["alarm_kpis"]
    assert (
        "**Alarm load (ISA-18.2 / EEMUA 191)** over 0.0 h (1 ten-minute periods)"
        in (tmp_path / "report.md").read_text()
    )
