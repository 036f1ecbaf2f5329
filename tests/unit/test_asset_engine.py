"""The asset forecaster (forecast/asset_engine.py): units, masking, a lone tag, refusing a univariate checkpoint."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from sentinelle.errors import ModelError
from sentinelle.forecast import SHIPPED_CHECKPOINT
from sentinelle.forecast.asset_engine import AssetForecaster
from sentinelle.forecast.asset_model import SentinelleAssetModel
from sentinelle.forecast.engine import ModelForecaster
from sentinelle.forecast.long_season import LongSeason
from sentinelle.records import WindowBatch

from .model_helpers import small_asset_checkpoint

LEVELS = (0.1, 0.5, 0.9)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_asset_checkpoint(tmp_path_factory.mktemp("asset"))


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
    # The network's equivalence: without the univariate forecaster's inference-time mixing (the long-season
    # expert and the smoothing share, forecast_validation.py), which the asset forecaster does not apply.
    uni = ModelForecaster(
        SHIPPED_CHECKPOINT, LEVELS, 16, device="cpu", long_season=LongSeason(weight=0.0), smoothing_share=()
    )
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
    np.testing.assert_allclose(est[:3], direct, rtol=1e-6)  # a pass of other rows: float32 rounds by batch shape
    # A row's own value now is not an input of its own estimate.
    moved = dataclasses.replace(window, values=window.values + np.array([5.0, 0.0, 0.0, 0.0]))
    np.testing.assert_allclose(f.estimate_window(moved)[0], est[0], rtol=1e-9)


def _window(contexts: np.ndarray) -> WindowBatch:
    g = contexts.shape[0]
    return WindowBatch(
        ts=0.0, period_s=1.0, tags=tuple(f"a.{i}" for i in range(g)), assets=("a",) * g,
        values=contexts[:, -1].copy(), contexts=contexts,
    )  # fmt: skip


def test_a_masked_estimate_does_not_read_the_newest_slots_but_reads_the_others_now(checkpoint: Path) -> None:
    x = groups(1, 3, 101)[0]  # 100 slots of past (the fixture's context is 64) and "now"
    blind = AssetForecaster(checkpoint, LEVELS, mask_recent_steps=32)
    full = AssetForecaster(checkpoint, LEVELS)
    ramped = x.copy()
    ramped[0, -33:-1] += np.linspace(0.0, 30.0, 32)  # tag 0's newest 32 slots of past drift away
    est, moved = blind.estimate_window(_window(x)), blind.estimate_window(_window(ramped))
    np.testing.assert_allclose(moved, est, rtol=1e-9)  # the masked slots are not read, by any tag
    assert not np.allclose(full.estimate_window(_window(ramped)), full.estimate_window(_window(x)))
    other = x.copy()
    other[1, -1] += 20.0  # another tag's value now moves: tag 0's estimate (from the others) moves
    assert not np.allclose(blind.estimate_window(_window(other))[0], est[0])
    assert np.isfinite(est).all()


def test_a_mask_must_leave_a_quarter_of_the_context(checkpoint: Path) -> None:
    assert AssetForecaster(checkpoint, LEVELS, mask_recent_steps=48).mask_recent_steps == 48
    for bad in (49, -1):
        with pytest.raises(ModelError, match="mask_recent_steps"):
            AssetForecaster(checkpoint, LEVELS, mask_recent_steps=bad)


def test_the_shipped_asset_model_masked_does_not_follow_a_drifting_sensor() -> None:
    """The package's checkpoint on a coupled asset (y = a + b + noise of σ 0.02) whose y transmitter
    drifts by 1.0 over its newest 200 slots: the full-context estimate follows the drift (the residual
    changes little), the estimate blind to the newest 256 slots does not (the drift stays in the residual)."""
    from sentinelle.evaluation.chiller_report import asset_checkpoint

    rng = np.random.default_rng(3)
    n = 513
    a = 20.0 + np.cumsum(rng.normal(0, 0.05, n))
    b = 10.0 + np.cumsum(rng.normal(0, 0.05, n))
    y = a + b + rng.normal(0, 0.02, n)
    drifted = y + np.concatenate([np.zeros(n - 200), np.linspace(0.0, 1.0, 200)])

    def residual(mask: int, tag: np.ndarray) -> float:
        contexts = np.stack([a, b, tag])
        est = AssetForecaster(asset_checkpoint(), LEVELS, mask_recent_steps=mask).estimate_window(_window(contexts))
        return float(contexts[2, -1] - est[2, 1])

    assert residual(256, drifted) - residual(256, y) > 0.8
    assert abs(residual(0, drifted) - residual(0, y)) < 0.3


def _slide(x: np.ndarray, ts: float) -> WindowBatch:
    w = _window(x)
    return dataclasses.replace(w, ts=ts)


def test_every_steps_holds_an_estimate_within_its_history_only(checkpoint: Path) -> None:
    """R = 4: slots 0..3 of one history share slot 0's estimate, slot 4 is new; another history at slot 1
    (a restart, another recording) is estimated afresh."""
    x = groups(1, 3, 110)[0]
    every = AssetForecaster(checkpoint, LEVELS, every_steps=4)
    plain = AssetForecaster(checkpoint, LEVELS)
    got = [every.estimate_window(_slide(x[:, : 101 + k], float(k))) for k in range(6)]
    want = [plain.estimate_window(_slide(x[:, : 101 + k], float(k))) for k in range(6)]
    for k in range(4):
        np.testing.assert_allclose(got[k], want[0], rtol=1e-9)
    np.testing.assert_allclose(got[4], want[4], rtol=1e-9)
    assert not np.allclose(want[4], want[0])
    elsewhere = x[:, :102] + 3.0
    np.testing.assert_allclose(
        every.estimate_window(_slide(elsewhere, 1.0)), plain.estimate_window(_slide(elsewhere, 1.0)), rtol=1e-9
    )
    with pytest.raises(ModelError, match="every_steps"):
        AssetForecaster(checkpoint, LEVELS, every_steps=0)


def test_threads_set_torchs_threads_for_the_process(checkpoint: Path) -> None:
    """``forecast.model_threads`` reaches torch through the asset model too: beside Holt nothing else sets it."""
    before = torch.get_num_threads()
    want = 2 if before == 1 else 1
    try:
        AssetForecaster(checkpoint, LEVELS, threads=want)
        assert torch.get_num_threads() == want
    finally:
        torch.set_num_threads(before)
    with pytest.raises(ModelError, match="threads"):
        AssetForecaster(checkpoint, LEVELS, threads=0)


def pass_sizes(f: AssetForecaster) -> list[int]:
    """Groups in each forward pass ``f``'s model is given from now on."""
    calls: list[int] = []
    forward = f.model.forward

    def counted(input_ids: torch.Tensor, **kwargs: Any) -> Any:
        calls.append(input_ids.shape[0])
        return forward(input_ids, **kwargs)

    f.model.forward = counted  # type: ignore[method-assign,assignment]
    return calls


