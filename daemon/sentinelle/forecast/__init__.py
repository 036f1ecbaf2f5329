"""Forecasting: windows in, quantile forecasts out.

Every forecaster implements :class:`~sentinelle.forecast.base.Forecaster`;
:class:`~sentinelle.forecast.batcher.ForecastBatcher` groups windows of many tags
into batches and runs the forecaster off the event loop.  Torch, when a model
forecaster is used, is imported only inside this package, and only then
(:mod:`.tokenizer` is numpy; :mod:`.model` and :mod:`.engine` import torch).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path

from ..metrics import Metrics
from ..settings import ForecastSettings
from .base import Forecaster
from .baselines import HoltForecaster, NaiveForecaster

__all__ = [
    "SHIPPED_ASSET_CHECKPOINT",
    "SHIPPED_CHECKPOINT",
    "Forecaster",
    "HoltForecaster",
    "NaiveForecaster",
    "make_fallback",
    "make_forecaster",
]

SHIPPED_CHECKPOINT = Path(__file__).resolve().parent / "checkpoints" / "starter"
"""The model checkpoint shipped in the package, used when ``model_path`` is not set."""

SHIPPED_ASSET_CHECKPOINT = SHIPPED_CHECKPOINT.parent / "asset"
"""The asset model's checkpoint shipped in the package (off unless ``asset_model_path`` names it; the demo's)."""


def make_forecaster(
    settings: ForecastSettings,
    metrics: Metrics | None = None,
    asset_tags: Mapping[str, Collection[str]] | None = None,
) -> Forecaster:
    """The forecaster named in the settings.

    The model forecaster raises :class:`~sentinelle.errors.ModelError` (naming the
    file) when its checkpoint cannot be loaded; a per-asset adapter that cannot be
    loaded only costs its asset the adaptation (logged, and counted in ``metrics``).
    """
    levels, horizon = settings.quantile_levels, settings.horizon_steps
    if settings.forecaster == "model":
        from .engine import ModelForecaster  # torch and transformers only when the model is selected
        from .long_season import LongSeason
        from .stat_experts import StatExpert

        return ModelForecaster(
            settings.model_path or SHIPPED_CHECKPOINT,
            levels,
            horizon,
            device=settings.model_device,
            max_batch=settings.model_max_batch,
            threads=settings.model_threads,
            adapters_dir=settings.adapters_dir,
            adapter_min_context_steps=settings.adapter_min_context_steps,
            asset_tags=asset_tags,
            metrics=metrics,
            long_season=LongSeason(
                weight=settings.model_long_season_weight, level_steps=settings.model_long_season_level_steps
            ),
            smoothing_share=settings.model_smoothing_share,
            stat_expert=StatExpert(kind=settings.model_stat_expert, weight=settings.model_stat_expert_weight),
            band_floor_holt=settings.model_band_floor_holt,
            holt=_holt(settings),
        )
    if settings.forecaster == "holt":
        return _holt(settings)
    if settings.forecaster == "seasonal_naive":
        return NaiveForecaster(levels, horizon, settings.season_steps)
    return NaiveForecaster(levels, horizon)


def make_fallback(settings: ForecastSettings) -> Forecaster | None:
    """The baseline used when the configured forecaster fails (None if it is already the simplest).

    The model falls back to damped Holt, the best of the baselines; the
    baselines fall back to the last value.
    """
    if settings.forecaster == "model":
        return _holt(settings)
    if settings.forecaster == "naive":
        return None
    return NaiveForecaster(settings.quantile_levels, settings.horizon_steps)


def _holt(settings: ForecastSettings) -> HoltForecaster:
    return HoltForecaster(
        settings.quantile_levels,
        settings.horizon_steps,
        settings.holt_alpha,
        settings.holt_beta,
        settings.holt_damping,
    )
