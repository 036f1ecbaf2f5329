"""The asset estimate anchored before an excursion (forecast/asset_anchor.py and its use in asset_engine.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sentinelle.errors import ModelError
from sentinelle.forecast.asset_anchor import ExcursionAnchors, band_misses
from sentinelle.forecast.asset_engine import AssetForecast, AssetForecaster
from sentinelle.records import WindowBatch

from .model_helpers import small_asset_checkpoint

LEVELS = (0.1, 0.5, 0.9)
KEY = ("pump", "pump.a", "pump.b")


def _band(median: float, half: float = 1.0) -> np.ndarray:
    return np.array([median - half, median, median + half])


def test_a_miss_is_counted_in_half_widths_on_its_own_side() -> None:
    est = np.array([[8.0, 10.0, 11.0], [8.0, 10.0, 11.0], [3.0, 3.0, 3.0], [np.nan] * 3])
    got = band_misses(np.array([14.0, 6.0, 3.0, 1.0]), est, 1)
    assert got[:3].tolist() == [4.0, 2.0, 0.0] and np.isnan(got[3])
    assert np.isnan(band_misses(np.array([np.nan]), est[:1], 1)).all()


def test_an_excursion_anchors_the_mask_at_its_start_until_the_values_come_back() -> None:
    """R 16, k 3: refreshes at 0, 16, 32 ... A tag 5 half-widths off at slot 32 anchors there; the mask then
    covers 32 … slot − 1 and grows with each refresh; every tag back inside its band: released."""
    a = ExcursionAnchors(band_widths=3.0, longest=384, every_steps=16, mid=1)
    est = np.stack([_band(10.0), _band(20.0)])
    for slot in (0, 16):
        assert a.mask_steps(KEY, slot) == 0
        a.update(KEY, slot, np.array([10.5, 19.2]), est, anchored=False)  # within 1 half-width: nothing
    assert a.mask_steps(KEY, 32) == 0 and not a.misses(np.array([12.9, 20.0]), est)
    assert a.misses(np.array([15.0, 20.0]), est)
    a.update(KEY, 32, np.array([15.0, 20.0]), est, anchored=False)
    assert a.start[KEY] == 32 and a.anchored(KEY)
    for slot in (48, 64, 80):
        assert a.mask_steps(KEY, slot) == slot - 32
        a.update(KEY, slot, np.array([12.0, 20.0]), est, anchored=True)  # still 2 half-widths off: held
    assert a.mask_steps(KEY, 96) == 96 - 32
    a.update(KEY, 96, np.array([10.9, 19.1]), est, anchored=True)  # every tag back inside its band
    assert a.mask_steps(KEY, 112) == 0 and not a.anchored(KEY)


def test_a_miss_between_the_release_and_the_threshold_neither_anchors_nor_releases() -> None:
    a = ExcursionAnchors(band_widths=3.0, longest=384, every_steps=1, mid=1)
    est = np.stack([_band(0.0)])
    a.update(KEY, 10, np.array([2.5]), est, anchored=False)
    assert a.mask_steps(KEY, 11) == 0
    a.update(KEY, 11, np.array([-3.5]), est, anchored=False)  # below the median counts as well
    assert a.mask_steps(KEY, 12) == 1
    a.update(KEY, 12, np.array([2.5]), est, anchored=True)
    assert a.mask_steps(KEY, 13) == 2
    a.update(KEY, 13, np.array([np.nan]), np.full((1, 3), np.nan), anchored=True)  # no estimate: no change
    assert a.mask_steps(KEY, 14) == 3


def test_a_release_at_the_threshold_lets_go_as_soon_as_the_miss_is_back_under_it() -> None:
    a = ExcursionAnchors(band_widths=3.0, longest=384, every_steps=1, mid=1, release_band_widths=3.0)
    est = np.stack([_band(0.0)])
    a.update(KEY, 10, np.array([3.5]), est, anchored=False)
    assert a.mask_steps(KEY, 11) == 1
    a.update(KEY, 11, np.array([2.5]), est, anchored=True)
    assert not a.anchored(KEY)
    with pytest.raises(ValueError, match="release_band_widths"):
        ExcursionAnchors(band_widths=2.0, longest=10, every_steps=1, mid=1, release_band_widths=3.0)


def test_an_anchor_is_released_at_the_longest_reach_after_a_gap_and_in_another_history() -> None:
    est = np.stack([_band(0.0)])
    a = ExcursionAnchors(band_widths=3.0, longest=40, every_steps=8, mid=1)
    a.update(KEY, 8, np.array([9.0]), est, anchored=False)  # anchored at 8
    for slot in range(16, 56, 8):
        assert a.mask_steps(KEY, slot) == slot - 8
        a.update(KEY, slot, np.array([9.0]), est, anchored=True)
    assert a.mask_steps(KEY, 56) == 0  # 48 slots would pass the longest reach (40): released
    a.update(KEY, 56, np.array([9.0]), est, anchored=False)  # still off: anchored again, at 56
    assert a.mask_steps(KEY, 64) == 8
    a.update(KEY, 64, np.array([9.0]), est, anchored=True)
    assert a.mask_steps(KEY, 88) == 0  # no refresh for three periods (a gap): released
    a.update(KEY, 88, np.array([9.0]), est, anchored=False)
    assert a.mask_steps(KEY, 20) == 0  # an earlier slot: another recording, a restart


def test_the_setting_is_off_by_default_above_one_and_without_a_coarse_stride() -> None:
    from pydantic import ValidationError

    from sentinelle.settings import ForecastSettings

    assert ForecastSettings().asset_anchor_band_widths == 0.0
    assert ForecastSettings(asset_anchor_band_widths=3.0).asset_anchor_band_widths == 3.0
    for bad in ({"asset_anchor_band_widths": 0.5}, {"asset_anchor_band_widths": 3.0, "asset_mask_recent_steps": 16,
                "asset_context_stride_steps": 4}):  # fmt: skip
        with pytest.raises(ValidationError, match="asset_anchor_band_widths"):
            ForecastSettings(**bad)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_asset_checkpoint(tmp_path_factory.mktemp("anchor"))


def _window(x: np.ndarray, slot: int) -> WindowBatch:
    """The window at ``slot`` of a history ``x`` (tags × slots): the newest 101 slots, ``slot`` the newest."""
    ctx = x[:, slot - 100 : slot + 1]
    g = x.shape[0]
    return WindowBatch(
        ts=float(slot), period_s=1.0, tags=tuple(f"a.{i}" for i in range(g)), assets=("a",) * g,
        values=ctx[:, -1].copy(), contexts=ctx,
    )  # fmt: skip


def _history(step: float = 1e6, end: int = 260, walk: float = 1.0) -> np.ndarray:
    """Three coupled tags (a common random walk of steps ``walk``, noise 0.1); tag 0 steps up by ``step`` at
    slot 150 and stays there until ``end`` (a lasting fault)."""
    rng = np.random.default_rng(0)
    base = np.cumsum(rng.normal(0, walk, 260))
    x = 1000.0 + 50.0 * np.arange(3)[:, None] + base[None, :] + rng.normal(0, 0.1, (3, 260))
    x[0, 150:end] += step
    return x


class Follower(AssetForecaster):
    """A hand-made estimate that follows: each tag's last value it may read in its past, band ± 1 (the failure
    the anchor is for: the asset model's estimate reads the tag's own newest slots)."""

    def forecast(self, contexts, horizon, current=None, tag_mask=None):  # type: ignore[no-untyped-def]
        x = np.asarray(contexts, dtype=np.float64)
        last = np.array([[row[np.isfinite(row)][-1] if np.isfinite(row).any() else np.nan for row in g] for g in x])
        est = last[:, :, None] + np.array([-1.0, 0.0, 1.0])
        return AssetForecast(np.full((*est.shape, horizon), np.nan), est)


def test_an_anchored_estimate_does_not_follow_a_lasting_step_and_lets_go_when_it_ends(checkpoint: Path) -> None:
    """Tag 0 steps by +100 for slots 150 … 169.  The follower's plain estimate has caught up one slot later (no
    residual); anchored, it stays at the level before the step for the whole fault (a residual of 100 on every
    slot), and once the tag is back the anchor is released and the estimate reads the whole context again."""
    x = _history(step=100.0, end=170, walk=0.05)
    anchored = Follower(checkpoint, LEVELS, anchor_band_widths=3.0)
    plain = Follower(checkpoint, LEVELS)
    resid = {}
    for slot in range(140, 180):
        w = _window(x, slot)
        a, p = anchored.estimate_window(w)[0, 1], plain.estimate_window(w)[0, 1]
        resid[slot] = (x[0, slot] - a, x[0, slot] - p)
        if slot < 150 or slot > 170:
            assert a == p
    assert all(abs(resid[s][0] - 100.0) < 10 for s in range(150, 170))  # the fault's whole length
    assert all(abs(resid[s][1]) < 10 for s in range(151, 170))  # plain: only its first slot
    assert anchored._anchors is not None and not anchored._anchors.start


def test_an_anchored_estimate_of_the_model_is_the_fixed_mask_estimate_of_the_same_slots(checkpoint: Path) -> None:
    """The real (small) model: slot 150 misses tag 0 by far; at 151 the estimate is the one blind to slot 150
    (a fixed mask of one slot), not the whole context's."""
    x = _history()
    anchored = AssetForecaster(checkpoint, LEVELS, anchor_band_widths=3.0)
    plain = AssetForecaster(checkpoint, LEVELS)
    for slot in range(140, 151):
        np.testing.assert_allclose(anchored.estimate_window(_window(x, slot)), plain.estimate_window(_window(x, slot)))
    assert anchored._anchors is not None and anchored._anchors.start == {("a", "a.0", "a.1", "a.2"): 150}
    got = anchored.estimate_window(_window(x, 151))
    blind = AssetForecaster(checkpoint, LEVELS, mask_recent_steps=1).estimate_window(_window(x, 151))
    np.testing.assert_allclose(got, blind, rtol=1e-9)
    assert not np.allclose(got, plain.estimate_window(_window(x, 151)))