def test_passes_of_any_size_on_the_cpu_give_the_same_answers(checkpoint: Path) -> None:
    x = groups(n=5)
    now = x[:, :, -1]
    one_pass = AssetForecaster(checkpoint, LEVELS, max_batch=16, cpu_rows_per_pass=0).forecast(x, 8, current=now)
    small = AssetForecaster(checkpoint, LEVELS, max_batch=16, cpu_rows_per_pass=8)  # 2 groups of 4 tags a pass
    calls = pass_sizes(small)
    passes = small.forecast(x, 8, current=now)
    assert calls == [2, 2, 1]
    np.testing.assert_allclose(passes.estimate, one_pass.estimate, rtol=1e-6)
    np.testing.assert_allclose(passes.quantiles, one_pass.quantiles, rtol=1e-6)
    with pytest.raises(ModelError, match="cpu_rows_per_pass"):
        AssetForecaster(checkpoint, LEVELS, cpu_rows_per_pass=-1)


@pytest.mark.parametrize(("threads", "expected"), [(1, [32, 8]), (2, [32, 8])])
def test_by_default_small_passes_on_any_number_of_threads(checkpoint: Path, threads: int, expected: list[int]) -> None:
    f = AssetForecaster(checkpoint, LEVELS)  # max_batch 128 groups
    calls = pass_sizes(f)
    x = groups(n=40, length=64)  # 160 rows of 4 tags: 128 rows are 32 groups
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        f.forecast(x, 1, current=x[:, :, -1])
    finally:
        torch.set_num_threads(before)
    assert calls == expected


def test_assets_of_different_sizes_are_padded_to_a_power_of_two_not_to_the_widest(checkpoint: Path) -> None:
    f = AssetForecaster(checkpoint, LEVELS)
    sizes = {"a": 2, "b": 3, "c": 8, "d": 4}
    x = np.concatenate([groups(1, g, 101)[0] + 10.0 * k for k, g in enumerate(sizes.values())])
    assets = tuple(a for a, g in sizes.items() for _ in range(g))
    window = WindowBatch(
        ts=0.0, period_s=1.0, tags=tuple(f"{a}.{i}" for i, a in enumerate(assets)), assets=assets,
        values=x[:, -1].copy(), contexts=x,
    )  # fmt: skip
    calls = pass_sizes(f)
    widths: list[int] = []
    forecast = f.forecast

    def recorded(contexts: np.ndarray, horizon: int, current: np.ndarray | None = None) -> Any:
        widths.append(contexts.shape[1])
        return forecast(contexts, horizon, current)

    f.forecast = recorded  # type: ignore[method-assign,assignment]
    est = f.estimate_window(window)
    assert sorted(widths) == [2, 4, 8] and sum(calls) == 4  # b and d share the width 4; no pass padded to 8
    start = 0
    for g in sizes.values():  # each asset as if alone in its window
        rows = slice(start, start + g)
        alone = forecast(x[None, rows, :-1], 1, x[None, rows, -1]).estimate[0]
        np.testing.assert_allclose(est[rows], alone, rtol=1e-6)
        start += g


