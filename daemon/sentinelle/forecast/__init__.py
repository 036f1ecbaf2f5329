"""Forecasting: windows in, quantile forecasts out.

Every forecaster implements :class:`~sentinelle.forecast.base.Forecaster`;
:class:`~sentinelle.forecast.batcher.ForecastBatcher` groups windows of many tags
into batches and runs the forecaster off the event loop.  Torch, when a model
forecaster is used, is imported only inside this package.
"""

from __future__ import annotations

from ..settings import ForecastSettings
from .base import Forecaster
from .baselines import HoltForecaster, NaiveForecaster

__all__ = ["Forecaster", "HoltForecaster", "NaiveForecaster", "make_fallback", "make_forecaster"]


def make_forecaster(settings: ForecastSettings) -> Forecaster:
    """The forecaster named in the settings."""
    levels, horizon = settings.quantile_levels, settings.horizon_steps
    if settings.forecaster == "holt":
        return HoltForecaster(
            levels, horizon, settings.holt_alpha, settings.holt_beta, settings.holt_damping
        )
    if settings.forecaster == "seasonal_naive":
        return NaiveForecaster(levels, horizon, settings.season_steps)
    return NaiveForecaster(levels, horizon)


def make_fallback(settings: ForecastSettings) -> Forecaster | None:
    """The baseline used when the configured forecaster fails (None if it is already the simplest)."""
    if settings.forecaster == "naive":
        return None
    return NaiveForecaster(settings.quantile_levels, settings.horizon_steps)
