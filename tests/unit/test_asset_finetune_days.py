"""The asset model fine-tuned on whole stretches (training/asset_finetune_days.py) and its adapter merged at load."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sentinelle.errors import ConfigError
from sentinelle.forecast.asset_engine import AssetForecaster
from sentinelle.settings import FinetuneSettings
from sentinelle.training.asset_finetune_days import AssetStretch, finetune_asset_days, windows

from .model_helpers import small_asset_checkpoint

TAGS = ("flow", "power", "temp")


def coupled(seed: int, steps: int = 160) -> AssetStretch:
    """A random-walk flow, power = 3·flow, temperature = 20 − flow: each tag known from the others now."""
    rng = np.random.default_rng(seed)
    flow = 50.0 + np.cumsum(rng.normal(0, 1, steps))
    values = np.stack([flow, 3.0 * flow, 20.0 - flow], axis=1) + rng.normal(0, 0.05, (steps, 3))
    return AssetStretch(f"day{seed}", TAGS, values)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_asset_checkpoint(tmp_path_factory.mktemp("asset"))


@pytest.fixture(scope="module")
def adapted(base: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("adapter") / "plant"
    settings = FinetuneSettings(
        batch_size=8, max_steps=30, eval_every_steps=10, validation_windows=24, learning_rate=1e-2, threads=1
    )
    manifest = finetune_asset_days(base, [coupled(1), coupled(2)], [coupled(3)], settings, asset="plant", out_dir=out)
    return out, manifest


def test_windows_stay_inside_their_stretch() -> None:
    s = AssetStretch("d", ("a", "b"), np.arange(20.0).reshape(10, 2))
    b = windows(s, [0, 9], context=4, horizon=3)
    assert np.isnan(b.context[0]).all()  # nothing before the stretch's first slot
    assert b.future[0, 0].tolist() == [0.0, 2.0, 4.0]
    assert b.context[1, 1].tolist() == [11.0, 13.0, 15.0, 17.0]
    assert b.future[1, 1, 0] == 19.0 and np.isnan(b.future[1, 1, 1:]).all()  # nothing after its last
    assert b.tag_mask.tolist() == [[False, False], [True, True]]


def test_the_manifest_records_the_estimate_before_and_after_on_the_validation_stretch(
    adapted: tuple[Path, dict[str, Any]],
) -> None:
    out, m = adapted
    assert (out / "adapter_model.safetensors").is_file() and (out / "manifest.json").is_file()
    assert m["data"] == {"train": ["day1", "day2"], "validation": ["day3"]}
    assert m["tags"] == list(TAGS)
    v = m["validation"]
    assert v["windows"] > 0 and v["persistence_mae"] > 0
    for key in ("estimate_pinball", "estimate_mae", "forecast_pinball"):
        assert np.isfinite(v["before"][key]) and np.isfinite(v["after"][key])
    assert len(v["after"]["estimate_mae_per_tag"]) == len(TAGS)
    assert v["improved"] == (m["training"]["best_step"] > 0)
    assert v["after"]["estimate_pinball"] <= v["before"]["estimate_pinball"]
    # An untrained base on a plain linear coupling: thirty steps must find something.
    assert v["improved"]
    assert m["history"][0]["step"] == 0  # the base model's score comes first


def test_the_merged_adapter_gives_the_estimates_the_manifest_scored(
    base: Path, adapted: tuple[Path, dict[str, Any]]
) -> None:
    out, m = adapted
    val = coupled(3)
    origins = np.unique(np.linspace(32, 159, 24).astype(int)).tolist()  # the fine-tune's validation origins
    b = windows(val, origins, context=63, horizon=1)
    now = b.future[:, :, 0]

    def mae(f: AssetForecaster) -> float:
        est = f.forecast(b.context, 1, now).estimate[:, :, 1]
        return float(np.mean(np.abs(est - now)))

    plain = mae(AssetForecaster(base, (0.1, 0.5, 0.9)))
    merged = mae(AssetForecaster(base, (0.1, 0.5, 0.9), adapter=out))
    assert merged < plain
    assert plain == pytest.approx(m["validation"]["before"]["estimate_mae"], rel=1e-3)
    assert merged == pytest.approx(m["validation"]["after"]["estimate_mae"], rel=1e-3)


def test_nothing_to_validate_on_or_mismatched_tags_are_refused(base: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="validation"):
        finetune_asset_days(base, [coupled(1)], [], FinetuneSettings(), asset="p", out_dir=tmp_path / "a")
    narrow = AssetStretch("n", ("a", "b"), np.zeros((50, 2)))
    with pytest.raises(ConfigError, match="numbers of tags"):
        finetune_asset_days(base, [coupled(1)], [narrow], FinetuneSettings(), asset="p", out_dir=tmp_path / "a")
