"""The asset model's estimates in the daemon: each asset through its own adapter where it has one.

A plant's assets couple their tags their own way; ``sentinelle finetune --asset A
--asset-model`` learns asset A's couplings into a LoRA adapter
(:mod:`~sentinelle.training.asset_finetune`).  The daemon reads every
``<asset_model_adapters_dir>/<asset>/`` at start and gives that asset an
:class:`~.asset_engine.AssetForecaster` with the adapter merged in (an adapted
model costs what the base does); every other asset goes through the base.  The
rows of one window are routed by asset, and each model keeps its own held
estimates (``every_steps``), so an asset's answers do not depend on which others
share the window.

An adapter that fails its checks — trained on another base, a missing or corrupt
file, tags that are not the asset's configured ones — is refused with an ERROR
naming both sides and counted; its asset uses the base model, as for the
univariate model's adapters (:mod:`.engine`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..errors import ModelError
from ..records import FloatArray, WindowBatch
from .asset_engine import AssetForecaster

log = logging.getLogger(__name__)

ForecasterFactory = Callable[[Path | None, Collection[str] | None], AssetForecaster]
"""Builds an asset forecaster: (adapter folder or None for the base, the asset's configured tags)."""


class AssetEstimators:
    """Per-asset estimates: ``adapted[asset]`` for the assets with an adapter, ``base`` for the rest."""

    def __init__(self, base: AssetForecaster, adapted: Mapping[str, AssetForecaster] | None = None) -> None:
        self.base = base
        self.adapted = dict(adapted or {})
        self.refused: dict[str, str] = {}
        """Asset → why its adapter was refused (the asset is estimated by the base)."""

    def estimate_window(self, window: WindowBatch) -> FloatArray:
        """:meth:`AssetForecaster.estimate_window` with each row answered by its asset's model."""
        if not self.adapted:
            return self.base.estimate_window(window)
        routes: dict[str, list[int]] = {}
        for i, asset in enumerate(window.assets):
            routes.setdefault(asset if asset in self.adapted else "", []).append(i)
        out = np.full((len(window), len(self.base.levels)), np.nan)
        for asset, rows in routes.items():
            model = self.adapted[asset] if asset else self.base
            out[rows] = model.estimate_window(window if len(rows) == len(window) else rows_of(window, rows))
        return out


def rows_of(window: WindowBatch, rows: list[int]) -> WindowBatch:
    """The window restricted to ``rows`` (every per-row field, in that order)."""
    idx = np.asarray(rows, dtype=np.intp)
    down, held, low, high = window.source_down, window.held, window.eu_low, window.eu_high
    return replace(
        window,
        tags=tuple(window.tags[i] for i in rows),
        assets=tuple(window.assets[i] for i in rows),
        values=window.values[idx],
        contexts=window.contexts[idx],
        source_down=None if down is None else down[idx],
        held=None if held is None else held[idx],
        eu_low=None if low is None else low[idx],
        eu_high=None if high is None else high[idx],
    )


def load_asset_estimators(
    make: ForecasterFactory,
    adapters_dir: Path | None,
    asset_tags: Mapping[str, Collection[str]],
    on_refused: Callable[[str, str], None] | None = None,
) -> AssetEstimators:
    """The base asset model and, per ``<adapters_dir>/<asset>/`` of a configured asset, its adapted one.

    ``make`` builds a forecaster (raises :class:`ModelError`); a failure of the base
    propagates (the caller runs without estimates), an adapter's is logged, counted
    through ``on_refused(asset, why)`` and leaves its asset on the base.
    """
    estimators = AssetEstimators(make(None, None))
    if adapters_dir is None:
        return estimators
    root = Path(adapters_dir)
    if not root.is_dir():
        log.warning("asset_model_adapters_dir %s does not exist: every asset uses the base asset model", root)
        return estimators
    for directory in sorted(p for p in root.iterdir() if p.is_dir()):
        asset = directory.name
        if directory.suffix in (".tmp", ".old"):  # a save in progress or interrupted (adapters.save_adapter)
            continue
        if asset not in asset_tags:
            log.warning("asset-model adapter %s: no configured asset %r; not loaded", directory, asset)
            continue
        try:
            estimators.adapted[asset] = make(directory, asset_tags[asset])
        except ModelError as e:
            estimators.refused[asset] = str(e)
            log.error("asset-model adapter of asset %r refused: %s; the asset uses the base asset model", asset, e)
            if on_refused is not None:
                on_refused(asset, str(e))
            continue
        log.info("asset model: asset %r estimated with its adapter %s", asset, directory)
    return estimators
