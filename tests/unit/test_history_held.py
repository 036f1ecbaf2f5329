"""Compressed history's held slots on the learning side (issue 17): windows → backfill → detectors → fine-tuning.

A noisy tag exported the way a historian compresses it (a value written only once it
moved past the deadband) is flat most of the time.  Taken for measurements, those flat
stretches teach a follow-the-value forecaster a tiny spread and the residual scorer a
spread far below the live one; with ``detect.history_held`` (widen, the default) the
learned spread stays close to what the same tag teaches from its uncompressed samples.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from sentinelle.backfill import run_backfill
from sentinelle.detect.asset import AssetT2Q
from sentinelle.detect.scoring import ResidualScorer
from sentinelle.detect.stage import DetectStage
from sentinelle.evaluation.history_data import load_sources
from sentinelle.forecast.base import Forecaster
from sentinelle.metrics import Metrics
from sentinelle.records import FloatArray, ForecastBatch, Sample, WindowBatch
from sentinelle.settings import (
    CsvEventsSource,
    CsvWideSource,
    DetectSettings,
    HistorySettings,
    Settings,
    TagSettings,
    WindowSettings,
)
from sentinelle.training.finetune_data import tracks
from sentinelle.windows import Windows

from .deadband_helpers import compress

LEVELS = (0.1, 0.5, 0.9)
Z90 = 1.2815515655446004
SIGMA = 0.1
DEADBAND = 0.25
TAG = "a.t"
T0 = 1_767_225_600.0
STEPS = 3000


def noisy(seed: int, n: int = STEPS) -> FloatArray:
    return np.asarray(10.0 + np.random.default_rng(seed).normal(0.0, SIGMA, n), dtype=np.float64)


def follow_forecast(context: FloatArray) -> FloatArray:
    """Median: the last value; spread: the std of the last 8 steps (what a forecaster sees in the context)."""
    steps = np.diff(context[-9:])
    spread = float(np.sqrt(np.mean(steps**2))) if len(steps) else 0.0
    last = float(context[-1])
    return np.array([last - Z90 * spread, last, last + Z90 * spread])


def scorer(mode: str) -> ResidualScorer:
    s = DetectSettings(history_held=mode, residual_min_sigma=0.01, score_memory_steps=5000)  # type: ignore[arg-type]
    return ResidualScorer.from_settings(1, LEVELS, np.array([0.01]), s)


def learned_spread(
    sc: ResidualScorer, values: FloatArray, held: np.ndarray | None, deadband: float | None
) -> tuple[float, int]:
    """Replay ``values`` through the scorer; the median spread it judges with (forecast spread × scale), learned."""
    spreads = []
    for t in range(1, len(values)):
        w = WindowBatch(
            ts=float(t),
            period_s=1.0,
            tags=(TAG,),
            assets=("a",),
            values=values[t : t + 1],
            contexts=values[None, : t + 1],
            held=None if held is None else held[t : t + 1],
        )
        q = np.repeat(follow_forecast(values[: t + 1])[None, :, None], 2, axis=2)
        sc.score(ForecastBatch(window=w, levels=LEVELS, quantiles=q, forecaster="f"), np.ones(1, bool),
                 None if deadband is None else np.array([deadband]))  # fmt: skip
        if t > len(values) // 2 and np.isfinite(sc.spread[0]):
            spreads.append(float(sc.spread[0] * sc.scale.sigma()[0]))
    return float(np.median(spreads)), int(sc.scale.learned[0])


def test_widen_teaches_a_spread_close_to_the_live_one_and_off_far_too_small() -> None:
    x = noisy(1)
    held_values, held = compress(x, DEADBAND)
    assert 0.6 < held.mean() < 0.95  # mostly held, as a compressed export is
    live, _ = learned_spread(scorer("off"), x, None, None)
    assert live == pytest.approx(SIGMA * np.sqrt(2.0), rel=0.3)  # the follow forecaster's residual: two noises
    off, _ = learned_spread(scorer("off"), held_values, held, DEADBAND)
    widen, _ = learned_spread(scorer("widen"), held_values, held, DEADBAND)
    assert off < 0.5 * live  # taken for measurements, the flat stretches teach a spread far too small
    assert 0.7 * live < widen < 1.6 * live


def test_skip_learns_only_changed_slots_and_widen_learns_every_slot() -> None:
    held_values, held = compress(noisy(2), DEADBAND)
    _, n_skip = learned_spread(scorer("skip"), held_values, held, DEADBAND)
    _, n_widen = learned_spread(scorer("widen"), held_values, held, DEADBAND)
    changed = int((~held[1:]).sum())
    assert n_skip <= changed < n_widen
    assert n_skip >= changed - 10  # the first ticks wait for context
    # Skip learns from the moves past the deadband only: wider than widen, never narrower than the live noise.
    skip, _ = learned_spread(scorer("skip"), held_values, held, DEADBAND)
    assert skip > SIGMA


def test_widen_without_a_deadband_skips_held_slots() -> None:
    """A tag held through the whole export has no deadband estimate: nothing to widen by, so held is skipped."""
    held_values, held = compress(noisy(6), DEADBAND)
    _, n_skip = learned_spread(scorer("skip"), held_values, held, DEADBAND)
    _, n_unknown = learned_spread(scorer("widen"), held_values, held, 0.0)
    _, n_widen = learned_spread(scorer("widen"), held_values, held, DEADBAND)
    assert n_unknown == n_skip < n_widen


def test_without_a_held_mask_every_mode_is_the_same() -> None:
    """Live batches carry no mask: widen and skip change nothing there."""
    x = noisy(3, 800)
    a = learned_spread(scorer("off"), x, None, DEADBAND)
    b = learned_spread(scorer("widen"), x, None, DEADBAND)
    c = learned_spread(scorer("skip"), x, None, DEADBAND)
    assert a == b == c


# -- windows: changed and held slots -----------------------------------------------------


def _windows() -> Windows:
    tags = [TagSettings(name=TAG, asset="a", node_id="ns=2;s=a.t", period_s=10.0)]
    return Windows(tags, WindowSettings(allowed_lateness_s=0.0, context_steps=8), Metrics(CollectorRegistry()))


def test_windows_mark_a_slot_changed_when_a_read_sample_fell_into_it() -> None:
    w = _windows()
    # A wide export's rows every 10 s (held cells flagged 1), then an event-log-like gap of 30 s with no row.
    samples = [Sample(TAG, T0 + 10.0 * k, 5.0 + k) for k in range(6)] + [Sample(TAG, T0 + 90.0, 1.0)]
    flags = bytes([0, 1, 0, 1, 1, 0, 0])
    batches = w.ingest(samples, held=flags)
    got = [(b.ts - T0, bool(b.held[0])) for b in batches if b.held is not None and np.isfinite(b.values[0])]
    expect = [(0.0, False), (10.0, True), (20.0, False), (30.0, True), (40.0, True), (50.0, False)]
    assert got == [*expect, (60.0, True), (70.0, True), (80.0, True)]  # 60-80: no row at all, held
    w.stop_marking_held()
    live = w.ingest([Sample(TAG, T0 + 100.0, 2.0), Sample(TAG, T0 + 110.0, 2.0)])
    assert live and all(b.held is None for b in live)


def test_windows_without_held_flags_carry_no_mask() -> None:
    w = _windows()
    batches = w.ingest([Sample(TAG, T0 + 10.0 * k, float(k)) for k in range(5)])
    assert batches and all(b.held is None for b in batches)


# -- backfill: both export formats, configured once ---------------------------------------


def _write_exports(folder: Path, values: FloatArray, held: np.ndarray, period_s: float) -> tuple[Path, Path]:
    wide, events = folder / "wide.csv", folder / "events.csv"
    with open(wide, "w", encoding="utf-8-sig") as fw, open(events, "w", encoding="utf-8-sig") as fe:
        fw.write("Date;Température (°C)\n")
        fe.write("Date;Nom Paramètre;Valeurs;Nouvelle valeur\n")
        prev = ""
        for k, (v, h) in enumerate(zip(values.tolist(), held.tolist(), strict=True)):
            when = dt.datetime.fromtimestamp(T0 + period_s * k, dt.UTC).strftime("%d/%m/%Y %H:%M:%S")
            cell = "" if h else f"{v:.4f}".replace(".", ",")
            fw.write(f"{when};{cell}\n")
            if not h:
                fe.write(f"{when};Température (°C);{prev};{cell}\n")
                prev = cell
    return wide, events


class _Follow(Forecaster):
    name = "follow"
    levels = LEVELS
    horizon = 2

    def forecast(self, contexts: FloatArray, assets: object = None) -> FloatArray:
        rows = [follow_forecast(c[np.isfinite(c)]) if np.isfinite(c).any() else np.full(3, np.nan) for c in contexts]
        return np.repeat(np.stack(rows)[:, :, None], self.horizon, axis=2)


def _backfill(source: CsvWideSource | CsvEventsSource, mode: str, n: int, period_s: float) -> ResidualScorer:
    tag = TagSettings(name=TAG, asset="a", node_id="ns=2;s=a.t", period_s=period_s, min_spread=0.01)
    settings = Settings(
        tags=(tag,),
        windows=WindowSettings(allowed_lateness_s=0.0, context_steps=16),
        detect=DetectSettings(history_held=mode, residual_min_sigma=0.01),  # type: ignore[arg-type]
        history=HistorySettings(
            sources=(source,),
            backfill_from=dt.datetime.fromtimestamp(T0, dt.UTC),
            backfill_until=dt.datetime.fromtimestamp(T0 + period_s * n, dt.UTC),
        ),
    )
    metrics = Metrics(CollectorRegistry())
    windows = Windows(settings.tags, settings.windows, metrics)
    detect = DetectStage(settings.tags, settings.detect, metrics)
    asyncio.run(run_backfill(settings, metrics, windows, _Follow(), detect, now=T0 + period_s * n))
    return next(iter(detect._groups.values())).scorer


@pytest.mark.parametrize("fmt", ["wide", "events"])
def test_backfill_from_either_export_learns_as_history_held_says(tmp_path: Path, fmt: str) -> None:
    n, period = 1500, 60.0
    x = noisy(4, n)
    _, held = compress(x, DEADBAND)
    wide, events = _write_exports(tmp_path, x, held, period)
    tag_map = {"Température (°C)": TAG}
    source: CsvWideSource | CsvEventsSource = (
        CsvWideSource(path=wide, date_column="Date", tag_map=tag_map)
        if fmt == "wide"
        else CsvEventsSource(
            path=events, date_column="Date", tag_column="Nom Paramètre", value_column="Valeurs",
            new_value_column="Nouvelle valeur", tag_map=tag_map,
        )
    )  # fmt: skip
    off, widen, skip = (_backfill(source, mode, n, period) for mode in ("off", "widen", "skip"))
    changed = int((~held).sum())
    # skip: only changed slots are learned (not all: the first wait for context, and an event log's value held
    # past windows.max_hold_s is a gap, after which the scorer waits for context again).
    assert 0.6 * changed <= skip.scale.learned[0] <= changed
    assert off.scale.learned[0] == widen.scale.learned[0] > changed + 100
    # widen: the learned spread is the deadband's at least, off's is far below it.
    assert widen.scale.sigma()[0] * DEADBAND / np.sqrt(3.0) > 2.0 * off.scale.sigma()[0] * 0.01


# -- asset warm-up ------------------------------------------------------------------------


def test_asset_warm_up_widened_by_the_deadband() -> None:
    from sentinelle.detect.detectors.asset_t2q import AssetDetector
    from sentinelle.detect.detectors.base import BuildContext, Layout

    tags = tuple(TagSettings(name=f"a.t{i}", asset="a", node_id=f"ns=2;s=a.t{i}", min_spread=0.01) for i in range(2))
    lay = Layout(
        tags=tuple(t.name for t in tags), assets=("a", "a"), units=("", ""), period_s=1.0, tag_settings=tags,
        asset_names=("a",), asset_index=np.zeros(2, dtype=np.intp), asset_rows={"a": [0, 1]}, subjects=("a",),
        row_of={t.name: i for i, t in enumerate(tags)}, max_contributors=5,
    )  # fmt: skip
    for mode, expect in (("widen", 0.01**2 + DEADBAND**2 / 3.0), ("off", 0.01**2)):
        s = DetectSettings(asset_enabled=True, history_held=mode)  # type: ignore[arg-type]
        det = AssetDetector(BuildContext(lay, s, LEVELS, Metrics(CollectorRegistry())))
        model: AssetT2Q = det.models[0]
        assert not model.frozen
        from types import SimpleNamespace

        det._scored = np.ones(1, dtype=bool)
        tick = SimpleNamespace(
            alerts=SimpleNamespace(open=lambda d: np.zeros(1, dtype=bool)),
            gate=np.zeros(2, dtype=bool),
            held=np.array([True, False]),
            deadband=np.array([DEADBAND, DEADBAND]),
        )
        model.assess(np.array([1.0, 2.0]))
        det.learn(tick, None)  # type: ignore[arg-type]
        assert model.floor[0] == pytest.approx(expect)
        assert model.floor[1] == pytest.approx(0.01**2)  # a changed tag keeps its resolution's floor


# -- fine-tuning: held points stay in the contexts; the scores in units use read points only --------


def test_finetune_keeps_held_points_in_contexts_and_out_of_the_unit_scores(tmp_path: Path) -> None:
    n, period = 200, 60.0
    x = noisy(5, n)
    _, held = compress(x, DEADBAND)
    wide, _ = _write_exports(tmp_path, x, held, period)
    (series,) = load_sources([CsvWideSource(path=wide, date_column="Date", tag_map={"Température (°C)": TAG})],
                             periods={TAG: period})  # fmt: skip
    assert series.held is not None
    assert series.held.tolist() == held.tolist()
    (track,) = tracks([series], 0.2)
    assert np.isnan(track.targets[held]).all()
    assert np.isfinite(track.targets[~held]).all()
    assert np.isfinite(track.values).all()  # contexts keep the export as it is


def test_restored_windows_with_pending_samples_close_their_slots() -> None:
    """A scale-out snapshot taken with samples pending (not yet in a closed slot) restores with them as read."""
    tags = [TagSettings(name=TAG, asset="a", node_id="ns=2;s=a.t", period_s=10.0)]
    settings = WindowSettings(allowed_lateness_s=25.0, context_steps=8)
    w = Windows(tags, settings, Metrics(CollectorRegistry()))
    w.ingest([Sample(TAG, T0 + 10.0 * k, float(k)) for k in range(6)])
    assert w.groups[0]._pend_rows  # lateness keeps the newest samples pending
    arrays, meta = w.state()
    other = Windows(tags, settings, Metrics(CollectorRegistry()))
    other.restore(arrays, meta)
    closed = other.ingest([Sample(TAG, T0 + 100.0, 9.0)])
    assert [float(b.values[0]) for b in closed][:3] == [3.0, 4.0, 5.0]
    assert all(b.held is None for b in closed)


# -- after the replay: held history's scale gives way to live data -------------------------


def _fixed_fault_batch(t: int, value: float, held: bool | None) -> ForecastBatch:
    """A calibrated forecast of the live data (10 ± SIGMA), one tag, slot ``t`` of 60 s."""
    w = WindowBatch(ts=T0 + 60.0 * t, period_s=60.0, tags=(TAG,), assets=("a",), values=np.array([value]),
                    contexts=np.full((1, 16), 10.0), held=None if held is None else np.array([held]))  # fmt: skip
    q = np.repeat(np.array([[10.0 - Z90 * SIGMA, 10.0, 10.0 + Z90 * SIGMA]])[:, :, None], 2, axis=2)
    return ForecastBatch(window=w, levels=LEVELS, quantiles=q, forecaster="fixed")


def _first_fault_alert(
    history: str | None, weight_steps: float, live_steps: int = 1500, drop_after_steps: float | None = None
) -> float:
    """Seconds from a level shift of 4.5 σ to the first alert, after ``live_steps`` of live noise.

    ``history``: None (cold start at the first live tick) or ``history_held`` for a replay of 3000 slots of
    the same tag's noise, deadband-compressed, before the live ticks.
    """
    tag = TagSettings(name=TAG, asset="a", node_id="ns=2;s=a.t", period_s=60.0, min_spread=0.01)
    s = DetectSettings(history_held=history or "widen", history_held_weight_steps=weight_steps)  # type: ignore[arg-type]
    if drop_after_steps is not None:
        s = s.model_copy(update={"history_held_drop_after_steps": drop_after_steps})
    detect = DetectStage((tag,), s, Metrics(CollectorRegistry()))
    t = 0
    if history is not None:
        values, held = compress(noisy(7, 3000), DEADBAND)
        with detect.replaying_history({TAG: DEADBAND}):
            for v, h in zip(values.tolist(), held.tolist(), strict=True):
                detect.process(_fixed_fault_batch(t, v, h))
                t += 1
    live = noisy(8, live_steps + 200)
    live[live_steps:] += 4.5 * SIGMA
    for k, v in enumerate(live.tolist()):
        events = detect.process(_fixed_fault_batch(t, v, None))
        t += 1
        opened = [e for e in events if e.event == "opened" and e.kind == "forecast_residual"]
        if opened:
            assert k >= live_steps, f"false alert {k - live_steps} ticks before the fault"
            return 60.0 * (k - live_steps)
    return np.inf


def test_held_history_does_not_delay_a_fault_on_the_live_days() -> None:
    """Replayed held history widens the residual scale (widen, the default); once live, a fault opens no later."""
    weight = DetectSettings().history_held_weight_steps
    cold = _first_fault_alert(None, weight)
    assert np.isfinite(cold)
    assert _first_fault_alert("widen", weight) <= cold
    assert _first_fault_alert("widen", weight, drop_after_steps=np.inf) <= cold  # the hand-over, never dropped
    # Without the hand-over (the scale learned from held history kept for score_memory_steps, never dropped)
    # the same fault opens five periods later: what the assertions above catch.
    assert _first_fault_alert("widen", np.inf, drop_after_steps=np.inf) > cold


def test_history_weight_counts_only_for_rows_with_held_slots() -> None:
    """An uncompressed replay (no held slot) keeps all its weight; a held one counts weight / held share."""
    sc = scorer("widen")
    held_values, held = compress(noisy(9, 1200), DEADBAND)
    learned_spread(sc, held_values, held, DEADBAND)
    sc.history_held_weight_steps = 100.0
    share = float(sc._replay_held[0] / sc._replay_learned[0])
    assert 0.6 < share < 0.95
    sc.history_replayed()
    assert sc.scale.learned[0] - sc.scale.discounted[0] == pytest.approx(100.0 / share, abs=1.0)
    assert sc._replay_learned[0] == sc._replay_held[0] == 0
    plain = scorer("widen")
    learned_spread(plain, noisy(9, 1200), None, DEADBAND)
    plain.history_replayed()
    assert plain.scale.discounted[0] == 0


def _first_relation_alert(
    history: bool, weight_steps: float, live_steps: int = 1500, drop_after_steps: float = np.inf
) -> float:
    """Seconds from a 10 σ shift of a relation's target (y = 2x) to the first relation alert, after live noise.

    ``history``: a replay of 3000 slots of both tags, deadband-compressed, before the live ticks (widen).
    ``drop_after_steps``: ``history_held_relation_drop_after_steps`` (inf: the weight alone, as before it).
    """
    from sentinelle.settings import AssetDetectSettings, RelationSettings

    names = ("a.x", "a.y")
    tags = tuple(TagSettings(name=n, asset="a", node_id=f"ns=2;s={n}", period_s=60.0, min_spread=0.01) for n in names)
    relation = RelationSettings(target="a.y", inputs=("a.x",))
    s = DetectSettings(assets=(AssetDetectSettings(name="a", relations=(relation,)),),
                       history_held_weight_steps=weight_steps,
                       history_held_relation_drop_after_steps=drop_after_steps)  # fmt: skip
    detect = DetectStage(tags, s, Metrics(CollectorRegistry()))
    q = np.array([[10.0 - Z90 * SIGMA, 10.0, 10.0 + Z90 * SIGMA], [20.0 - Z90 * 0.2, 20.0, 20.0 + Z90 * 0.2]])

    def batch(t: int, xy: tuple[float, float], held: np.ndarray | None) -> ForecastBatch:
        w = WindowBatch(ts=T0 + 60.0 * t, period_s=60.0, tags=names, assets=("a", "a"), values=np.array(xy),
                        contexts=np.full((2, 16), 10.0), held=held)  # fmt: skip
        return ForecastBatch(window=w, levels=LEVELS, quantiles=np.repeat(q[:, :, None], 2, axis=2), forecaster="f")

    def plant(seed: int, n: int) -> tuple[FloatArray, FloatArray]:
        x = noisy(seed, n)
        return x, 2.0 * x + np.random.default_rng(seed + 100).normal(0.0, SIGMA, n)

    t = 0
    if history:
        (hx, mx), (hy, my) = (compress(v, DEADBAND) for v in plant(10, 3000))
        with detect.replaying_history({"a.x": DEADBAND, "a.y": DEADBAND}):
            for k in range(3000):
                detect.process(batch(t, (float(hx[k]), float(hy[k])), np.array([mx[k], my[k]])))
                t += 1
    x, y = plant(11, live_steps + 100)
    y[live_steps:] += 10.0 * SIGMA
    for k in range(len(x)):
        events = detect.process(batch(t, (float(x[k]), float(y[k])), None))
        t += 1
        if any(e.event == "opened" and e.kind == "relation" for e in events):
            assert k >= live_steps, f"false relation alert {k - live_steps} ticks before the fault"
            return 60.0 * (k - live_steps)
    return np.inf


def test_held_history_does_not_delay_a_relation_alert_on_the_live_days() -> None:
    """A relation fitted on held values learns a wider spread; once live, a broken relation opens no later."""
    weight = DetectSettings().history_held_weight_steps
    cold = _first_relation_alert(False, weight)
    assert np.isfinite(cold)
    assert _first_relation_alert(True, weight) <= cold
    assert _first_relation_alert(True, np.inf) > cold  # the fit kept for memory_s (a week): later or never
    # The spread's hand-over end alone (the fit still kept for a week) opens it no later either.
    assert _first_relation_alert(True, np.inf, drop_after_steps=60.0) <= cold
