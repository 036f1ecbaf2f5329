"""Detect stage on hand-made sequences: residual alerts open after k of n, clear with hysteresis,
limit alerts, contributors, update throttling, and learning protection."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from sentinelle.detect.lifecycle import KofN
from sentinelle.detect.stage import DetectStage
from sentinelle.metrics import Metrics
from sentinelle.records import AlertEvent, ForecastBatch, WindowBatch
from sentinelle.settings import DetectSettings, TagSettings

from .detect_helpers import OPERATOR_LOAD_OFF

LEVELS = (0.1, 0.5, 0.9)
TAGS = (
    TagSettings(name="c.t", asset="c", node_id="n1", unit="°C", high_limit=5.2, low_limit=4.8, limit_deadband=0.05),
    TagSettings(name="c.p", asset="c", node_id="n2", unit="kW"),
    TagSettings(name="d.x", asset="d", node_id="n3"),
)


def _fb(ts: float, values: list[float], median: list[float], sigma: float = 0.1) -> ForecastBatch:
    v = np.array(values)
    med = np.array(median)
    w = WindowBatch(
        ts=ts,
        period_s=1.0,
        tags=tuple(t.name for t in TAGS),
        assets=tuple(t.asset for t in TAGS),
        values=v,
        contexts=v[:, None],
    )
    z = np.array([-1.2816, 0.0, 1.2816])
    q = med[:, None, None] + z[None, :, None] * sigma + np.zeros((1, 1, 4))
    return ForecastBatch(window=w, levels=LEVELS, quantiles=q, forecaster="test")


def _stage(**kw: object) -> tuple[DetectStage, Metrics]:
    m = Metrics(CollectorRegistry())
    base = dict(grace_period_steps=20, open_k=3, open_n=5, clear_normal_steps=4, update_min_interval_s=0)
    s = DetectSettings.model_validate({**base, **OPERATOR_LOAD_OFF, **kw})
    return DetectStage(TAGS, s, m), m


def _feed(stage: DetectStage, rows: list[list[float]], start: float = 0.0) -> list[AlertEvent]:
    events: list[AlertEvent] = []
    for k, values in enumerate(rows):
        events += stage.process(_fb(start + k, values, [5.0, 100.0, 0.0]))
    return events


def _normal(n: int, seed: int = 0) -> list[list[float]]:
    rng = np.random.default_rng(seed)
    return [[5.0 + rng.normal(0, 0.05), 100.0 + rng.normal(0, 0.1), rng.normal(0, 0.1)] for _ in range(n)]


def test_kofn_opens_and_clears_with_hysteresis() -> None:
    t = KofN(rows=1, k=3, n=5, clear_steps=3)
    seq = [True, False, True, False, True, False, False, True, False, False, False]
    opened, cleared = [], []
    for i, f in enumerate(seq):
        o, c = t.step(np.array([f]), np.array([not f]))
        opened += [i] * len(o)
        cleared += [i] * len(c)
    assert opened == [4]  # third anomalous among the last five
    assert cleared == [10]  # three normal in a row after the last anomalous tick (7)


def test_no_alert_on_normal_data() -> None:
    stage, m = _stage()
    assert _feed(stage, _normal(300)) == []
    # Scored from the first forecast made from score_min_context_steps (8) values: ticks 8..299.
    assert m.registry.get_sample_value("sentinelle_ticks_scored_total") == 292 * 3


def test_residual_alert_life_cycle_with_contributors() -> None:
    stage, m = _stage()
    rows = _normal(60)
    # tag c.p jumps by 3 kW (30 sigma) for 10 ticks; c.t a little.
    rows += [[5.1, 103.0, 0.0]] * 10
    rows += _normal(20, seed=1)
    events = _feed(stage, rows)
    res = [e for e in events if e.kind == "forecast_residual"]
    assert res[0].event == "opened" and res[-1].event == "cleared"
    opened = res[0]
    assert opened.tag == "c.p" and opened.asset == "c"
    assert opened.alert_id.startswith("c/c.p/forecast_residual/")
    assert opened.event_ts == 62.0  # third anomalous tick (60, 61, 62)
    assert opened.severity == "critical"  # |z| = 30 >= critical_z 8
    assert [c.tag for c in opened.contributors] == ["c.p", "c.t"]  # only asset c, ranked
    assert res[-1].end_ts is not None and res[-1].alert_id == opened.alert_id
    assert m.registry.get_sample_value("sentinelle_alerts_active", {"asset": "c", "severity": "critical"}) == 0
    assert (m.registry.get_sample_value("sentinelle_alert_events_total", {"event": "opened"}) or 0) >= 1


def test_a_lasting_shift_opens_an_alert_then_is_absorbed_as_the_new_normal() -> None:
    """A +3 kW step (z = 30) that stays: an alert opens, and since flagged ticks are learned
    (winsorised), the scale grows until the step is normal and the alert clears within a bounded time
    (it used to stay open for good: nothing was learned while it was open)."""
    stage, _ = _stage()
    rows = _normal(60) + [[5.0, 103.0, 0.0]] * 600
    events = _feed(stage, rows)
    res = [e for e in events if e.kind == "forecast_residual" and e.tag == "c.p"]
    assert [e.event for e in res] == ["opened", "cleared"]
    assert res[0].event_ts == 62.0 and res[1].event_ts < 60 + 400


def test_limit_alert_opens_and_clears_with_deadband() -> None:
    stage, _ = _stage()
    rows = _normal(30)
    rows += [[5.3, 100.0, 0.0]] * 5  # above 5.2
    rows += [[5.18, 100.0, 0.0]] * 6  # inside, but within the 0.05 deadband: stays open
    rows += [[5.0, 100.0, 0.0]] * 5  # well inside: clears after 4
    events = [e for e in _feed(stage, rows) if e.kind == "limit_high"]
    assert [e.event for e in events] == ["opened", "cleared"]
    assert events[0].event_ts == 32.0
    assert events[1].event_ts == 30 + 5 + 6 + 3
    assert "above its high limit 5.2" in events[0].message


def test_gaps_are_neither_scored_nor_alerting() -> None:
    stage, m = _stage()
    rows = _normal(30) + [[float("nan"), float("nan"), float("nan")]] * 10
    assert _feed(stage, rows) == []
    assert m.registry.get_sample_value("sentinelle_ticks_scored_total") == (29 - 7) * 3  # from tick 8


def test_per_tag_gauges_come_from_the_snapshot() -> None:
    stage, m = _stage()
    _feed(stage, _normal(3))
    v = m.registry.get_sample_value("sentinelle_tag_forecast", {"asset": "c", "tag": "c.p", "level": "0.5"})
    assert v == 100.0
    assert m.registry.get_sample_value("sentinelle_tag_actual", {"asset": "d", "tag": "d.x"}) is not None


def test_rows_refreshed_on_a_cadence_use_the_matching_forecast_step() -> None:
    """A row forecast two ticks ago is compared with step 2 of that forecast."""
    stage, _ = _stage()
    levels = LEVELS
    z = np.array([-1.2816, 0.0, 1.2816])

    def fb(ts: float, values: list[float], rows: list[int], medians: list[list[float]]) -> ForecastBatch:
        v = np.array(values)
        w = WindowBatch(
            ts=ts,
            period_s=1.0,
            tags=tuple(t.name for t in TAGS),
            assets=tuple(t.asset for t in TAGS),
            values=v,
            contexts=v[:, None],
        )
        med = np.array(medians)  # (len(rows), H)
        q = med[:, None, :] + z[None, :, None] * 0.1
        return ForecastBatch(window=w, levels=levels, quantiles=q, forecaster="t", rows=np.array(rows, dtype=np.intp))

    stage.process(fb(0.0, [5.0, 100.0, 0.0], [0, 1, 2], [[5.0, 6.0, 7.0, 8.0], [100.0] * 4, [0.0] * 4]))
    stage.process(fb(1.0, [5.0, 100.0, 0.0], [1], [[100.0] * 4]))
    g = next(iter(stage._groups.values()))
    exp = g.scorer.expected(2.0, 1.0)
    assert exp is not None
    assert exp[0, 1] == 6.0  # row 0: step 2 of the forecast made at ts 0
    assert exp[1, 1] == 100.0  # row 1: step 1 of the forecast made at ts 1
    assert g.scorer.expected(9.0, 1.0) is None  # older than the horizon: no forecast


def test_a_tag_that_holds_still_under_an_exact_forecast_does_not_alarm() -> None:
    """Residuals all exactly 0 (a set point, a naive forecast): the learned scale shrinks to its floor
    (one forecast spread), so the same residual scores 0 and half a spread off is no surprise (it used to
    score 1 and open an endless alert); five spreads off is flagged."""
    from sentinelle.detect.scoring import ResidualScorer

    scorer = ResidualScorer.from_settings(3, LEVELS, np.zeros(3), DetectSettings(grace_period_steps=20))
    learn = np.ones(3, dtype=bool)
    for t in range(44):
        _, _, score, flagged = scorer.score(_fb(float(t), [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]), learn)
        assert not flagged.any() and np.nanmax(np.r_[score, 0.0]) == 0.0
    _, z, score, flagged = scorer.score(_fb(44.0, [0.05, 0.5, 0.0], [0.0, 0.0, 0.0]), learn)
    assert z[0] == pytest.approx(0.5, rel=0.05) and z[1] == pytest.approx(5.0, rel=0.05)
    assert score[0] < 0.05 and not flagged[0]
    assert flagged[1]
    stage, _ = _stage()
    events = _feed(stage, [[5.0, 100.0, 0.0]] * 60)  # the forecast equals the value at every tick
    assert events == []
