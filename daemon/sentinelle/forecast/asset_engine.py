"""The asset forecaster: an asset's windows in, per tag a forecast and an estimate of now out.

:class:`AssetForecaster` runs :class:`~.asset_model.SentinelleAssetModel` the
way :class:`~.engine.ModelForecaster` runs the univariate model — newest
``context_length`` steps, each tag tokenised alone, quantile levels interpolated,
answers unscaled to the tags' units — with two additions: the tags of one asset
go in together ``(n, G, L)``, and each tag's value *now* ``(n, G)`` (the first
forecast step) may be given.  The model hides a tag's own current value from
that tag, so ``estimate`` is each tag as the rest of the asset says it should be:
the virtual-sensor reading that a residual (actual − estimate) scores.

Loading errors are :class:`~sentinelle.errors.ModelError` naming the file, as
for the univariate model (:func:`~.engine.load_model`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
import numpy.typing as npt
import torch

from ..errors import ModelError
from ..records import FloatArray, WindowBatch
from .asset_model import SentinelleAssetModel
from .engine import CONFIG_FILE, _level_weights, _pick_device, _pick_dtype, load_model
from .tokenizer import TSTokenizer


@dataclass(frozen=True, slots=True)
class AssetForecast:
    """Answers for n groups of G tags, in the tags' units; NaN for absent tags and failed rows."""

    quantiles: FloatArray
    """(n, G, len(levels), horizon): the forecast; step 1 is the instant of ``current``."""
    estimate: FloatArray
    """(n, G, len(levels)): each tag's value at that instant, estimated from its past and the others now."""


