"""detect/detectors/asset_estimate.py: the rows of ``forecast.asset_mask_groups`` learn (and may flag) on their
own schedule (``detect.asset_estimate_group_learn_delay_steps`` / ``_group_min_learned_steps``), the others on
the global one; unset, every row as before, bit for bit."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from sentinelle.detect.detectors.asset_estimate import AssetEstimateDetector, in_groups
from sentinelle.detect.stage import DetectStage
from sentinelle.metrics import Metrics
from sentinelle.records import AlertEvent
from sentinelle.settings import DetectSettings, TagSettings

from .detect_helpers import SIGMA, batch, short_cycles

TAGS = tuple(TagSettings(name=f"c.t{i}", asset="c", node_id=f"n{i}", unit="u") for i in range(4))
GROUP = (("c.t2", "c.t3"),)
"""Two of the four tags estimated together (as the pump speeds are on the chiller)."""
_Z = np.array([-1.2816, 0.0, 1.2816])
NOMINAL = np.array([10.0, 20.0, 30.0, 40.0])


def run(
    groups: tuple[tuple[str, ...], ...] = GROUP,
    drift_row: int | None = None,
    steps: int = 1200,
    onset: int = 300,
    rate: float = 0.001,
    **kw: object,
) -> tuple[list[AlertEvent], AssetEstimateDetector]:
    """Noise of 0.02 around an estimate at nominal (spread ``SIGMA``); ``drift_row`` leaves it by ``rate`` per tick
    from ``onset`` on (0.001: 6 estimate spreads after 600 ticks: no tick jumps, the residual grows).  The
    estimate alerts opened and the detector at the end."""
    st = DetectStage(TAGS, short_cycles(**kw), Metrics(CollectorRegistry()), estimate_groups=groups)
    rng = np.random.default_rng(4)
    events: list[AlertEvent] = []
    for k in range(steps):
        values = NOMINAL + rng.normal(0.0, 0.02, len(TAGS))
        if drift_row is not None:
            values[drift_row] += rate * max(0, k - onset)
        fb = batch(TAGS, float(k), values.tolist(), values.tolist())  # the own forecast follows
        events += st.process(dataclasses.replace(fb, estimate=NOMINAL[:, None] + _Z[None, :] * SIGMA))
    (det,) = [d for d in next(iter(st._groups.values())).detectors if isinstance(d, AssetEstimateDetector)]
    opened = [e for e in events if e.kind == "relation" and e.event == "opened"]
    return opened, det


def first(events: list[AlertEvent], tag: str) -> float:
    return min(e.event_ts for e in events if e.tag == tag)


def test_in_groups_marks_the_groups_tags() -> None:
    assert in_groups(("a.x", "a.y", "b.z"), (("a.y", "b.z"),)).tolist() == [False, True, True]
    assert in_groups(("a.x",), ()).tolist() == [False]


def test_the_groups_rows_learn_at_their_own_delay_and_the_others_at_the_global() -> None:
    _, det = run(steps=50, asset_estimate_learn_delay_steps=10, asset_estimate_group_learn_delay_steps=30)
    assert det.scale.learned.tolist() == [40, 40, 20, 20]
    assert det.late_z.shape == (30, len(TAGS))  # one line, as deep as the longest delay
    _, det = run(steps=50, asset_estimate_learn_delay_steps=30, asset_estimate_group_learn_delay_steps=10)
    assert det.scale.learned.tolist() == [20, 20, 40, 40]
    _, det = run(steps=50, asset_estimate_learn_delay_steps=10, asset_estimate_group_learn_delay_steps=0)
    assert det.scale.learned.tolist() == [40, 40, 50, 50]  # 0: the group's rows learn each tick as it comes
    _, det = run(steps=50, asset_estimate_learn_delay_steps=0, asset_estimate_group_learn_delay_steps=10)
    assert det.scale.learned.tolist() == [50, 50, 40, 40]
    _, det = run((), steps=50, asset_estimate_learn_delay_steps=10, asset_estimate_group_learn_delay_steps=30)
    assert det.scale.learned.tolist() == [40] * 4  # no group: the group's delay concerns no row


def test_a_row_learns_its_own_residual_of_delay_ticks_ago() -> None:
    """The scale of a row 30 late equals that of a detector 30 late everywhere, the others that of one 10 late."""
    kw = {"drift_row": 2, "steps": 400, "onset": 100}
    _, mixed = run(asset_estimate_learn_delay_steps=10, asset_estimate_group_learn_delay_steps=30, **kw)  # type: ignore[arg-type]
    _, late = run(asset_estimate_learn_delay_steps=30, **kw)  # type: ignore[arg-type]
    _, soon = run(asset_estimate_learn_delay_steps=10, **kw)  # type: ignore[arg-type]
    for name in ("location", "square", "learned"):
        m, a, b = (getattr(d.scale, name) for d in (mixed, late, soon))
        assert np.array_equal(m[2:], a[2:]) and np.array_equal(m[:2], b[:2]), name
        assert not np.array_equal(a[2:], b[2:]), name  # the two schedules do differ on the drifting row


@pytest.mark.parametrize(("delay", "rate"), [(0, 0.05), (200, 0.001)])
def test_unset_or_equal_group_settings_change_nothing(delay: int, rate: float) -> None:
    kw = {
        "asset_estimate_learn_delay_steps": delay,
        "asset_estimate_min_learned_steps": 250,
        "drift_row": 2,
        "rate": rate,
    }
    base, det = run((), **kw)  # type: ignore[arg-type]
    assert base  # the drift is caught: there is something to compare
    same, other = run(GROUP, **kw)  # type: ignore[arg-type]
    equal, third = run(
        GROUP,
        asset_estimate_group_learn_delay_steps=delay,
        asset_estimate_group_min_learned_steps=250,
        **kw,  # type: ignore[arg-type]
    )
    assert base == same == equal
    for d in (other, third):
        assert np.array_equal(d.scale.location, det.scale.location) and np.array_equal(d.scale.square, det.scale.square)


def test_a_later_group_schedule_delays_only_the_groups_rows() -> None:
    # Global 200 late, flagging after 200 learned; the group 600 / 600.  Learned = k - delay at tick k.
    kw = {"asset_estimate_learn_delay_steps": 200, "asset_estimate_min_learned_steps": 200}
    group = {"asset_estimate_group_learn_delay_steps": 600, "asset_estimate_group_min_learned_steps": 600}
    plain, _ = run(drift_row=0, **kw)  # type: ignore[arg-type]
    other, _ = run(drift_row=0, **kw, **group)  # type: ignore[arg-type]
    assert {e.tag for e in plain} == {"c.t0"} and plain == other  # a tag outside the group: as before
    early, _ = run(drift_row=2, **kw)  # type: ignore[arg-type]
    late, _ = run(drift_row=2, steps=1600, **kw, **group)  # type: ignore[arg-type]
    assert {e.tag for e in late} == {"c.t2"}  # the group's tag is still caught ...
    assert first(early, "c.t2") < 700 <= 1200 <= first(late, "c.t2")  # ... once its scale has learned 600
    quiet, _ = run(steps=1600, **kw, **group)  # type: ignore[arg-type]
    assert quiet == []


def test_the_groups_minimum_alone_holds_its_rows_back() -> None:
    kw = {"asset_estimate_learn_delay_steps": 200, "drift_row": 2}
    early, _ = run(**kw)  # type: ignore[arg-type]
    held, det = run(asset_estimate_group_min_learned_steps=700, steps=1400, **kw)  # type: ignore[arg-type]
    assert det.grace.tolist() == [20.0, 20.0, 700.0, 700.0]  # the shared grace elsewhere
    assert first(early, "c.t2") < 700 and first(held, "c.t2") >= 900  # 700 learned at tick 900


def test_the_longest_delay_line_survives_a_restart() -> None:
    kw = {"steps": 50, "asset_estimate_learn_delay_steps": 10, "asset_estimate_group_learn_delay_steps": 30}
    _, det = run(**kw)  # type: ignore[arg-type]
    _, fresh = run(**{**kw, "steps": 1})  # type: ignore[arg-type]
    fresh.restore(det.state())
    assert np.array_equal(fresh.late_z, det.late_z, equal_nan=True) and fresh.late_pos[0] == det.late_pos[0] == 50 % 30


def test_the_settings_default_to_the_global_ones() -> None:
    s = DetectSettings()
    assert s.asset_estimate_group_learn_delay_steps is None and s.asset_estimate_group_min_learned_steps is None
    with pytest.raises(ValueError):
        DetectSettings(asset_estimate_group_learn_delay_steps=-1)


class _Stop(Exception):
    pass


def test_the_evaluations_tell_the_detectors_the_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    """chiller_eval puts a config's groups in the replay's forecast settings; the replay gives them to the
    detect stage when it has an estimator (not otherwise: no estimate, no group)."""
    from sentinelle.evaluation import chiller_eval, replay

    seen: list[object] = []

    def fake_replay(rec: object, settings: object, forecaster: object, estimator: object) -> None:
        seen.append(settings)
        raise _Stop

    monkeypatch.setattr(chiller_eval, "replay", fake_replay)
    config = chiller_eval.Config(
        "g", "holt", asset=False, rules=True, asset_model=True, asset_mask_recent_steps=128, asset_mask_groups=GROUP
    )
    with pytest.raises(_Stop):
        chiller_eval.evaluate_run(None, [], replay.replay_settings(), config)  # type: ignore[arg-type]
    (settings,) = seen
    assert settings.forecast.asset_mask_groups == [list(g) for g in GROUP]  # type: ignore[attr-defined]

    stages: list[tuple[tuple[str, ...], ...]] = []

    def fake_stage(*args: object, estimate_groups: tuple[tuple[str, ...], ...] = (), **kw: object) -> None:
        stages.append(tuple(tuple(g) for g in estimate_groups))
        raise _Stop

    monkeypatch.setattr(replay, "DetectStage", fake_stage)
    n = len(TAGS)
    rec = replay.Recording(
        "r", "c", tuple(t.name for t in TAGS), ("u",) * n, np.arange(3.0), np.zeros((3, n)), np.ones(3, dtype=bool)
    )
    for estimator in (object(), None):
        with pytest.raises(_Stop):
            replay.replay(rec, settings, None, estimator)  # type: ignore[arg-type]
    assert stages == [GROUP, ()]
