"""``detect.asset_warmup_ends_with_history``: the history replay is the asset's warm-up, whatever its length.

A warm-up counted in ticks runs on into live data when the history had fewer learnable ticks than the
count (mode pauses at night, gaps): the model then learns the live fault as normal, or never scores.
"""

from __future__ import annotations

import numpy as np

from sentinelle.detect.asset import AssetT2Q
from sentinelle.detect.detectors import Findings, Tick
from sentinelle.detect.stage import DetectStage
from sentinelle.settings import TagSettings

from .detect_helpers import feed, noisy, stage

TAGS = (
    TagSettings(name="a.x", asset="a", node_id="n1", min_spread=0.01),
    TagSettings(name="a.y", asset="a", node_id="n2", min_spread=0.01),
)
NOMINAL = [1.0, 2.0]


def _asset_openings(ends_with_history: bool) -> int:
    st, _ = stage(
        TAGS,
        asset_enabled=True,
        asset_warmup_steps=1000,  # more than the history holds
        asset_warmup_ends_with_history=ends_with_history,
        score_threshold=0.99,  # residuals out of the way: this is about the asset model
    )
    with st.replaying_history():
        feed(st, TAGS, noisy(NOMINAL, 200, noise=0.05, seed=1), NOMINAL)
    # Live: the pair breaks its normal state for good (x 12 σ of its history high), forecast unaware.
    live = [[x + 0.6, y] for x, y in noisy(NOMINAL, 100, noise=0.05, seed=2)]
    events = feed(st, TAGS, live, NOMINAL, start=200.0)
    return sum(e.event == "opened" and e.kind == "asset_state" for e in events)


def test_the_model_freezes_when_the_history_ends_and_scores_live_data() -> None:
    assert _asset_openings(ends_with_history=True) == 1


def test_without_it_a_short_history_leaves_the_model_learning_the_fault() -> None:
    assert _asset_openings(ends_with_history=False) == 0


def test_a_history_too_short_to_learn_from_leaves_the_warm_up_running() -> None:
    st, _ = stage(TAGS, asset_enabled=True, asset_warmup_steps=1000, asset_warmup_ends_with_history=True)
    with st.replaying_history():
        feed(st, TAGS, noisy(NOMINAL, 5), NOMINAL)
    models = [m for g in st._groups.values() for d in g.detectors for m in getattr(d, "models", [])]
    assert models and not any(m.frozen for m in models)
    assert np.all([m.count == 5 for m in models])


def _models(st: DetectStage) -> list[AssetT2Q]:
    return [m for g in st._groups.values() for d in g.detectors for m in getattr(d, "models", [])]


def test_every_detector_sees_the_replay_and_its_end_in_the_tick() -> None:
    st, _ = stage(TAGS, asset_enabled=True, asset_warmup_steps=1000, asset_warmup_ends_with_history=True)
    seen: list[tuple[bool, bool]] = []
    with st.replaying_history():
        feed(st, TAGS, noisy(NOMINAL, 40, noise=0.05), NOMINAL)
        g = next(iter(st._groups.values()))
        observe = g.detectors[0].observe

        def spy(tick: Tick) -> Findings:
            seen.append((tick.replay, tick.replay_ended))
            return observe(tick)

        g.detectors[0].observe = spy  # type: ignore[method-assign]
        feed(st, TAGS, noisy(NOMINAL, 1), NOMINAL, start=40.0)
    feed(st, TAGS, noisy(NOMINAL, 2), NOMINAL, start=41.0)
    assert seen == [(True, False), (False, True), (False, False)]  # (replay, replay_ended) per tick


def test_a_snapshot_between_the_replay_and_the_first_live_tick_keeps_the_end_of_the_warm_up() -> None:
    settings: dict[str, object] = dict(asset_enabled=True, asset_warmup_steps=1000, asset_warmup_ends_with_history=True)
    st, _ = stage(TAGS, **settings)
    with st.replaying_history():
        feed(st, TAGS, noisy(NOMINAL, 200, noise=0.05, seed=1), NOMINAL)
    assert not any(m.frozen for m in _models(st))  # frozen at the group's next tick, which says the replay ended
    arrays, meta = st.state()
    other, _ = stage(TAGS, **settings)
    other.restore(arrays, meta)
    feed(other, TAGS, noisy(NOMINAL, 1), NOMINAL, start=200.0)
    models = _models(other)
    assert models and all(m.frozen for m in models)
