"""The generic alert life cycle (detect/alerting.py) driven by a hand-made detector: what any new kind gets."""

from __future__ import annotations

import dataclasses

import numpy as np
from prometheus_client import CollectorRegistry

from sentinelle.detect.alerting import AlertCycle
from sentinelle.detect.alerts import AlertBook
from sentinelle.detect.detectors.base import Explanation, Findings, Layout, RowNumbers, Spec, Tick, findings, pack
from sentinelle.detect.quality import QualityTick
from sentinelle.metrics import Metrics
from sentinelle.records import ForecastBatch, WindowBatch
from sentinelle.settings import DetectSettings, TagSettings

from .detect_helpers import OPERATOR_LOAD_OFF

TAGS = (
    TagSettings(name="a.x", asset="a", node_id="n1", unit="bar"),
    TagSettings(name="b.y", asset="b", node_id="n2", unit="bar"),
)
LAYOUT = Layout(
    tags=("a.x", "b.y"),
    assets=("a", "b"),
    units=("bar", "bar"),
    period_s=1.0,
    tag_settings=TAGS,
    asset_names=("a", "b"),
    asset_index=np.array([0, 1], dtype=np.intp),
    asset_rows={"a": [0], "b": [1]},
    subjects=("a", "b"),
    row_of={"a.x": 0, "b.y": 1},
    max_contributors=3,
)


class Threshold:
    """A toy detector: each tag above 10 is anomalous (magnitude: the value), at most 5 is normal."""

    name = "threshold"
    spec = Spec(
        kind="rate_of_change",
        subjects=LAYOUT.tags,
        subject_assets=LAYOUT.asset_index,
        open_k=2,
        open_n=3,
        clear_steps=2,
    )

    def observe(self, tick: Tick) -> Findings:
        v = tick.clean
        with np.errstate(invalid="ignore"):
            return findings(v > 10.0, v <= 5.0, v)

    def learn(self, tick: Tick, findings: Findings) -> None:
        pass

    def explain(self, tick: Tick, findings: Findings, subject: int, tag: str | None) -> Explanation:
        return Explanation(
            tag=LAYOUT.tags[subject],
            obs=tick.obs(subject),
            contributors=tick.contributors(subject),
            magnitude=float(findings.score[subject]) / 10.0,
            limit=10.0,
        )

    def state(self) -> bytes:
        return pack(self.name, 1, {})

    def restore(self, blob: bytes) -> None:
        pass


def _tick(ts: float, values: list[float], cycle: AlertCycle, paused: tuple[bool, bool] = (False, False)) -> Tick:
    v = np.array(values)
    n = len(v)
    w = WindowBatch(ts=ts, period_s=1.0, tags=LAYOUT.tags, assets=LAYOUT.assets, values=v, contexts=v[:, None])
    fb = ForecastBatch(window=w, levels=(0.1, 0.5, 0.9), quantiles=np.zeros((n, 3, 1)), forecaster="t")
    no = np.zeros(n, dtype=bool)
    dq = QualityTick(no, no, no, np.zeros(n), no, no, np.full(n, np.nan), no)
    p = np.array(paused)
    gate = p[LAYOUT.asset_index]
    expected = np.repeat(v[:, None], 3, axis=1)
    return Tick(
        layout=LAYOUT,
        ts=ts,
        batch=fb,
        values=v,
        clean=np.where(gate, np.nan, v),
        gate=gate,
        paused=p,
        maintenance=np.zeros(2, dtype=bool),
        quality=dq,
        alerts=cycle,
        rows=RowNumbers(expected=expected, z=np.zeros(n), score=np.zeros(n), mid=1, surprise=np.zeros(n)),
    )


def test_a_new_detector_gets_opening_updates_clearing_and_pauses_from_the_one_life_cycle() -> None:
    metrics = Metrics(CollectorRegistry())
    book = AlertBook(metrics, DetectSettings.model_validate({"update_min_interval_s": 0.0, **OPERATOR_LOAD_OFF}))
    det = Threshold()
    cycle = AlertCycle(LAYOUT, [det], lambda: book, metrics)
    seen = []
    rows = [[1, 1], [11, 1], [12, 1], [25, 1], [1, 11], [1, 12], [1, 12], [1, 1], [1, 1]]
    for ts, values in enumerate(rows):
        tick = _tick(float(ts), [float(x) for x in values], cycle, paused=(False, ts >= 6))
        if tick.paused.any():
            seen += cycle.pause([det], tick, {1: "b: detection paused (mode stopped)"}, {1: "detection_paused"})
        f = det.observe(tick)
        det.learn(tick, f)
        seen += cycle.advance(det, tick, f)
    got = [(e.event, e.tag, e.event_ts, e.severity, e.clear_reason) for e in seen]
    assert got == [
        ("opened", "a.x", 2.0, "warning", None),  # 2 of 3
        ("updated", "a.x", 3.0, "critical", None),  # 25 / 10: past rule_critical_ratio, escalates at once
        ("opened", "b.y", 5.0, "warning", None),  # within one tick: opened, then cleared
        ("cleared", "a.x", 5.0, "critical", "normal"),  # two normal ticks (4, 5)
        ("cleared", "b.y", 6.0, "warning", "detection_paused"),  # b paused: cleared at once
    ]
    assert seen[4].message == "b: detection paused (mode stopped)"
    assert book.open == {}
    flagged = metrics.registry.get_sample_value("sentinelle_ticks_anomalous_total", {"kind": "rate_of_change"})
    assert flagged == 5.0  # a at 1, 2, 3; b at 4, 5 (gated while paused)


