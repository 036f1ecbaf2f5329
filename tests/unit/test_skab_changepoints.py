"""Sentinelle's own changepoint output on SKAB: the alert stream's events, scored beside ``|diff|`` of the prediction.

Hand-made sequences: a fault whose alert's condition dips and comes back within its re-arm time (one alert,
an ``updated``, no clearing and re-opening), events on seconds missing from the file, events in the warm-up.
"""

from __future__ import annotations

import numpy as np

from sentinelle.evaluation.replay import Recording, Trace
from sentinelle.evaluation.skab import file_result, score_files
from sentinelle.records import AlertEvent, AlertEventType

N = 400
TRAIN = 100


def _recording(present: np.ndarray | None = None) -> Recording:
    lab = np.zeros(N, dtype=bool)
    lab[200:300] = True
    cp = np.zeros(N, dtype=bool)
    cp[[200, 260, 300]] = True
    return Recording(
        name="other/3",
        asset="pump",
        tags=("pump.x",),
        units=("",),
        timestamps=np.arange(N, dtype=np.float64),
        values=np.zeros((N, 1)),
        present=np.ones(N, dtype=bool) if present is None else present,
        labels=lab,
        changepoints=cp,
        train_rows=TRAIN,
    )


def _event(kind: AlertEventType, ts: float) -> AlertEvent:
    return AlertEvent(
        kind,
        "pump/x/asset_state/1",
        "asset_state",
        "pump",
        "pump.x",
        "warning",
        200.0,
        ts,
        None,
        1.0,
        0.0,
        0.0,
        0.0,
        0.0,
        "",
        "",
    )


def _trace(anomalous: np.ndarray, events: list[AlertEvent]) -> Trace:
    nan = np.full((N, 1), np.nan)
    return Trace(anomalous, np.zeros(N, dtype=bool), nan, nan, nan, nan, nan, events=events)


def test_a_dip_within_re_arm_is_one_change_for_the_stream_and_two_for_diff() -> None:
    # The condition is on over 200..299 except a dip at 240..244; the alert stream says: opened at 200,
    # re-activated (updated) at 245, cleared at 360 (its re-arm time after 300).
    anomalous = np.zeros(N, dtype=bool)
    anomalous[200:240] = True
    anomalous[245:300] = True
    events = [_event("opened", 200.0), _event("updated", 245.0), _event("cleared", 360.0)]
    fr = file_result(_recording(), _trace(anomalous, events))
    assert np.flatnonzero(fr.alert_changes()).tolist() == [100, 145, 260]
    assert np.flatnonzero(fr.alert_changes(("opened", "cleared"))).tolist() == [100, 260]
    s = score_files([fr])
    # |diff|: 200 (window 200), 240 (same window, ignored), 245 (same), 300 (window 300): 2 of 3 windows, no FP.
    assert (s.nab_counts["detected"], s.nab_counts["missed"], s.nab_counts["false_positives"]) == (2, 1, 0)
    # Stream: 200 (window 200), 245 (inside window 200, ignored), 360 (window 300 is [300, 360]: its last second).
    c = s.nab_alert_events_counts
    assert (c["detected"], c["missed"], c["false_positives"]) == (2, 1, 0)
    assert s.nab_alert_events["standard"] < s.nab["standard"]  # the clearing came at the end of its window


def test_an_event_on_a_missing_second_falls_on_the_next_row_and_warm_up_events_are_not_scored() -> None:
    present = np.ones(N, dtype=bool)
    present[260] = False  # the second of the fault's second changepoint is missing from the file
    events = [_event("opened", 50.0), _event("updated", 260.0)]
    fr = file_result(_recording(present), _trace(np.zeros(N, dtype=bool), events))
    rows = np.flatnonzero(fr.alert_changes())
    assert fr.timestamps[rows].tolist() == [261.0]
    assert fr.alert_changes().sum() == 1


def test_no_events_no_stream_changes() -> None:
    anomalous = np.zeros(N, dtype=bool)
    anomalous[200:300] = True
    s = score_files([file_result(_recording(), _trace(anomalous, []))])
    assert s.nab_alert_events_counts["detected"] == 0 and s.nab_alert_events["standard"] == 0.0
    assert s.nab_counts["detected"] == 2


def test_a_replayed_step_sends_events_on_the_rows_the_trace_marks() -> None:
    # Through the daemon's stages: a step at row 45 opens a per-tag alert; the alert stream's openings fall on
    # exactly the rows the trace marks as opened (an event's time is its slot's), and no event precedes the
    # scored rows.
    from sentinelle.evaluation.replay import replay, replay_settings

    n = 80
    ts = 1_000.0 + np.arange(float(n))
    x = np.where(np.arange(n) < 45, 1.0, 5.0)[:, None] + 0.01 * np.sin(np.arange(n))[:, None]
    lab = np.arange(n) >= 45
    rec = Recording(
        "other/9",
        "pump",
        ("pump.p",),
        ("bar",),
        ts,
        x,
        np.ones(n, dtype=bool),
        labels=lab,
        changepoints=np.arange(n) == 45,
        train_rows=30,
    )
    fr = file_result(rec, replay(rec, replay_settings("naive")))
    opened = fr.alert_changes(("opened",))
    assert opened.any()
    assert opened.tolist() == fr.trace.opened[fr.test].tolist()
    assert all(e.event_ts >= fr.timestamps[0] for e in fr.trace.events)
