"""The asset model adapted on whole known-good stretches (days) of one plant: a LoRA adapter of its couplings.

:func:`finetune_asset_days` is :func:`~.asset_finetune.finetune_asset` (one history cut in time,
``sentinelle finetune --asset-model``) for a caller who knows *which periods* were healthy and which
one to validate on — LBNL's labelled fault-free days (``bench/lbnl/asset_adapt.py``): the asset's tags go
in together, and what is scored is the **estimate of each tag now from the other
tags** (the virtual sensor the ``asset_estimate`` detector compares with the
actual value), made exactly as :meth:`~sentinelle.forecast.asset_engine.AssetForecaster.estimate_window`
makes it in a replay: the newest ``context_length − 1`` slots of every tag before
now (each tokenised alone), the other tags' values now.

The history comes as **stretches** (:class:`AssetStretch`: one asset's tags on one
regular grid, e.g. one day) split by the caller into training and validation
stretches — whole stretches, never a stretch cut in two — because an operator's
"known good" history is a list of periods (days without a work order), and a
validation period kept whole scores the adapter on days it never saw.  Windows
never cross from one stretch into another.

Loss: the model's own (forecast pinball over ``horizon`` steps + estimate-now
pinball, both in each tag's scaled space, as pretraining in :mod:`.asset_train`);
labels clipped to ±``finetune.label_clip`` as in :func:`~.finetune.finetune` — a
damper signal flat for hours has a tiny scale, and its first move scaled by it
was a target of 10⁴ that swamped every other (found on LBNL's first smoke run);
the weights kept are those with the lowest **estimate** pinball on validation,
since the estimate is what detection reads.  LoRA on the linear layers named by
``finetune.target_modules`` (the univariate fine-tune's, which here match the time
layers *and* the group layers' q/v/o projections), base weights frozen.  Validation
runs before the first step (the LoRA update starts at zero: the base model's
score) and every ``eval_every_steps``; early stopping, ``max_steps`` and
``max_minutes`` as :func:`~.finetune.finetune`.

The folder written is an ordinary adapter folder (:func:`~sentinelle.forecast.adapters.save_adapter`:
config, weights, manifest with the base's hash); its manifest's ``validation``
records the estimate's pinball and its median's mean absolute error in the tags'
units (MAE, per tag too), **before and after**, beside the MAE of the last value
(``persistence_mae``: what knowing the other tags must beat).
:class:`~sentinelle.forecast.asset_engine.AssetForecaster` takes it with ``adapter=``.

Importing this module imports torch and peft.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from peft import PeftModel

from ..errors import ConfigError
from ..forecast.adapters import base_fingerprint, lora_config, save_adapter, wrap_for_training
from ..forecast.asset_model import SentinelleAssetModel
from ..forecast.engine import load_model
from ..forecast.tokenizer import TSTokenizer
from ..records import FloatArray
from ..settings import FinetuneSettings
from .asset_corpus import AssetBatch
from .asset_train import Tensors, to_tensors
from .keep_best import KeepBest
from .threads import torch_threads_restored

__all__ = ["AssetStretch", "finetune_asset_days", "windows"]

log = logging.getLogger(__name__)

ADAPTER_NAME = "default"
HORIZON_STEPS = 16
"""Forecast steps in the training loss (as :class:`~.asset_train.AssetRecipe`'s pretraining; fewer if the model's
horizon is shorter)."""


@dataclass(frozen=True, slots=True)
class AssetStretch:
    """One asset's tags on one regular grid: ``values`` (steps × tags), NaN for gaps; ``name`` for the manifest."""

    name: str
    tags: tuple[str, ...]
    values: FloatArray


def windows(stretch: AssetStretch, origins: Sequence[int], context: int, horizon: int) -> AssetBatch:
    """One group per origin: each tag's ``context`` slots before it (NaN-padded on the left), the origin and
    ``horizon − 1`` slots after it as the future (NaN beyond the stretch); step 0 of the future is "now".

    >>> s = AssetStretch("d", ("a", "b"), np.arange(10.0).reshape(5, 2))
    >>> b = windows(s, [2], context=3, horizon=2)
    >>> b.context[0].tolist(), b.future[0].tolist()
    ([[nan, 0.0, 2.0], [nan, 1.0, 3.0]], [[4.0, 6.0], [5.0, 7.0]])
    """
    x = np.asarray(stretch.values, dtype=np.float64)
    g = x.shape[1]
    padded = np.concatenate([np.full((context, g), np.nan), x, np.full((horizon, g), np.nan)])
    ctx = np.stack([padded[o : o + context].T for o in origins])
    fut = np.stack([padded[context + o : context + o + horizon].T for o in origins])
    mask = np.isfinite(ctx).any(axis=2)
    return AssetBatch(ctx, fut, mask)


