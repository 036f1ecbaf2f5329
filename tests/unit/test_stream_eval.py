"""The stream evaluator: rows mapped to their own slots, the daemon's drop rules, batched == live."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from sentinelle.evaluation.stream_eval import (
    Stream,
    close_windows,
    evaluate_stream,
    evaluate_stream_live,
    median_period,
    stream_settings,
)
from sentinelle.forecast.base import normal_quantiles
from sentinelle.records import FloatArray
from sentinelle.windows import slot_of

P = 300.0
T0 = 1_400_000_100.0  # a multiple of 300 s: on the epoch grid


class ZeroForecaster:
    """Always N(0, 1): a slot's surprise depends on its own value only, so a spike's row is known."""

    name = "zero"
    levels: tuple[float, ...] = (0.1, 0.5, 0.9)
    horizon = 16

    def forecast(self, contexts: FloatArray, assets: Sequence[str] | None = None) -> FloatArray:
        n = contexts.shape[0]
        return normal_quantiles(np.zeros((n, self.horizon)), np.ones((n, self.horizon)), self.levels)


def _series(n: int, offset_s: float, seed: int = 0) -> Stream:
    rng = np.random.default_rng(seed)
    return Stream("toy", T0 + offset_s + P * np.arange(float(n)), rng.normal(size=n))


def _slot_values(stream: Stream, offset_s: float) -> tuple[dict[int, float], np.ndarray]:
    w = close_windows(stream, stream_settings(P, "naive"), P)
    return {round(b.ts / P): float(b.values[0]) for b in w.batches}, w.row_slot


@pytest.mark.parametrize("offset_s", [0.0, 1.0, 4.0, 299.0])
def test_every_row_lands_in_its_own_slot_off_the_epoch_grid(offset_s: float) -> None:
    s = _series(200, offset_s)
    by_slot, row_slot = _slot_values(s, offset_s)
    assert row_slot.tolist() == [slot_of(t, P) for t in s.timestamps.tolist()]
    # The slot a row was mapped to is the one whose window holds that row's value.
    assert all(by_slot[k] == v for k, v in zip(row_slot.tolist(), s.values.tolist(), strict=True))
    # The old mapping, round((slot_end − t0)/p), is one row late when t0 is less than half a period past the grid.
    old = [round((k * P - s.timestamps[0]) / P) for k in row_slot.tolist()]
    assert (old == list(range(len(s.timestamps)))) == (not 0.0 < offset_s < P / 2)


@pytest.mark.parametrize("offset_s", [1.0, 4.0])
def test_a_spike_scores_on_its_own_row(offset_s: float) -> None:
    s = _series(300, offset_s, seed=1)
    values = s.values.copy()
    values[250] = 40.0
    r = evaluate_stream(Stream("toy", s.timestamps, values), stream_settings(P, "naive"), ZeroForecaster(), P)
    # The residual term: the combined score also holds the novelty, which scores 1.0 on many of the noise's
    # first cell transitions (a share, not a calibrated probability), so its maximum need not be the spike.
    res = r.parts["forecast_residual"]
    assert int(np.argmax(res)) == 250
    assert res[251] < res[250] and res[249] < res[250]
    assert r.score[250] == r.score.max()  # the combined score is at its ceiling there too
    assert r.score.min() >= 0.0 and r.score.max() <= 1.0


def test_duplicate_and_backward_rows_are_dropped_and_counted_the_others_keep_their_slots() -> None:
    ts = list(T0 + 4.0 + P * np.arange(120))
    ts.insert(50, ts[49])  # row 50 repeats row 49's timestamp
    ts.insert(80, ts[79] - 2 * P)  # row 80 goes back in time
    ts.insert(90, ts[89] + 10.0)  # row 90 is a second sample in row 89's slot (irregular)
    values = np.arange(len(ts), dtype=np.float64)
    s = Stream("toy", np.array(ts), values)
    by_slot, row_slot = _slot_values(s, 4.0)
    assert row_slot[50] == -1 and row_slot[80] == -1
    assert row_slot[89] == row_slot[90] == slot_of(ts[89], P)
    r = evaluate_stream(s, stream_settings(P, "naive"), period_s=P)
    assert r.dropped == {"duplicate": 1, "out_of_order": 1}
    assert r.score[50] == 0.0 and r.score[80] == 0.0 and not r.opened[50] and not r.opened[80]
    for i, k in enumerate(row_slot.tolist()):
        if k < 0 or i == 89:
            continue
        # Each accepted row's slot holds its value (slot 89/90 holds the later sample: last wins).
        assert by_slot[k] == values[i]
    assert by_slot[row_slot[89]] == values[90]
    # A slot with no row is a gap (hold = one period), not the previous value held over.
    assert all(np.isnan(v) for k, v in by_slot.items() if k not in set(row_slot.tolist()))


@pytest.mark.parametrize("refresh", [1, 4])
@pytest.mark.parametrize("forecaster", ["holt", "naive"])
def test_batched_path_equals_the_live_stages(forecaster: str, refresh: int) -> None:
    rng = np.random.default_rng(3)
    n = 400
    ts = T0 + 4.0 + P * np.arange(n) + rng.uniform(-20, 20, size=n)
    ts[200:] += 7 * P  # a gap of seven slots
    ts[150] = ts[149]  # a duplicate
    x = np.sin(np.arange(n) / 12.0) * 5 + rng.normal(scale=0.3, size=n)
    x[300:310] += 8.0  # something to alert on
    s = Stream("toy", ts, x)
    p = median_period(ts)
    settings = stream_settings(p, forecaster, refresh_every_steps=refresh)
    batched = evaluate_stream(s, settings, period_s=p)
    live = evaluate_stream_live(s, settings, period_s=p)
    assert batched.slots == live.slots > n
    assert np.array_equal(batched.slot, live.slot)
    assert np.array_equal(batched.score, live.score)
    assert np.array_equal(batched.opened, live.opened)
    assert batched.dropped == live.dropped == {"duplicate": 1}
    assert batched.score.max() > 0.0
    if refresh > 1:  # the refresh really is in effect: forecasts made every 4 ticks score otherwise
        # (the residual term: the novelty term, which does not read forecasts, may hide it in the combined score)
        every = evaluate_stream(s, stream_settings(p, forecaster), period_s=p)
        assert not np.array_equal(batched.parts["forecast_residual"], every.parts["forecast_residual"])


def test_median_period_ignores_duplicate_and_backward_steps() -> None:
    assert median_period(np.array([0.0, 3600.0, 3600.0, 7200.0, 3000.0, 10800.0])) == 3600.0
    with pytest.raises(ValueError):
        median_period(np.array([5.0, 5.0]))


def test_forecast_cache_gives_the_same_result_and_is_keyed_by_the_windows(tmp_path: Path) -> None:
    s = _series(150, 4.0, seed=5)
    settings = stream_settings(P, "holt")
    cache = tmp_path / "fc" / "toy.npz"
    fresh = evaluate_stream(s, settings, period_s=P)
    first = evaluate_stream(s, settings, period_s=P, forecast_cache=cache)
    assert cache.is_file()

    class Refuses(ZeroForecaster):
        name = "holt"  # same name: only the windows' hash tells the files apart

        def forecast(self, contexts: FloatArray, assets: Sequence[str] | None = None) -> FloatArray:
            raise AssertionError("the cached forecasts should have been used")

    again = evaluate_stream(s, settings, Refuses(), period_s=P, forecast_cache=cache)
    assert np.array_equal(fresh.score, first.score) and np.array_equal(first.score, again.score)
    assert np.array_equal(first.opened, again.opened)
    # Other windows: the cache does not answer (the forecaster is asked, and here refuses).
    other = Stream("toy", s.timestamps, s.values + 1.0)
    with pytest.raises(AssertionError, match="should have been used"):
        evaluate_stream(other, settings, Refuses(), period_s=P, forecast_cache=cache)