def _coarse_window(fine: np.ndarray, coarse: np.ndarray, stride: int) -> WindowBatch:
    return dataclasses.replace(_window(fine), coarse_contexts=coarse, coarse_stride_steps=stride)


def test_a_coarse_estimate_reads_the_coarse_context_masked_and_the_others_now_only(checkpoint: Path) -> None:
    """Stride 4, mask 16: the estimate is the one a stride-1 model gives on a context made of those means
    (the spacing is no part of it); the fine context, and the newest 16 means, are not read; older means are."""
    coarse = groups(1, 3, 64)[0]
    fine = groups(1, 3, 101)[0] + 7.0
    fine[:, -1] = coarse[:, -1] + 0.5  # the values now
    f = AssetForecaster(checkpoint, LEVELS, mask_recent_steps=16, context_stride_steps=4)
    est = f.estimate_window(_coarse_window(fine, coarse, 4))
    assert np.isfinite(est).all()
    as_fine = np.concatenate([coarse, fine[:, -1:]], axis=1)  # past = the means, then now
    plain = AssetForecaster(checkpoint, LEVELS, mask_recent_steps=16)
    np.testing.assert_allclose(est, plain.estimate_window(_window(as_fine)), rtol=1e-9)
    other_fine = fine.copy()
    other_fine[:, :-1] += np.linspace(0.0, 40.0, 100)  # the fine past is not read
    np.testing.assert_allclose(f.estimate_window(_coarse_window(other_fine, coarse, 4)), est, rtol=1e-9)
    newest = coarse.copy()
    newest[0, -16:] += 30.0  # the masked means are not read
    np.testing.assert_allclose(f.estimate_window(_coarse_window(fine, newest, 4)), est, rtol=1e-9)
    older = coarse.copy()
    older[:, -40:-16] += np.linspace(0.0, 30.0, 24)  # the means it reads are
    assert not np.allclose(f.estimate_window(_coarse_window(fine, older, 4)), est)


def test_a_coarse_estimate_needs_the_windows_coarse_contexts_of_its_stride_and_a_mask(checkpoint: Path) -> None:
    x = groups(1, 3, 101)[0]
    f = AssetForecaster(checkpoint, LEVELS, mask_recent_steps=16, context_stride_steps=4)
    with pytest.raises(ModelError, match="means of 4 slots, the windows keep none"):
        f.estimate_window(_window(x))
    with pytest.raises(ModelError, match="the windows keep means of 2"):
        f.estimate_window(_coarse_window(x, x[:, -64:], 2))
    with pytest.raises(ModelError, match="context_stride_steps"):
        AssetForecaster(checkpoint, LEVELS, context_stride_steps=4)  # no mask: the newest mean holds now


def test_a_masked_tag_with_few_values_is_left_out_of_its_assets_estimate(checkpoint: Path) -> None:
    """Tag 0 has 20 values left in its masked context (< MIN_SEEN_SLOTS 32): its estimate is NaN and the
    others' are those of an asset without it; with 40 it is estimated."""
    x = groups(1, 3, 101)[0]
    f = AssetForecaster(checkpoint, LEVELS, mask_recent_steps=16)
    short = x.copy()
    short[0, :-37] = np.nan  # 36 slots of past, 16 masked: 20 seen
    est = f.estimate_window(_window(short))
    assert np.isnan(est[0]).all() and np.isfinite(est[1:]).all()
    absent = x.copy()
    absent[0] = np.nan
    np.testing.assert_allclose(est[1:], f.estimate_window(_window(absent))[1:], rtol=1e-9)
    enough = x.copy()
    enough[0, :-57] = np.nan  # 40 seen
    assert np.isfinite(f.estimate_window(_window(enough))).all()


def test_a_coarse_stride_needs_a_mask_in_the_settings_too() -> None:
    from pydantic import ValidationError

    from sentinelle.settings import ForecastSettings

    assert ForecastSettings(asset_mask_recent_steps=128, asset_context_stride_steps=4).asset_context_stride_steps == 4
    with pytest.raises(ValidationError, match="asset_mask_recent_steps > 0"):
        ForecastSettings(asset_context_stride_steps=4)
