"""The evaluator on a tiny labelled series whose predictions and scores are worked out by hand.

The series uses a static high limit, whose alert life cycle is deterministic (k of n to
open, a run of normal ticks to clear), and a residual detector kept in its grace period
(it never flags), so every predicted row follows from the settings alone.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from sentinelle.evaluation.nab import binary_scores, changepoints_of, skab_nab, times_of
from sentinelle.evaluation.replay import Recording, replay, replay_settings
from sentinelle.settings import DetectSettings

from .detect_helpers import shifted_pair

N = 150
T0 = 1_700_000_000.0


def _recording() -> Recording:
    # One tag at 0.0, above its high limit 5.0 at rows 3–6 (warm-up) and rows 40–109 (scored).
    x = np.zeros(N)
    x[3:7] = 10.0
    x[40:110] = 10.0
    labels = np.zeros(N, dtype=bool)
    labels[40:110] = True
    cps = np.zeros(N, dtype=bool)
    cps[[40, 110]] = True
    return Recording(
        name="toy",
        asset="pump",
        tags=("pump.p",),
        units=("bar",),
        timestamps=T0 + np.arange(N, dtype=np.float64),
        values=x[:, None],
        present=np.ones(N, dtype=bool),
        labels=labels,
        changepoints=cps,
        train_rows=20,
        high_limits=(5.0,),
    )


def _settings(forecaster: str = "naive") -> object:
    # Re-arm off: its cleared event would wait 60 s, past the series' end (test_alarm_load.py tests it).
    detect = DetectSettings(
        open_k=2, open_n=2, clear_normal_steps=2, grace_period_steps=100_000, rearm_steps=0, rearm_min_s=0.0
    )
    return replay_settings(forecaster, detect)


@pytest.mark.parametrize("forecaster", ["naive", "holt"])
def test_replay_predictions_by_hand(forecaster: str) -> None:
    rec = _recording()
    trace = replay(rec, _settings(forecaster))  # type: ignore[arg-type]
    # 2 of 2 violating ticks: the alert opens at row 41; rows 110 and 111 are back inside, so it
    # clears at row 111: the asset is anomalous after rows 41..110.
    expected = np.zeros(N, dtype=bool)
    expected[41:111] = True
    assert trace.anomalous.tolist() == expected.tolist()
    assert np.flatnonzero(trace.opened).tolist() == [41]
    # The warm-up's violation (rows 3–6) opened an alert in the backfill's scratch book only.
    assert [e.event for e in trace.events] == ["opened", "cleared"]
    assert trace.events[0].kind == "limit_high" and trace.events[0].event_ts == T0 + 41
    # Forecasts exist for scored rows (made one step earlier), none before the first context.
    assert math.isnan(trace.forecast[0, 0]) and math.isfinite(trace.forecast[50, 0])


def test_replay_scores_by_hand() -> None:
    rec = _recording()
    trace = replay(rec, _settings())  # type: ignore[arg-type]
    test = np.arange(rec.train_rows, N)
    assert rec.labels is not None and rec.changepoints is not None
    s = binary_scores([(rec.labels[test], trace.anomalous[test])])
    # Scored rows 20..149 (130): TP rows 41–109 (69), FN row 40, FP row 110, TN the other 59.
    assert (s.tp, s.fn, s.fp, s.tn) == (69, 1, 1, 59)
    # F1 = 69 / (69 + 1) = 0.99; FAR = 1/60 = 1.67 %; MAR = 1/70 = 1.43 %
    assert s.rounded() == {"f1": 0.99, "far_percent": 1.67, "mar_percent": 1.43}
    # Changepoint detections: the rise at row 41 and the fall at row 111, each 1 s into the
    # 60 s window of the true changepoint (rows 40 and 110).  Position 1/60 → point
    # ⌊1000/60⌋ = 16 of 1000 on [−π/2, π/2]: x = −π/2 + 16π/999 = −1.52048;
    # −tanh(x)/tanh(π/2) = 0.90888/0.91715 = 0.99098; TP = 0.555·0.99098 + 0.555 − 0.11 = 0.99499.
    # standard: raw 1.98998, null −2, perfect 2 → 100·3.98998/4 = 99.75
    ts = rec.timestamps[test]
    nab = skab_nab([(times_of(rec.changepoints[test], ts), times_of(changepoints_of(trace.anomalous[test]), ts))])
    assert nab.scores["standard"] == pytest.approx(99.75, abs=0.01)
    assert (nab.detected, nab.missed, nab.false_positives, nab.mean_delay) == (2, 0, 0, 1.0)


def test_asset_t2_catches_a_shift_no_single_tag_limit_sees() -> None:
    # Two correlated tags with small noise; from row 300 both shift by 0.5 (a few σ each,
    # no limit configured).  The per-tag residual spike lasts one tick (the forecaster
    # follows the new level); the asset's T² stays high for the whole shift.
    rec = shifted_pair(t0=T0)
    on = replay(rec, replay_settings("holt", DetectSettings(asset_enabled=True, asset_warmup_steps=150)))
    asset_opened = [e for e in on.events if e.kind == "asset_state" and e.event == "opened"]
    assert len(asset_opened) == 1 and T0 + 300 <= asset_opened[0].event_ts <= T0 + 305
    assert not on.anomalous[150:300].any() and on.anomalous[310:].all()
    assert {c.tag for c in asset_opened[0].contributors} == {"pump.a", "pump.b"}


def test_the_asset_charts_catch_a_small_lasting_shift_and_name_its_tag() -> None:
    # Three independent tags (noise σ 1); from row 300 the third sits 3 σ lower for good,
    # a partly closed valve's flow.  T² of each tick rarely passes its limit (UCL ×3, the
    # default); the third tag's EWMA chart (default weight and limit: about 2.6 σ on white
    # noise) does, and its alert names that tag first.
    rng = np.random.default_rng(11)
    n = 600
    x = rng.normal(0, 1.0, (n, 3))
    x[300:, 2] -= 3.0
    rec = Recording(
        "toy3", "pump", ("pump.a", "pump.b", "pump.flow"), ("",) * 3, T0 + np.arange(n, dtype=np.float64), x,
        np.ones(n, dtype=bool), train_rows=150,
    )  # fmt: skip
    runs = {}
    for alpha in (0.0, DetectSettings().asset_chart_alpha):
        s = DetectSettings(asset_enabled=True, asset_warmup_steps=150, asset_chart_alpha=alpha)
        runs[alpha] = replay(rec, replay_settings("naive", s))
    off, on = runs[0.0], runs[DetectSettings().asset_chart_alpha]
    assert on.anomalous[360:].mean() > 0.95 and off.anomalous[360:].mean() < 0.4
    assert on.anomalous[150:300].mean() < 0.05
    opened = [e for e in on.events if e.kind == "asset_state" and e.event == "opened" and e.event_ts >= T0 + 300]
    assert opened and opened[0].tag == "pump.flow" and opened[0].contributors[0].tag == "pump.flow"


def test_a_config_with_a_coarse_stride_gives_the_estimator_coarse_contexts_and_its_own_cache() -> None:
    """Config.asset_context_stride_steps reaches the replay's windows (the estimator sees means of 4 slots);
    the cached estimates of windows that differ only in their coarse contexts are not shared."""
    import dataclasses

    from sentinelle.evaluation.chiller_eval import Config, evaluate_run
    from sentinelle.evaluation.replay import CachedEstimator, _estimator_name
    from sentinelle.records import WindowBatch

    rec = dataclasses.replace(_recording(), labels=None, changepoints=None)
    seen: list[tuple[int, float]] = []

    def estimator(w: WindowBatch) -> np.ndarray:
        newest = math.nan if w.coarse_contexts is None else float(w.coarse_contexts[0, -1])
        seen.append((w.coarse_stride_steps, newest))
        return np.full((len(w), 3), np.nan)

    config = Config("t", "naive", asset=False, rules=False, asset_model=True)
    strided = dataclasses.replace(config, asset_mask_recent_steps=8, asset_context_stride_steps=4)
    evaluate_run(rec, [], _settings("naive"), strided, None, estimator)  # type: ignore[arg-type]
    assert {s for s, _ in seen} == {4}
    assert seen[-1][1] == np.mean(rec.values[N - 4 - (N - 1) % 4 : N - (N - 1) % 4, 0])  # newest 4-slot mean
    seen.clear()
    evaluate_run(rec, [], _settings("naive"), config, None, estimator)  # type: ignore[arg-type]
    assert {s for s, _ in seen} == {1} and all(math.isnan(v) for _, v in seen)  # stride 1: none kept

    calls: list[int] = []

    def counted(w: WindowBatch) -> np.ndarray:
        calls.append(1)
        return np.zeros((len(w), 3))

    cached = CachedEstimator(counted)
    w = WindowBatch(ts=1.0, period_s=1.0, tags=("a.x",), assets=("a",), values=np.ones(1), contexts=np.ones((1, 4)))
    cached(w)
    cached(dataclasses.replace(w, coarse_contexts=np.ones((1, 4)), coarse_stride_steps=4))
    cached(dataclasses.replace(w, coarse_contexts=np.zeros((1, 4)), coarse_stride_steps=4))
    cached(dataclasses.replace(w, coarse_contexts=np.zeros((1, 4)), coarse_stride_steps=4))
    assert len(calls) == 3
    assert _estimator_name(128, 8, 4) != _estimator_name(128, 8)