def _validation(
    stretches: Sequence[AssetStretch], count: int, context: int, horizon: int, min_context: int, tokenizer: TSTokenizer
) -> tuple[list[Tensors], list[AssetBatch]]:
    """Evenly spaced origins over the validation stretches (``count`` in all), as tensors and in the tags' units."""
    per = max(1, count // len(stretches))
    tensors, raw = [], []
    for s in stretches:
        n = len(s.values)
        origins = np.unique(np.linspace(min_context, n - 1, per).astype(int)).tolist()
        for part in range(0, len(origins), 32):
            b = windows(s, origins[part : part + 32], context, horizon)
            tensors.append(to_tensors(b, tokenizer))
            raw.append(b)
    return tensors, raw


def _score(
    model: PeftModel, tensors: list[Tensors], raw: list[AssetBatch], tokenizer: TSTokenizer, median: int, clip: float
) -> dict[str, Any]:
    """Estimate pinball and forecast pinball (scaled, labels clipped to ±``clip`` as in training), and the median
    estimate's MAE in the tags' units."""
    est_loss, fc_loss, errors = [], [], []
    with torch.no_grad():
        for t, b in zip(tensors, raw, strict=True):
            labels = t.labels.clamp(-clip, clip)
            out = model(input_ids=t.ids, current=t.current, tag_mask=t.tag_mask, labels=labels)
            est_loss.append(float(out.estimate_loss))
            fc_loss.append(float(out.forecast_loss))
            enc = tokenizer.encode(b.context.reshape(-1, b.context.shape[2]))
            med = out.estimate[..., median].reshape(-1).double().numpy()
            est = tokenizer.unscale(med, enc.loc, enc.scale).reshape(b.future.shape[:2])
            errors.append(np.abs(est - b.future[:, :, 0]))
    err = np.concatenate(errors)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a tag with no value in any validation window
        per_tag = np.nanmean(err, axis=0)
    return {
        "estimate_pinball": round(float(np.mean(est_loss)), 6),
        "forecast_pinball": round(float(np.mean(fc_loss)), 6),
        "estimate_mae": round(float(np.nanmean(err)), 6),
        "estimate_mae_per_tag": [round(float(v), 6) for v in per_tag],
    }


def _persistence_mae(raw: Sequence[AssetBatch]) -> float:
    """The MAE of "now = the last value before" on the validation windows: what an estimate must beat to know
    more than the tag's own last reading.

    >>> s = AssetStretch("d", ("a",), np.array([[0.0], [1.0], [3.0]]))
    >>> _persistence_mae([windows(s, [1, 2], context=2, horizon=1)])
    1.5
    """
    err = np.concatenate([np.abs(b.future[:, :, 0] - b.context[:, :, -1]).ravel() for b in raw])
    return round(float(np.nanmean(err)), 6)


def finetune_asset_days(
    base: Path,
    train: Sequence[AssetStretch],
    validation: Sequence[AssetStretch],
    settings: FinetuneSettings,
    *,
    asset: str,
    out_dir: Path,
    estimate_only: bool = False,
) -> dict[str, Any]:
    """Train a LoRA adapter of the asset checkpoint in ``base`` on ``train``, keep the weights best on
    ``validation``'s estimate pinball, save the adapter folder in ``out_dir``; return its manifest.

    Every stretch must have the same tags in the same order (one asset, or assets of one type whose tags
    correspond).  ``estimate_only``: step on the estimate-now loss alone (the forecast's is still scored).
    Raises :class:`ConfigError` when there is nothing to train or validate on.
    """
    if not train or not validation:
        raise ConfigError("an asset fine-tune needs at least one training and one validation stretch", field="data")
    width = {len(s.tags) for s in (*train, *validation)}
    if len(width) != 1:
        raise ConfigError(f"stretches with different numbers of tags: {sorted(width)}", field="data")
    with torch_threads_restored():
        return _run(Path(base), train, validation, settings, asset, Path(out_dir), estimate_only)


def _run(
    base_dir: Path,
    train: Sequence[AssetStretch],
    validation: Sequence[AssetStretch],
    settings: FinetuneSettings,
    asset: str,
    out_dir: Path,
    estimate_only: bool,
) -> dict[str, Any]:
    started = time.monotonic()
    torch.set_num_threads(settings.threads)
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    budget_s = settings.max_minutes * 60.0 if settings.max_minutes is not None else math.inf
    base_model = load_model(base_dir, torch.device("cpu"), torch.float32, SentinelleAssetModel)
    config = base_model.config
    context = config.context_length - 1  # the replay's estimate reads the window less its newest slot
    tokenizer = TSTokenizer(config.vocab_size, config.token_limit)
    median = list(config.quantile_levels).index(0.5)
    horizon = min(HORIZON_STEPS, config.horizon)
    origins = [(i, o) for i, s in enumerate(train) for o in range(settings.min_context_steps, len(s.values))]
    if not origins:
        raise ConfigError(f"the training stretches are shorter than {settings.min_context_steps} steps", field="data")
    val_t, val_raw = _validation(
        validation, settings.validation_windows, context, horizon, settings.min_context_steps, tokenizer
    )
    lora = lora_config(settings)
    model = wrap_for_training(base_model, lora, ADAPTER_NAME)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=settings.learning_rate, weight_decay=settings.weight_decay)
    module: torch.nn.Module = model
    history: list[dict[str, Any]] = []
    keep = KeepBest(model, "estimate_pinball", settings.patience_evals)
    step, stopped_by = 0, "steps"

    def evaluate() -> bool:
        module.eval()
        scores = _score(model, val_t, val_raw, tokenizer, median, settings.label_clip)
        module.train()
        history.append({"step": step, "wall_seconds": round(time.monotonic() - started, 1), **scores})
        done = keep.offer(step, scores)
        log.info(
            "asset finetune %s step %d: estimate pinball %.4f, MAE %.4f%s",
            asset,
            step,
            scores["estimate_pinball"],
            scores["estimate_mae"],
            " (best)" if keep.step == step else "",
        )
        return done

    evaluate()
    before = dict(keep.best)
    module.train()
    while step < settings.max_steps:
        if time.monotonic() - started >= budget_s:
            stopped_by = "time_budget"
            break
        picks = rng.integers(0, len(origins), settings.batch_size)
        parts = [windows(train[origins[k][0]], [origins[k][1]], context, horizon) for k in picks.tolist()]
        batch = AssetBatch(
            np.concatenate([p.context for p in parts]),
            np.concatenate([p.future for p in parts]),
            np.concatenate([p.tag_mask for p in parts]),
        )
        t = to_tensors(batch, tokenizer)
        labels = t.labels.clamp(-settings.label_clip, settings.label_clip)
        out = model(input_ids=t.ids, current=t.current, tag_mask=t.tag_mask, labels=labels)
        optimizer.zero_grad(set_to_none=True)
        (out.estimate_loss if estimate_only else out.loss).backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        step += 1
        if step % settings.eval_every_steps == 0 and evaluate():
            stopped_by = "early_stopping"
            break
    module.eval()
    keep.restore()
    best, best_step = keep.best, keep.step
    manifest = {
        "asset": asset,
        "kind": "asset_model",
        "base_model": base_fingerprint(base_dir),
        "tags": list(train[0].tags),
        "data": {"train": [s.name for s in train], "validation": [s.name for s in validation]},
        "adapter": {"rank": settings.rank, "alpha": settings.alpha, "target_modules": list(settings.target_modules)},
        "training": {
            "steps": step,
            "best_step": best_step,
            "stopped_by": stopped_by,
            "seed": settings.seed,
            "batch_groups": settings.batch_size,
            "loss": "estimate" if estimate_only else "forecast + estimate",
            "train_origins": len(origins),
            "wall_seconds": round(time.monotonic() - started, 1),
            "device": f"cpu ({settings.threads} threads, fp32)",
            "settings": settings.model_dump(mode="json"),
        },
        "validation": {
            "windows": int(sum(len(b.context) for b in val_raw)),
            "persistence_mae": _persistence_mae(val_raw),
            "before": before,
            "after": best,
            "improved": best_step > 0,
        },
        "history": history,
    }
    return save_adapter(model, ADAPTER_NAME, out_dir, manifest)
