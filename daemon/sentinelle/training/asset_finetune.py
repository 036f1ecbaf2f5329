"""Per-asset adaptation of the asset model: a LoRA adapter learned from one asset's own history (issue 14, step 3).

The shipped asset model (:mod:`~sentinelle.forecast.asset_model`) learned how tags relate on
synthetic systems and the chiller simulator; a real plant couples its tags its own way (SKAB's
pump: flow, pressure, current and vibration).  :func:`finetune_asset` trains a LoRA adapter of
the asset checkpoint on the asset's history — all its tags together, as the model reads them —
and writes it with :func:`~sentinelle.forecast.adapters.save_adapter` (the same folder layout,
base hash and checks as the univariate adapters); :class:`~sentinelle.forecast.asset_engine.
AssetForecaster` attaches it with ``adapter=``.

The history is one matrix: the asset's tags on one regular grid (:func:`aligned`).  It is split
**in time**: the newest ``validation_fraction`` is validation and no training target reaches into
it (as :mod:`.finetune`).  Each training step draws ``batch_size`` crops of every tag at random
origins of the training part — a context of :data:`CONTEXT_STEPS` (pretraining's crop) and the
next :data:`HORIZON_STEPS` steps, step 1 being "now" — and steps on asset pretraining's loss
(:mod:`.asset_train`): the forecast's and the estimate-now's pinball losses; a share
:data:`BLIND_SHARE` of the batches is made as the blind estimate is (each tag's newest
:data:`BLIND_MASK_STEPS` slots masked) and trains the estimate only.  Validation (evenly spaced
origins of the validation part, contexts may reach back into training: only the past) scores
the three losses and, in the tags' units, the median estimate's MAE per tag, with and without the
mask; it runs before the first step (the LoRA update starts at zero: the base model's score),
every ``eval_every_steps`` and once more where the time budget stops it between two; the best
sum of the three losses is kept, with early stopping after ``patience_evals`` validations without
improvement, at ``max_steps`` or at the time budget.  The manifest records the validation before and after.

Importing this module imports torch and peft.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from peft import PeftModel

from ..errors import ConfigError, ModelError
from ..evaluation.datasets import Series
from ..forecast.adapters import base_fingerprint, lora_config, save_adapter, wrap_for_training
from ..forecast.asset_model import SentinelleAssetModel
from ..forecast.engine import load_model
from ..forecast.model import pinball_loss
from ..forecast.tokenizer import TSTokenizer
from ..records import FloatArray
from ..settings import FinetuneSettings
from .asset_corpus import AssetBatch
from .asset_train import Tensors, to_tensors
from .keep_best import KeepBest
from .threads import torch_threads_restored

__all__ = ["AssetFinetuneResult", "aligned", "finetune_asset"]

log = logging.getLogger(__name__)

CONTEXT_STEPS = 256
"""Each crop's context (asset pretraining's; the engine reads up to the checkpoint's 512)."""
HORIZON_STEPS = 16
"""Forecast steps trained (asset pretraining's; the horizon residual compares the forecast 16 ticks ago)."""
BLIND_MASK_STEPS = 128
"""Slots masked in a blind batch (``forecast.asset_mask_recent_steps`` of SKAB's and the chiller's blind rows)."""
BLIND_SHARE = 0.5
"""Share of the training batches made blind."""
ADAPTER_NAME = "default"
ASSET_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "down_proj", "now_head.output_layer")
"""Layers adapted: attention over time and across the tags (the couplings), the MLPs, the estimate's head."""


@dataclass(frozen=True, slots=True)
class AssetFinetuneResult:
    """What a run produced; the same facts are in ``out_dir/manifest.json``."""

    out_dir: Path
    steps: int
    best_step: int
    before: dict[str, Any]
    after: dict[str, Any]
    wall_seconds: float


def aligned(series: Sequence[Series]) -> tuple[list[str], FloatArray]:
    """The asset's tags as one (T, G) matrix on their common grid (NaN where a tag has no value).

    The tags must share a period and their timestamps one lattice (spans may differ).

    >>> ts = np.arange(3.0)
    >>> names, m = aligned([Series("a", "x", np.zeros(3), ts, 1.0), Series("b", "x", np.ones(2), ts[1:], 1.0)])
    >>> names, m[:, 1].tolist()
    (['a', 'b'], [nan, 1.0, 1.0])
    """
    series = [s for s in series if len(s)]
    if not series:
        raise ConfigError("no series to fine-tune on", field="data")
    period = series[0].period_s
    start = min(float(s.timestamps[0]) for s in series)
    slots = [(s.timestamps - start) / period for s in series]
    if any(s.period_s != period for s in series) or any(not np.allclose(k, np.round(k)) for k in slots):
        raise ConfigError(
            "the asset's tags must share one grid (period and phase) to be encoded together", field="data"
        )
    out = np.full((int(max(k[-1] for k in slots).round()) + 1, len(series)), np.nan)
    for j, (s, k) in enumerate(zip(series, slots, strict=True)):
        out[np.round(k).astype(int), j] = np.where(np.isfinite(s.values), s.values, np.nan)
    return [s.name for s in series], out