def test_between_refreshes_an_onset_is_judged_against_the_held_estimate(checkpoint: Path) -> None:
    """R 4, refreshes at 140, 144, 148: the step at 150 misses the estimate held from 148, so 150 is refreshed at
    once (its past, up to 149, is clean) and anchored; the anchored estimates stand between refreshes as any do.
    Judged at refreshes only, the refresh at 152 would read 150 and 151 and (a follower) miss nothing."""
    x = _history(step=100.0, end=170, walk=0.05)
    anchored = Follower(checkpoint, LEVELS, anchor_band_widths=3.0, every_steps=4)
    plain = Follower(checkpoint, LEVELS, every_steps=4)
    resid = {}
    for slot in range(140, 170):
        w = _window(x, slot)
        resid[slot] = (x[0, slot] - anchored.estimate_window(w)[0, 1], x[0, slot] - plain.estimate_window(w)[0, 1])
        if slot == 150:
            assert anchored._anchors is not None and anchored._anchors.start == {("a", "a.0", "a.1", "a.2"): 150}
    assert all(abs(resid[s][0] - 100.0) < 10 for s in range(150, 170))
    assert all(abs(resid[s][1]) < 10 for s in range(152, 170))  # plain: followed at its next refresh


def test_a_coarse_stride_cannot_be_anchored(checkpoint: Path) -> None:
    with pytest.raises(ModelError, match="anchor_band_widths"):
        AssetForecaster(checkpoint, LEVELS, mask_recent_steps=16, context_stride_steps=4, anchor_band_widths=3.0)
