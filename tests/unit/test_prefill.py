"""The asset model's estimates computed in batches before a replay (evaluation/prefill.py) and SKAB's issue-14 rows."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from sentinelle.evaluation.prefill import PrefilledAssetForecaster
from sentinelle.evaluation.replay import Recording, replay, replay_settings
from sentinelle.evaluation.skab import ASSET_ON, ablation_runs
from sentinelle.evaluation.skab_models import MODEL_REFRESH_STEPS, AssetModelUse
from sentinelle.forecast.asset_engine import MIN_SEEN_SLOTS, AssetForecaster
from sentinelle.records import FloatArray, WindowBatch
from sentinelle.settings import DetectSettings

from .model_helpers import small_asset_checkpoint

LEVELS = (0.1, 0.5, 0.9)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_asset_checkpoint(tmp_path_factory.mktemp("asset"))


def recording(rows: int = 90) -> Recording:
    """Three coupled tags (b = 2a, c = a + b) with noise; a step of a at row 60."""
    rng = np.random.default_rng(3)
    a = 10.0 + np.cumsum(rng.normal(0, 0.1, rows))
    a[60:] += 2.0
    values = np.stack([a, 2 * a, 3 * a], axis=1) + rng.normal(0, 0.05, (rows, 3))
    return Recording(
        name="r", asset="p", tags=("p.a", "p.b", "p.c"), units=("", "", ""),
        timestamps=np.arange(rows, dtype=np.float64), values=values, present=np.ones(rows, bool), train_rows=40,
    )  # fmt: skip


def answers(est: Callable[[WindowBatch], FloatArray], rec: Recording) -> list[FloatArray]:
    """Every estimate ``est`` gives in a replay of ``rec`` (horizon residual and estimate scored)."""
    out: list[FloatArray] = []

    def keep(w: WindowBatch) -> FloatArray:
        out.append(est(w).copy())
        return out[-1]

    replay(rec, replay_settings("holt", DetectSettings(horizon_enabled=True)), None, keep)
    return out


@pytest.mark.parametrize(("mask", "every"), [(0, 1), (16, 4)])
def test_prefilled_estimates_are_the_models_and_none_is_computed_during_the_replay(
    checkpoint: Path, mask: int, every: int
) -> None:
    rec = recording()
    want = answers(AssetForecaster(checkpoint, LEVELS, mask_recent_steps=mask, every_steps=every).estimate_window, rec)
    est = PrefilledAssetForecaster(checkpoint, LEVELS, mask_recent_steps=mask, every_steps=every)
    with est.dry_run():
        dry = answers(est.estimate_window, rec)
    assert not est.memo and all(np.isnan(d).all() for d in dry)  # the model did not run
    computed = est.fill()
    assert computed == len(est.memo) > 0
    if every > 1:
        assert computed <= len(want) // every + 2  # one pass per refresh, not per slot
    got = answers(est.estimate_window, rec)
    assert est.computed_on_the_spot == 0
    assert len(got) == len(want)
    finite = sum(bool(np.isfinite(w).any()) for w in want)
    usable = len(want) - (mask + MIN_SEEN_SLOTS if mask else 0)  # a masked estimate needs 32 values seen
    assert finite > usable // 2
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-9)


def test_without_a_dry_run_estimates_are_computed_on_the_spot_and_a_saved_memo_is_reused(
    checkpoint: Path, tmp_path: Path
) -> None:
    rec = recording()
    est = PrefilledAssetForecaster(checkpoint, LEVELS)
    first = answers(est.estimate_window, rec)
    assert est.computed_on_the_spot == len(est.memo) > 0
    est.save(tmp_path / "memo.pkl")
    again = PrefilledAssetForecaster(checkpoint, LEVELS)
    assert again.load(tmp_path / "memo.pkl") == len(est.memo)
    assert again.load(tmp_path / "absent.pkl") == 0
    second = answers(again.estimate_window, rec)
    assert again.computed_on_the_spot == 0
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)


def test_the_skab_report_holds_issue_14s_rows() -> None:
    runs = ablation_runs("holt")
    model = [r for r in runs if r.forecaster == "model"]
    assert [r.refresh_every_steps for r in model] == [MODEL_REFRESH_STEPS]
    # Holt at the model's cadence beside it, in the same run.
    assert any(r.forecaster == "holt" and r.refresh_every_steps == MODEL_REFRESH_STEPS and not r.detect for r in runs)
    uses = [r.asset_model for r in runs if r.asset_model is not None]
    assert AssetModelUse(0) in uses and any(u.mask_recent_steps > 0 for u in uses)
    with_rest = [r for r in runs if r.asset_model is not None and r.detect.get("asset_enabled")]
    assert len(with_rest) == 1 and all(with_rest[0].detect[k] == v for k, v in ASSET_ON.items())
    settings = replay_settings("holt", refresh_every_steps=MODEL_REFRESH_STEPS)
    assert settings.forecast.refresh_every_steps == MODEL_REFRESH_STEPS