@dataclass(frozen=True, slots=True)
class _Shape:
    """A crop's context and horizon and the blind batches' mask: the constants above, within the model's own."""

    context: int
    horizon: int
    mask: int

    @classmethod
    def of(cls, model: SentinelleAssetModel) -> _Shape:
        context = min(CONTEXT_STEPS, model.config.context_length)
        return cls(context, min(HORIZON_STEPS, model.config.horizon), min(BLIND_MASK_STEPS, context // 2))


def _crops(values: FloatArray, origins: Sequence[int], shape: _Shape) -> AssetBatch:
    """Context (the ``shape.context`` steps before each origin, NaN-padded) and the next ``shape.horizon``."""
    n, g = values.shape
    ctx = np.full((len(origins), g, shape.context), np.nan)
    fut = np.full((len(origins), g, shape.horizon), np.nan)
    for i, o in enumerate(origins):
        past = values[max(0, o - shape.context) : o].T
        ctx[i, :, shape.context - past.shape[1] :] = past
        part = values[o : min(n, o + shape.horizon)].T
        fut[i, :, : part.shape[1]] = part
    return AssetBatch(ctx, fut, np.isfinite(ctx).any(axis=2))


def _losses(model: PeftModel, t: Tensors, levels: tuple[float, ...]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Forecast and estimate pinball losses, and the estimates (B, G, Q) in the scaled space."""
    out = model(t.ids, current=t.current, tag_mask=t.tag_mask)
    b, g = t.current.shape
    y = torch.where(t.tag_mask[..., None], t.labels, float("nan")).reshape(b * g, -1)
    forecast = pinball_loss(out.quantiles.reshape(b * g, len(levels), -1), y, levels)
    estimate = pinball_loss(out.estimate.reshape(b * g, len(levels), 1), y[:, :1], levels)
    return forecast, estimate, out.estimate


@dataclass(frozen=True, slots=True)
class _Validation:
    plain: Tensors
    blind: Tensors
    actual: FloatArray
    """(V, G) the value now, in units."""
    loc: FloatArray
    scale: FloatArray
    """(V·G,) of the plain and (``blind_*``) the masked contexts."""
    blind_loc: FloatArray
    blind_scale: FloatArray


def _validation(values: FloatArray, split: int, windows: int, tokenizer: TSTokenizer, shape: _Shape) -> _Validation:
    first, last = max(split, shape.context // 2), len(values) - shape.horizon
    if last < first:
        raise ConfigError("too little history for a validation window", field="data")
    origins = np.unique(np.linspace(first, last, min(windows, last - first + 1)).round().astype(int)).tolist()
    crop = _crops(values, origins, shape)
    b, g, length = crop.context.shape
    masked = crop.context.copy()
    masked[:, :, -shape.mask :] = np.nan
    enc, enc_blind = tokenizer.encode(crop.context.reshape(b * g, length)), tokenizer.encode(masked.reshape(b * g, -1))
    return _Validation(
        to_tensors(crop, tokenizer),
        to_tensors(crop, tokenizer, shape.mask),
        crop.future[:, :, 0],
        enc.loc,
        enc.scale,
        enc_blind.loc,
        enc_blind.scale,
    )


def _evaluate(model: PeftModel, v: _Validation, levels: tuple[float, ...], tags: list[str]) -> dict[str, Any]:
    """The three losses (scaled space), their sum, and the median estimate's MAE per tag in units."""
    module: torch.nn.Module = model
    module.eval()
    median = levels.index(0.5) if 0.5 in levels else len(levels) // 2
    out: dict[str, Any] = {}
    with torch.no_grad():
        f, e, est = _losses(model, v.plain, levels)
        _, eb, est_blind = _losses(model, v.blind, levels)
    for key, scaled, loc, scale in (("mae", est, v.loc, v.scale), ("blind_mae", est_blind, v.blind_loc, v.blind_scale)):
        med = TSTokenizer.unscale(scaled[..., median].reshape(-1).numpy().astype(np.float64), loc, scale)
        err = np.abs(med.reshape(v.actual.shape) - v.actual)
        with np.errstate(invalid="ignore"):
            out[key] = {t: round(float(np.nanmean(err[:, j])), 6) for j, t in enumerate(tags)}
    module.train()
    out |= {"forecast": round(float(f), 6), "estimate": round(float(e), 6), "blind_estimate": round(float(eb), 6)}
    out["total"] = round(out["forecast"] + out["estimate"] + out["blind_estimate"], 6)
    return out


def finetune_asset(
    base: Path,
    series: Sequence[Series],
    settings: FinetuneSettings,
    *,
    asset: str,
    out_dir: Path,
    data_note: str = "",
) -> AssetFinetuneResult:
    """Train a LoRA adapter of the asset checkpoint in ``base`` on the asset's tags ``series``; save it in ``out_dir``.

    Uses ``settings``' rank, alpha, learning rate, weight decay, batch size, steps, evaluation cadence,
    patience, validation share and windows, seed, threads and time budget (``target_modules``: the
    asset model's :data:`ASSET_TARGET_MODULES`).  ``data_note``: where the history comes from (the manifest).
    """
    started = time.monotonic()
    with torch_threads_restored():
        torch.set_num_threads(settings.threads)
        return _run(Path(base), series, settings, asset, Path(out_dir), data_note, started)


def _run(
    base: Path, series: Sequence[Series], s: FinetuneSettings, asset: str, out_dir: Path, note: str, started: float
) -> AssetFinetuneResult:
    torch.manual_seed(s.seed)
    rng = np.random.default_rng(s.seed)
    tags, values = aligned(series)
    # Through the daemon's loader: a missing or broken base is a ModelError naming the file (the CLI's one
    # line and exit code), not a transformers traceback.
    base_model = load_model(base, torch.device("cpu"), torch.float32, SentinelleAssetModel)
    if not isinstance(base_model, SentinelleAssetModel) or not base_model.config.group_attention:
        raise ModelError(f"{base}: not an asset model (group_attention is false)")
    shape = _Shape.of(base_model)
    split = len(values) - max(1, round(len(values) * s.validation_fraction))
    origins = np.arange(max(s.min_context_steps, 1), split - shape.horizon + 1)
    if len(origins) == 0:
        raise ConfigError("too little history to fine-tune the asset model", field="data")
    levels = tuple(base_model.config.quantile_levels)
    tokenizer = TSTokenizer(base_model.config.vocab_size, base_model.config.token_limit)
    validation = _validation(values, split, s.validation_windows, tokenizer, shape)
    lora = lora_config(s, ASSET_TARGET_MODULES)
    model = wrap_for_training(base_model, lora, ADAPTER_NAME)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=s.learning_rate, weight_decay=s.weight_decay)
    budget = s.max_minutes * 60.0 if s.max_minutes is not None else math.inf
    before = _evaluate(model, validation, levels, tags)
    keep = KeepBest(model, "total", s.patience_evals)
    keep.offer(0, before)
    losses = ("forecast", "estimate", "blind_estimate", "total")
    history: list[dict[str, float]] = [{"step": 0, "s": 0.0, **{k: before[k] for k in losses}}]
    step = 0
    log.info("finetune asset %s: %d tags, %d training origins; validation %s", asset, len(tags), len(origins), before)

    def validate() -> bool:
        """Score the current weights, keep them if best; True when patience has run out."""
        v = _evaluate(model, validation, levels, tags)
        history.append({"step": step, "s": round(time.monotonic() - started, 1), **{k: v[k] for k in losses}})
        log.info("finetune asset %s step %d: validation %s", asset, step, history[-1])
        return keep.offer(step, v)

    while step < s.max_steps and time.monotonic() - started < budget:
        blind = rng.random() < BLIND_SHARE
        crop = _crops(values, rng.choice(origins, s.batch_size).tolist(), shape)
        f, e, _ = _losses(model, to_tensors(crop, tokenizer, shape.mask if blind else 0), levels)
        loss = e if blind else f + e
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]  # torch leaves Tensor.backward unannotated
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        step += 1
        if step % s.eval_every_steps == 0 and validate():
            break
    if step % s.eval_every_steps:  # stopped between validations (the time budget): the last steps count too
        validate()
    keep.restore()
    best, best_step = keep.best, keep.step
    wall = time.monotonic() - started
    manifest = {
        "asset": asset,
        "kind": "asset_model",
        "base_model": base_fingerprint(base),
        "tags": tags,
        "data": {"rows": len(values), "validation_from_row": split, "source": note},
        "adapter": {"rank": s.rank, "alpha": s.alpha, "target_modules": list(ASSET_TARGET_MODULES)},
        "training": {
            "steps": step,
            "best_step": best_step,
            "context_steps": shape.context,
            "horizon_steps": shape.horizon,
            "blind_mask_steps": shape.mask,
            "blind_share": BLIND_SHARE,
            "wall_seconds": round(wall, 1),
            "torch": torch.__version__,
            "settings": s.model_dump(mode="json"),
        },
        "validation": {"windows": int(validation.actual.shape[0]), "before": before, "after": best},
        "history": history,
    }
    save_adapter(model, ADAPTER_NAME, out_dir, manifest)
    return AssetFinetuneResult(out_dir, step, best_step, before, best, wall)