def test_a_severe_subject_opens_at_once_and_the_rest_wait_for_k_of_n() -> None:
    metrics = Metrics(CollectorRegistry())
    book = AlertBook(metrics, DetectSettings.model_validate({"update_min_interval_s": 0.0, **OPERATOR_LOAD_OFF}))
    det = Threshold()
    cycle = AlertCycle(LAYOUT, [det], lambda: book, metrics)
    tick = _tick(0.0, [11.0, 11.0], cycle)
    f = det.observe(tick)
    severe = dataclasses.replace(f, severe=np.array([True, False]))
    assert [e.tag for e in cycle.advance(det, tick, severe)] == ["a.x"]


ASSET_TAGS = (
    TagSettings(name="p.flow", asset="p", node_id="n1", unit="L/min"),
    TagSettings(name="p.vib", asset="p", node_id="n2", unit="g"),
)
ASSET_LAYOUT = dataclasses.replace(
    LAYOUT,
    tags=("p.flow", "p.vib"),
    assets=("p", "p"),
    units=("L/min", "g"),
    tag_settings=ASSET_TAGS,
    asset_names=("p",),
    asset_index=np.array([0, 0], dtype=np.intp),
    asset_rows={"p": [0, 1]},
    subjects=("p",),
    row_of={"p.flow": 0, "p.vib": 1},
)


class AssetMax(Threshold):
    """A toy per-asset detector: anomalous while any tag is above 10; filed under the largest tag, as the
    asset detectors file theirs under their top contributor."""

    name = "asset_max"
    spec = Spec(
        kind="asset_state",
        subjects=ASSET_LAYOUT.subjects,
        subject_assets=np.array([0], dtype=np.intp),
        open_k=1,
        open_n=1,
        clear_steps=1,
    )

    def observe(self, tick: Tick) -> Findings:
        top = float(np.max(tick.clean))
        return findings(np.array([top > 10.0]), np.array([top <= 5.0]), np.array([top]))

    def explain(self, tick: Tick, findings: Findings, subject: int, tag: str | None) -> Explanation:
        row = int(np.argmax(tick.values)) if tag is None else ASSET_LAYOUT.row_of[tag]
        return Explanation(
            tag=ASSET_LAYOUT.tags[row],
            obs=tick.obs(row),
            contributors=tick.contributors(row),
            magnitude=float(findings.score[subject]) / 10.0,
            limit=10.0,
        )


def test_a_re_activated_asset_alert_quotes_the_tag_it_is_filed_under() -> None:
    """Re-opening within the re-arm time continues the alert filed under its first tag; its numbers and
    unit are that tag's even when another tag now leads the asset (SKAB showed 'vibration = 126.7 L/min')."""
    metrics = Metrics(CollectorRegistry())
    book = AlertBook(metrics, DetectSettings.model_validate({"update_min_interval_s": 0.0, "rearm_min_s": 60.0}))
    det = AssetMax()
    cycle = AlertCycle(ASSET_LAYOUT, [det], lambda: book, metrics)
    seen = []
    for ts, values in enumerate([[1.0, 20.0], [1.0, 1.0], [130.0, 1.0]]):
        tick = dataclasses.replace(_tick(float(ts), values, cycle), layout=ASSET_LAYOUT)
        f = det.observe(tick)
        seen += cycle.advance(det, tick, f)
    assert [(e.event, e.tag, e.reactivations) for e in seen] == [("opened", "p.vib", 0), ("updated", "p.vib", 1)]
    again = seen[-1]
    assert (again.actual, again.unit) == (1.0, "g")
    assert again.message.startswith("p: p.vib") and "L/min" not in again.message


def test_a_tag_alert_lists_its_own_tag_first_then_its_asset_by_score() -> None:
    """A limit alert on a tag whose residual is quiet (its forecaster followed it to the limit) still names that
    tag first; the asset's other tags follow by anomaly score, the other asset's never appear."""
    tags = ("c.t", "c.p", "c.f", "d.q")
    layout = dataclasses.replace(
        LAYOUT,
        tags=tags,
        assets=("c", "c", "c", "d"),
        units=("°C", "%", "m3/h", "bar"),
        asset_names=("c", "d"),
        asset_index=np.array([0, 0, 0, 1], dtype=np.intp),
        asset_rows={"c": [0, 1, 2], "d": [3]},
        subjects=("c", "d"),
        row_of={t: i for i, t in enumerate(tags)},
        max_contributors=3,
    )
    v = np.array([5.3, 50.0, 100.0, 1.0])
    surprise = np.array([0.02, 0.05, 0.03, 0.9])
    metrics = Metrics(CollectorRegistry())
    book = AlertBook(metrics, DetectSettings())
    tick = dataclasses.replace(
        _tick(0.0, [1.0, 1.0], AlertCycle(LAYOUT, [], lambda: book, metrics)),
        layout=layout,
        values=v,
        rows=RowNumbers(
            expected=np.repeat(v[:, None], 3, axis=1), z=surprise * 10, score=surprise, mid=1, surprise=surprise
        ),
    )
    assert [c.tag for c in tick.contributors(0)] == ["c.t", "c.p", "c.f"]
    assert [c.tag for c in tick.contributors(1)] == ["c.p", "c.f", "c.t"]
    assert [c.tag for c in tick.contributors(3)] == ["d.q"]
