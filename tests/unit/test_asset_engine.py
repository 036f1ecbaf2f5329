"""The asset forecaster (forecast/asset_engine.py): units, masking, a lone tag, refusing a univariate checkpoint."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from sentinelle.errors import ModelError
from sentinelle.forecast import SHIPPED_CHECKPOINT
from sentinelle.forecast.asset_engine import AssetForecaster
from sentinelle.forecast.asset_model import GroupAttention, SentinelleAssetModel
from sentinelle.forecast.engine import ModelForecaster
from sentinelle.forecast.model import SentinelleTSConfig
from sentinelle.records import WindowBatch

LEVELS = (0.1, 0.5, 0.9)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    config = SentinelleTSConfig(
        context_length=64, patch_length=16, horizon=8, d_model=16, num_layers=2, num_heads=2, d_ff=32,
        vocab_size=256, dropout=0.0, group_attention=True,
    )  # fmt: skip
    model = SentinelleAssetModel(config)
    with torch.no_grad():
        for group in model.group_layers:
            assert isinstance(group, GroupAttention)
            group.o_proj.weight.normal_(0, 0.3)
        for p in model.now_head.parameters():
            p.normal_(0, 0.3)
    path = tmp_path_factory.mktemp("asset")
    model.save_pretrained(path)
    return path


def groups(n: int = 3, g: int = 4, length: int = 100) -> np.ndarray:
    rng = np.random.default_rng(0)
    base = np.cumsum(rng.normal(0, 1, (n, 1, length)), axis=2)
    return 1000.0 + 50.0 * np.arange(g)[None, :, None] + base + rng.normal(0, 0.1, (n, g, length))


def test_answers_are_in_the_tags_units_and_ordered(checkpoint: Path) -> None:
    f = AssetForecaster(checkpoint, LEVELS)
    x = groups()
    out = f.forecast(x, 8, current=x[:, :, -1])
    assert out.quantiles.shape == (3, 4, 3, 8) and out.estimate.shape == (3, 4, 3)
    assert np.isfinite(out.quantiles).all() and np.isfinite(out.estimate).all()
    assert (np.diff(out.estimate, axis=2) >= 0).all()
    # In units: each tag's estimate lies near its own level (tags differ by 50).
    assert np.abs(out.estimate[:, :, 1] - x[:, :, -1]).max() < 40


def test_an_absent_tag_is_nan_and_changes_nothing(checkpoint: Path) -> None:
    f = AssetForecaster(checkpoint, LEVELS)
    x = groups()
    now = x[:, :, -1]
    full = f.forecast(x, 8, current=now)
    x2 = x.copy()
    x2[:, 3] = np.nan
    without = f.forecast(x2, 8, current=now)
    assert np.isnan(without.estimate[:, 3]).all()
    three = f.forecast(x[:, :3], 8, current=now[:, :3])
    np.testing.assert_allclose(without.estimate[:, :3], three.estimate, rtol=1e-6)
    assert not np.allclose(full.estimate[:, :3], three.estimate)


def test_the_shipped_weights_as_an_asset_model_match_the_univariate_forecaster(tmp_path: Path) -> None:
    SentinelleAssetModel.from_pretrained(SHIPPED_CHECKPOINT, group_attention=True).save_pretrained(tmp_path)
    asset = AssetForecaster(tmp_path, LEVELS)
    uni = ModelForecaster(SHIPPED_CHECKPOINT, LEVELS, 16, device="cpu")
    x = groups(2, 1, 300)
    np.testing.assert_allclose(asset.forecast(x, 16).quantiles[:, 0], uni.forecast(x[:, 0]), rtol=1e-6)


def test_a_univariate_checkpoint_and_bad_shapes_are_refused(checkpoint: Path) -> None:
    with pytest.raises(ModelError, match="group_attention"):
        AssetForecaster(SHIPPED_CHECKPOINT, LEVELS)
    f = AssetForecaster(checkpoint, LEVELS)
    with pytest.raises(ModelError, match="shape"):
        f.forecast(np.zeros((2, 10)), 8)
    with pytest.raises(ModelError, match="current"):
        f.forecast(groups(), 8, current=np.zeros((3, 2)))
    with pytest.raises(ModelError, match="forecasts 8 steps"):
        f.forecast(groups(), 9)


def test_a_window_batch_is_estimated_per_asset_and_a_lone_tag_gets_none(checkpoint: Path) -> None:
    f = AssetForecaster(checkpoint, LEVELS)
    x = groups(1, 3, 101)[0]  # three tags of asset "a", 101 slots (the newest is "now")
    lone = x[:1] + 7.0
    contexts = np.concatenate([x, lone])
    window = WindowBatch(
        ts=0.0, period_s=1.0, tags=("a.0", "a.1", "a.2", "b.0"), assets=("a", "a", "a", "b"),
        values=contexts[:, -1].copy(), contexts=contexts,
    )  # fmt: skip
    est = f.estimate_window(window)
    assert est.shape == (4, 3)
    assert np.isfinite(est[:3]).all() and np.isnan(est[3]).all()
    direct = f.forecast(x[None, :, :-1], 1, x[None, :, -1]).estimate[0]
    np.testing.assert_allclose(est[:3], direct, rtol=1e-9)
    # A row's own value now is not an input of its own estimate.
    moved = dataclasses.replace(window, values=window.values + np.array([5.0, 0.0, 0.0, 0.0]))
    np.testing.assert_allclose(f.estimate_window(moved)[0], est[0], rtol=1e-9)