class AssetForecaster:
    """Forecasts and estimates of now from an asset-model checkpoint in a local directory."""

    name = "asset_model"

    def __init__(
        self,
        path: Path,
        levels: tuple[float, ...],
        *,
        device: str = "cpu",
        dtype: str = "auto",
        max_batch: int = 128,
    ) -> None:
        self.path = Path(path)
        self.levels = tuple(levels)
        if max_batch < 1:
            raise ModelError(f"max_batch must be ≥ 1, got {max_batch}")
        self.max_batch = max_batch
        self._device = _pick_device(device)
        loaded = load_model(self.path, self._device, _pick_dtype(dtype, self._device), SentinelleAssetModel)
        self.model = cast(SentinelleAssetModel, loaded)
        self.config = self.model.config
        if not self.config.group_attention:
            raise ModelError(f"{self.path / CONFIG_FILE}: not an asset model (group_attention is false)")
        self.tokenizer = TSTokenizer(self.config.vocab_size, self.config.token_limit)
        self._weights = _level_weights(self.levels, tuple(self.config.quantile_levels), self.path / CONFIG_FILE)

    def forecast(
        self,
        contexts: FloatArray,
        horizon: int,
        current: FloatArray | None = None,
        tag_mask: npt.NDArray[np.bool_] | None = None,
    ) -> AssetForecast:
        """Groups ``contexts`` (n, G, L), oldest first, NaN for gaps; ``current`` (n, G) NaN where unknown.

        ``tag_mask`` (n, G) marks the tags present (default: those with any observed value).
        """
        x = np.asarray(contexts, dtype=np.float64)
        if x.ndim != 3:
            raise ModelError(f"expected groups of shape (n, tags, steps), got shape {x.shape}")
        if not 1 <= horizon <= self.config.horizon:
            raise ModelError(f"the model forecasts {self.config.horizon} steps; {horizon} requested")
        n, g, _ = x.shape
        now = np.full((n, g), np.nan) if current is None else np.asarray(current, dtype=np.float64)
        if now.shape != (n, g):
            raise ModelError(f"current must have shape {(n, g)}, got {now.shape}")
        x = self._fit_length(x)
        present: npt.NDArray[np.bool_] = np.asarray(
            np.isfinite(x).any(axis=2) if tag_mask is None else tag_mask, dtype=bool
        )
        q = np.full((n, g, len(self.levels), horizon), np.nan)
        est = np.full((n, g, len(self.levels)), np.nan)
        with np.errstate(over="ignore", invalid="ignore"):
            for start in range(0, n, self.max_batch):
                part = slice(start, min(n, start + self.max_batch))
                q[part], est[part] = self._chunk(x[part], now[part], present[part], horizon)
        q[~present], est[~present] = np.nan, np.nan
        return AssetForecast(q, est)

    def estimate_window(self, window: WindowBatch) -> FloatArray:
        """Each row's value at ``window.ts`` estimated from the other tags of its asset then: (rows, levels).

        The rows of one asset form a group: contexts without their newest slot are
        the past, ``values`` the current values (a row's own is hidden from it by the
        model).  A row whose asset has no other tag with a value now gets NaN: an
        estimate from nobody is not one.  What fills
        :attr:`~sentinelle.records.ForecastBatch.estimate` for the ``asset_estimate`` detector.
        """
        n = len(window)
        out = np.full((n, len(self.levels)), np.nan)
        groups: dict[str, list[int]] = {}
        for i, asset in enumerate(window.assets):
            groups.setdefault(asset, []).append(i)
        rows_of = [r for r in groups.values() if len(r) >= 2]
        if not rows_of:
            return out
        g = max(len(r) for r in rows_of)
        past = window.contexts[:, :-1]
        ctx = np.full((len(rows_of), g, past.shape[1]), np.nan)
        now = np.full((len(rows_of), g), np.nan)
        for k, rows in enumerate(rows_of):
            ctx[k, : len(rows)] = past[rows]
            now[k, : len(rows)] = window.values[rows]
        estimate = self.forecast(ctx, 1, now).estimate
        for k, rows in enumerate(rows_of):
            others_now = np.isfinite(now[k, : len(rows)]).sum() - np.isfinite(now[k, : len(rows)])
            est = estimate[k, : len(rows)]
            out[rows] = np.where((others_now >= 1)[:, None], est, np.nan)
        return out

    def _fit_length(self, x: FloatArray) -> FloatArray:
        """The newest ``context_length`` steps, left-padded with NaN to the full context: missing patches
        are masked, and the analog branch needs more steps than its pattern (a 16-step window failed)."""
        cfg = self.config
        x = x[:, :, -cfg.context_length :]
        if x.shape[2] == cfg.context_length:
            return x
        return np.concatenate([np.full((*x.shape[:2], cfg.context_length - x.shape[2]), np.nan), x], axis=2)

    def _chunk(
        self, x: FloatArray, now: FloatArray, present: npt.NDArray[np.bool_], horizon: int
    ) -> tuple[FloatArray, FloatArray]:
        n, g, length = x.shape
        enc = self.tokenizer.encode(x.reshape(n * g, length))
        scaled_now = TSTokenizer.scale_values(now.reshape(n * g), enc.loc, enc.scale).reshape(n, g)
        with torch.inference_mode():
            out = self.model(
                torch.from_numpy(enc.ids.reshape(n, g, length)).to(self._device),
                current=torch.from_numpy(scaled_now).float().to(self._device),
                tag_mask=torch.from_numpy(present).to(self._device),
            )
        assert out.quantiles is not None and out.estimate is not None
        q = out.quantiles[..., :horizon].float().cpu().numpy().astype(np.float64).reshape(n * g, -1, horizon)
        e = out.estimate.float().cpu().numpy().astype(np.float64).reshape(n * g, -1)
        q = np.maximum.accumulate(np.einsum("rq,bqh->brh", self._weights, q), axis=1)
        e = np.maximum.accumulate(np.einsum("rq,bq->br", self._weights, e), axis=1)
        q = self.tokenizer.unscale(q, enc.loc, enc.scale)
        e = self.tokenizer.unscale(e, enc.loc, enc.scale)
        bad = ~np.isfinite(q).all(axis=(1, 2)) | ~np.isfinite(e).all(axis=1)
        q[bad], e[bad] = np.nan, np.nan
        return q.reshape(n, g, -1, horizon), e.reshape(n, g, -1)
