"""Tags hidden together (``forecast.asset_mask_groups``, forecast/asset_engine.py) on hand-made windows."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from sentinelle.errors import ModelError
from sentinelle.forecast.asset_engine import AssetForecaster
from sentinelle.records import WindowBatch
from sentinelle.settings.forecast import ForecastSettings

from .model_helpers import small_asset_checkpoint

LEVELS = (0.1, 0.5, 0.9)
MASK = 16
GROUP = (("a.1", "a.2"),)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_asset_checkpoint(tmp_path_factory.mktemp("asset"))


def _window(contexts: np.ndarray, asset: str = "a", ts: float = 0.0) -> WindowBatch:
    g = contexts.shape[0]
    return WindowBatch(
        ts=ts, period_s=1.0, tags=tuple(f"{asset}.{i}" for i in range(g)), assets=(asset,) * g,
        values=contexts[:, -1].copy(), contexts=contexts,
    )  # fmt: skip


def _tags(n: int = 4, length: int = 101, seed: int = 0) -> np.ndarray:
    """n coupled tags (a shared random walk, offsets, noise); the newest slot is "now"."""
    rng = np.random.default_rng(seed)
    base = np.cumsum(rng.normal(0, 1, (1, length)), axis=1)
    return 100.0 + 10.0 * np.arange(n)[:, None] + base + rng.normal(0, 0.1, (n, length))


def _moved(w: WindowBatch, row: int, by: float) -> WindowBatch:
    values = w.values.copy()
    values[row] += by
    contexts = w.contexts.copy()
    contexts[row, -1] += by
    return dataclasses.replace(w, values=values, contexts=contexts)


def test_off_the_estimates_are_those_of_one_pass_as_before(checkpoint: Path) -> None:
    x = _tags()
    w = _window(x)
    plain = AssetForecaster(checkpoint, LEVELS, mask_recent_steps=MASK).estimate_window(w)
    past = x[None, :, :-1].copy()
    past[..., -MASK:] = np.nan
    direct = AssetForecaster(checkpoint, LEVELS).forecast(past, 1, x[None, :, -1]).estimate[0]
    assert np.array_equal(plain, direct)  # one pass of the same rows: bit for bit
    elsewhere = AssetForecaster(checkpoint, LEVELS, mask_recent_steps=MASK, mask_groups=[["b.1", "b.2"]])
    assert np.array_equal(elsewhere.estimate_window(w), plain)  # a group of another asset's tags: no change


def test_a_groups_rows_do_not_read_each_others_values_now(checkpoint: Path) -> None:
    w = _window(_tags())
    grouped = AssetForecaster(checkpoint, LEVELS, mask_recent_steps=MASK, mask_groups=GROUP)
    plain = AssetForecaster(checkpoint, LEVELS, mask_recent_steps=MASK)
    est, ref = grouped.estimate_window(w), plain.estimate_window(w)
    assert np.isfinite(est).all()
    moved2 = grouped.estimate_window(_moved(w, 2, 8.0))
    assert np.array_equal(moved2[1], est[1])  # a.1 does not read a.2 now
    assert not np.allclose(plain.estimate_window(_moved(w, 2, 8.0))[1], ref[1])  # without the group it does
    assert np.array_equal(grouped.estimate_window(_moved(w, 1, 8.0))[2], est[2])  # nor a.2 a.1
    assert not np.allclose(grouped.estimate_window(_moved(w, 0, 8.0))[1], est[1])  # but the others, yes
    # The other rows are the plain estimates, and still read the group's values now.
    assert np.array_equal(est[[0, 3]], ref[[0, 3]])
    assert not np.allclose(moved2[0], est[0])
    # The group's rows: the asset estimated with the group's values now unknown.
    x = w.contexts
    past = x[None, :, :-1].copy()
    past[..., -MASK:] = np.nan
    now = x[None, :, -1].copy()
    now[0, [1, 2]] = np.nan
    alone = AssetForecaster(checkpoint, LEVELS).forecast(past, 1, now).estimate[0]
    np.testing.assert_allclose(est[[1, 2]], alone[[1, 2]], rtol=1e-9)


def test_a_group_with_nobody_else_known_now_gets_no_estimate(checkpoint: Path) -> None:
    w = _window(_tags(3))
    values = w.values.copy()
    values[0] = np.nan  # a.0, the only tag outside the group, unknown now
    est = AssetForecaster(checkpoint, LEVELS, mask_recent_steps=MASK, mask_groups=GROUP).estimate_window(
        dataclasses.replace(w, values=values)
    )
    assert np.isnan(est[[1, 2]]).all()


def test_held_estimates_keep_the_groups_answers(checkpoint: Path) -> None:
    x = _tags(4, 110)
    every = AssetForecaster(checkpoint, LEVELS, mask_recent_steps=MASK, every_steps=4, mask_groups=GROUP)
    each = AssetForecaster(checkpoint, LEVELS, mask_recent_steps=MASK, mask_groups=GROUP)
    first = each.estimate_window(_window(x[:, :101]))
    for k in range(4):
        np.testing.assert_allclose(every.estimate_window(_window(x[:, : 101 + k], ts=float(k))), first, rtol=1e-9)


def test_bad_groups_are_refused(checkpoint: Path) -> None:
    with pytest.raises(ModelError, match="mask_recent_steps"):
        AssetForecaster(checkpoint, LEVELS, mask_groups=GROUP)
    with pytest.raises(ModelError, match="two tags"):
        AssetForecaster(checkpoint, LEVELS, mask_recent_steps=MASK, mask_groups=[["a.1"]])
    with pytest.raises(ModelError, match="two of"):
        AssetForecaster(checkpoint, LEVELS, mask_recent_steps=MASK, mask_groups=[["a.1", "a.2"], ["a.2", "a.3"]])
    with pytest.raises(ValidationError, match="asset_mask_recent_steps"):
        ForecastSettings(asset_mask_groups=[["a.1", "a.2"]])
    assert ForecastSettings().asset_mask_groups == []
