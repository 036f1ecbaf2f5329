"""Per-asset adaptation of the asset model (training/asset_finetune.py) and its use by the asset engine."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from sentinelle.errors import ConfigError, ModelError
from sentinelle.evaluation.datasets import Series
from sentinelle.evaluation.skab_models import AssetModelUse, memo_path
from sentinelle.forecast.asset_engine import AssetForecaster
from sentinelle.forecast.asset_model import SentinelleAssetModel
from sentinelle.settings import FinetuneSettings
from sentinelle.training.asset_finetune import aligned, finetune_asset

from .model_helpers import random_adapter, small_asset_checkpoint

LEVELS = (0.1, 0.5, 0.9)


def history(rows: int = 400, seed: int = 0) -> list[Series]:
    """Three coupled tags on one grid: b = 2a, c = a + b, noisy."""
    rng = np.random.default_rng(seed)
    a = 10.0 + np.cumsum(rng.normal(0, 0.1, rows))
    ts = np.arange(rows, dtype=np.float64)
    cols = (a, 2 * a, 3 * a)
    return [Series(f"p.{n}", "x", c + rng.normal(0, 0.05, rows), ts, 1.0) for n, c in zip("abc", cols, strict=True)]


def settings(steps: int, lr: float = 1e-3) -> FinetuneSettings:
    return FinetuneSettings(
        max_steps=steps, batch_size=4, eval_every_steps=2, patience_evals=50, validation_windows=8, learning_rate=lr
    )


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_asset_checkpoint(tmp_path_factory.mktemp("asset"))


@pytest.fixture(scope="module")
def adapter(base: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("adapters") / "p"
    finetune_asset(base, history(), settings(6, lr=0.05), asset="p", out_dir=out, data_note="synthetic")
    return out


def test_manifest_records_the_validation_before_and_after(adapter: Path) -> None:
    manifest = json.loads((adapter / "manifest.json").read_text())
    assert manifest["kind"] == "asset_model" and manifest["tags"] == ["p.a", "p.b", "p.c"]
    before, after = manifest["validation"]["before"], manifest["validation"]["after"]
    assert set(before["mae"]) == {"p.a", "p.b", "p.c"} and set(after["blind_mae"]) == set(before["mae"])
    assert after["total"] <= before["total"]  # the best weights are kept; step 0 is the base model
    assert [h["step"] for h in manifest["history"]] == [0, 2, 4, 6]
    assert manifest["data"] == {"rows": 400, "validation_from_row": 320, "source": "synthetic"}


def test_the_engine_merges_the_adapter(base: Path, tmp_path: Path) -> None:
    """With an adapter the estimates move; without, they are the base's."""
    adapter = random_adapter(base, tmp_path / "p")
    ctx = np.stack([np.stack([s.values[:64] for s in history(seed=k)]) for k in range(2)])
    now = ctx[:, :, -1] + 0.1
    plain = AssetForecaster(base, LEVELS).forecast(ctx, 1, now).estimate
    again = AssetForecaster(base, LEVELS).forecast(ctx, 1, now).estimate
    adapted = AssetForecaster(base, LEVELS, adapter=adapter).forecast(ctx, 1, now).estimate
    np.testing.assert_array_equal(plain, again)
    assert np.isfinite(adapted).all() and not np.allclose(plain, adapted)


def test_an_adapter_of_another_base_is_refused(adapter: Path, tmp_path: Path) -> None:
    other = SentinelleAssetModel.from_pretrained(small_asset_checkpoint(tmp_path / "other"))
    with torch.no_grad():
        other.now_head.output_layer.bias.add_(1.0)
    other.save_pretrained(tmp_path / "other")
    with pytest.raises(ModelError, match="base model sha256"):
        AssetForecaster(tmp_path / "other", LEVELS, adapter=adapter)


def test_tags_on_different_grids_are_a_config_error() -> None:
    a, b, _ = history()
    shifted = Series("p.b", "x", b.values, b.timestamps + 0.5, 1.0)
    with pytest.raises(ConfigError, match="grid"):
        aligned([a, shifted])


def test_too_short_a_history_is_a_config_error(base: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="too little history"):
        finetune_asset(base, history(rows=20), settings(2), asset="p", out_dir=tmp_path / "x")


@pytest.mark.parametrize("what", ["missing", "empty"])
def test_a_missing_or_empty_base_is_a_model_error_naming_it(what: str, tmp_path: Path) -> None:
    base = tmp_path / "base"
    if what == "empty":
        base.mkdir()
    with pytest.raises(ModelError, match="base"):
        finetune_asset(base, history(), settings(2), asset="p", out_dir=tmp_path / "x")


def test_adapted_estimates_are_kept_apart_from_the_shipped_models(base: Path, tmp_path: Path) -> None:
    """The prefill's memo of an adapted model is its own file (named by the adapter's weights)."""
    adapter = random_adapter(base, tmp_path / "p")
    plain, adapted = memo_path(tmp_path, AssetModelUse(0)), memo_path(tmp_path, AssetModelUse(0, adapter=adapter))
    assert plain != adapted and adapted.name.startswith(plain.stem + "-adapter")
