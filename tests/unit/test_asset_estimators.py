"""The daemon's per-asset asset-model adapters (forecast/asset_estimators.py)."""

from __future__ import annotations

import logging
from collections.abc import Collection
from pathlib import Path

import numpy as np
import pytest

from sentinelle.config_summary import summary_lines
from sentinelle.forecast.asset_engine import AssetForecaster
from sentinelle.forecast.asset_estimators import AssetEstimators, ForecasterFactory, load_asset_estimators, rows_of
from sentinelle.records import WindowBatch
from sentinelle.settings import ForecastSettings, Settings, TagSettings

from .model_helpers import random_adapter, small_asset_checkpoint
from .test_asset_finetune import LEVELS, history

ASSET_TAGS = {"p": ["p.a", "p.b", "p.c"], "q": ["q.a", "q.b", "q.c"]}


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_asset_checkpoint(tmp_path_factory.mktemp("asset"))


def factory(base: Path) -> tuple[list[Path | None], ForecasterFactory]:
    made: list[Path | None] = []

    def make(adapter: Path | None, tags: Collection[str] | None) -> AssetForecaster:
        made.append(adapter)
        return AssetForecaster(base, LEVELS, adapter=adapter, adapter_tags=tags)

    return made, make


def window() -> WindowBatch:
    """Assets p and q with the same data (so only their models can tell their estimates apart), interleaved."""
    series = history(rows=65)
    ctx = np.stack([s.values for s in series])
    order = [0, 3, 1, 4, 2, 5]  # p.a, q.a, p.b, q.b, p.c, q.c
    contexts = np.concatenate([ctx, ctx])[order]
    tags = tuple((ASSET_TAGS["p"] + ASSET_TAGS["q"])[i] for i in order)
    held = np.array([False, True, False, False, True, False])
    return WindowBatch(
        ts=64.0,
        period_s=1.0,
        tags=tags,
        assets=tuple(t[0] for t in tags),
        values=contexts[:, -1] + 0.2,
        contexts=contexts,
        held=held,
    )


def test_each_asset_is_estimated_by_its_own_model(base: Path, tmp_path: Path) -> None:
    random_adapter(base, tmp_path / "adapters" / "p")
    made, make = factory(base)
    models = load_asset_estimators(make, tmp_path / "adapters", ASSET_TAGS)
    assert set(models.adapted) == {"p"} and made == [None, tmp_path / "adapters" / "p"]
    w = window()
    got = models.estimate_window(w)
    p_rows, q_rows = [0, 2, 4], [1, 3, 5]
    alone = AssetForecaster(base, LEVELS, adapter=tmp_path / "adapters" / "p").estimate_window(rows_of(w, p_rows))
    plain = AssetForecaster(base, LEVELS).estimate_window(w)
    # Same model, same rows, passes of other sizes: float32 kernels may round by batch shape (AVX-512 did).
    np.testing.assert_allclose(got[p_rows], alone, rtol=1e-6)
    np.testing.assert_allclose(got[q_rows], plain[q_rows], rtol=1e-6)
    assert np.isfinite(got).all() and not np.allclose(got[p_rows], got[q_rows])  # same data, other model


def test_without_adapters_the_base_answers_every_row(base: Path) -> None:
    w = window()
    np.testing.assert_array_equal(
        AssetEstimators(AssetForecaster(base, LEVELS)).estimate_window(w),
        AssetForecaster(base, LEVELS).estimate_window(w),
    )


def test_an_adapter_of_other_tags_is_refused_and_its_asset_uses_the_base(
    base: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An adapter trained on p's tags in q's folder (a copy to the wrong place) is refused, naming both sides."""
    random_adapter(base, tmp_path / "adapters" / "q")  # its manifest says p.a, p.b, p.c
    random_adapter(base, tmp_path / "adapters" / "gone")  # no such asset configured
    random_adapter(base, tmp_path / "adapters" / "p.tmp")  # a save in progress
    refused: list[str] = []
    _, make = factory(base)
    with caplog.at_level(logging.WARNING, logger="sentinelle.forecast.asset_estimators"):
        models = load_asset_estimators(
            make,
            tmp_path / "adapters",
            ASSET_TAGS,
            on_refused=lambda asset, why: refused.append(asset),
        )
    assert models.adapted == {} and refused == ["q"]
    why = models.refused["q"]
    assert "['p.a', 'p.b', 'p.c']" in why and "['q.a', 'q.b', 'q.c']" in why
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "asset-model adapter of asset 'q' refused" in errors[0].getMessage()
    assert any("no configured asset 'gone'" in r.getMessage() for r in caplog.records)


def test_a_missing_folder_leaves_every_asset_on_the_base(base: Path, tmp_path: Path) -> None:
    _, make = factory(base)
    models = load_asset_estimators(make, tmp_path / "nowhere", ASSET_TAGS)
    assert models.adapted == {} and models.refused == {}


def test_rows_of_keeps_every_per_row_field_in_order() -> None:
    w = window()
    part = rows_of(w, [4, 1])
    assert part.tags == ("p.c", "q.a") and part.assets == ("p", "q")
    assert part.held is not None and part.held.tolist() == [True, True]
    np.testing.assert_array_equal(part.contexts, w.contexts[[4, 1]])
    assert part.source_down is None and part.ts == w.ts


def test_check_config_lists_the_asset_model_and_its_adapters(base: Path, tmp_path: Path) -> None:
    random_adapter(base, tmp_path / "adapters" / "p")
    tags = tuple(TagSettings(name=t, asset=a, node_id=f"ns=2;s={t}") for a, ts in ASSET_TAGS.items() for t in ts)
    fc = ForecastSettings(asset_model_path=base, asset_model_adapters_dir=tmp_path / "adapters")
    lines = summary_lines(Settings(tags=tags, forecast=fc))
    assert f"asset model: {base}" in lines
    assert f"asset-model adapters: {tmp_path / 'adapters'}" in lines
    assert "  p: 3 tags (p.a, p.b, p.c)" in lines
    assert "asset model: off" in summary_lines(Settings())
