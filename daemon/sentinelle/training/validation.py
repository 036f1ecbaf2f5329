"""Pretraining validation: a fixed set of held-out corpus windows, and the metrics the run reports on it.

* ``pinball``: the training loss (mean pinball over levels, scaled space,
  labels clipped to ±``label_clip``), by source too;
* ``mase`` and ``naive_mase``: mean absolute scaled error of the model's median
  and of the last-value forecast, each window scaled by its context's mean
  absolute one-step change (windows whose context never changes are left out);
* ``relative_mae``: geometric mean over windows of MAE(model) / MAE(naive) —
  below 1 means the model beats "nothing changes";
* ``coverage_80``: share of targets inside the 0.1..0.9 quantiles.

Apart from :mod:`.train` because it is arithmetic on arrays, not the training loop: the quantiles in,
the numbers of ``training.json``'s validation history out (:func:`validation_metrics`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..forecast.base import last_finite
from ..forecast.tokenizer import TSTokenizer
from ..records import FloatArray
from .corpus import SOURCES, IntArray, Windows

__all__ = ["ValidationSet", "validation_metrics", "validation_set"]


@dataclass(frozen=True, slots=True)
class ValidationSet:
    ids: torch.Tensor
    labels: FloatArray  # scaled, clipped: the training loss's view
    scaled_target: FloatArray  # scaled, not clipped: for MASE
    scaled_naive: FloatArray  # last finite context value, scaled
    mase_scale: FloatArray  # mean |one-step change| of the context, scaled (NaN: not defined)
    source: IntArray


def validation_set(windows: Windows, tokenizer: TSTokenizer, label_clip: float) -> ValidationSet:
    encoded = tokenizer.encode(windows.context)
    scaled_target = tokenizer.scale_values(windows.target, encoded.loc, encoded.scale)
    scaled_context = tokenizer.scale_values(windows.context, encoded.loc, encoded.scale)
    steps = np.abs(np.diff(scaled_context, axis=1))
    observed = np.isfinite(steps)
    count = observed.sum(axis=1)
    change = np.where(observed, steps, 0.0).sum(axis=1) / np.maximum(count, 1)
    mase_scale = np.where((count > 0) & (change > 1e-9), change, np.nan)
    return ValidationSet(
        ids=torch.from_numpy(encoded.ids),
        labels=np.clip(scaled_target, -label_clip, label_clip),
        scaled_target=scaled_target,
        scaled_naive=last_finite(scaled_context),
        mase_scale=mase_scale,
        source=windows.source,
    )


def validation_metrics(q: FloatArray, data: ValidationSet, levels: tuple[float, ...]) -> dict[str, float]:
    tau = np.asarray(levels)[None, :, None]
    y = data.labels[:, None, :]
    observed = np.isfinite(y)
    diff = np.where(observed, y, 0.0) - q
    pinball = np.where(observed, np.maximum(tau * diff, (tau - 1.0) * diff), 0.0)  # (B, Q, H)
    per_window = pinball.sum(axis=(1, 2))
    per_count = observed.sum(axis=(1, 2)) * float(len(levels))  # as the model's loss: mean over levels too
    out: dict[str, float] = {"pinball": float(per_window.sum() / max(per_count.sum(), 1.0))}
    for k, name in enumerate(SOURCES):
        rows = data.source == k
        if rows.any():
            out[f"pinball_{name}"] = float(per_window[rows].sum() / max(per_count[rows].sum(), 1.0))

    median = q[:, levels.index(0.5), :]
    target = data.scaled_target
    seen = np.isfinite(target)
    n_seen = np.maximum(seen.sum(axis=1), 1)
    mae = np.where(seen, np.abs(target - median), 0.0).sum(axis=1) / n_seen
    mae_naive = np.where(seen, np.abs(target - data.scaled_naive[:, None]), 0.0).sum(axis=1) / n_seen
    usable = np.isfinite(data.mase_scale) & seen.any(axis=1)
    scale = np.where(usable, data.mase_scale, 1.0)
    out["mase"] = float(np.mean((mae / scale)[usable])) if usable.any() else math.nan
    out["naive_mase"] = float(np.mean((mae_naive / scale)[usable])) if usable.any() else math.nan
    ratio_ok = usable & (mae_naive > 1e-12) & (mae > 1e-12)
    ratio = np.where(ratio_ok, mae / np.where(ratio_ok, mae_naive, 1.0), 1.0)
    out["relative_mae"] = float(np.exp(np.mean(np.log(ratio[ratio_ok])))) if ratio_ok.any() else math.nan
    if 0.1 in levels and 0.9 in levels:
        low, high = q[:, levels.index(0.1), :], q[:, levels.index(0.9), :]
        inside = (target >= low) & (target <= high)
        out["coverage_80"] = float(inside[seen].mean()) if seen.any() else math.nan
    else:
        out["coverage_80"] = math.nan
    return {k: round(v, 6) for k, v in out.items()}
