"""Pretrain the asset model on the corpus of coupled systems (:mod:`.asset_corpus`).

Warm start: every block the asset model shares with the univariate model comes
from a univariate checkpoint (the shipped one by default) and, by default, stays
frozen — only the group layers, the now embedding and the estimate-now head
learn.  Why: one tag alone then answers exactly as the univariate checkpoint
did (its held-out scores cannot get worse), and a CPU run of minutes has only
~300 k parameters to move.  ``--train-shared`` lifts the freeze (a GPU run).

Each step: a batch of groups from the corpus; each tag tokenised alone (its own
loc/scale, as the engine does); the future scaled with that tag's loc/scale;
``current`` = the first future step (the other tags' now, the own one hidden by
the model); loss = forecast pinball (first ``horizon`` steps) + estimate-now pinball.
A fixed validation set (another seed, other systems) picks the best checkpoint.

Writes ``config.json``, ``model.safetensors`` and ``training.json`` (the recipe,
the loss curve, the held-out rules, the time taken) into ``--out``.

**Trained for the blind estimate** (``--mask-recent-steps`` M > 0): a share
``--masked-fraction`` of the batches is made as :class:`~..forecast.asset_engine.AssetForecaster`
makes its estimate with ``forecast.asset_mask_recent_steps``: every tag's newest slots of
the context masked (NaN, tokenised as gaps; each tag's loc/scale from what is left), the
other tags' values now known; the mask's length drawn per batch in M ± ``--mask-spread``.
Such a batch trains the estimate only (its forecast would be of the slots after a gap,
which no use asks for).  Validation: the same unmasked batches as before plus, from the
same crops, their estimate with exactly M masked; the checkpoint kept is the best sum.
Why: a checkpoint trained only with the whole context answered the blind estimate with
the errors of a use it never saw (docs/results/chiller-detection/report.md).

    python -m sentinelle.training.asset_train --out DIR [--minutes 15] [--context 256]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..evaluation.heldout import HELDOUT_SUMMARY
from ..forecast import SHIPPED_CHECKPOINT
from ..forecast.asset_model import SentinelleAssetModel
from ..forecast.tokenizer import TSTokenizer
from .asset_corpus import AssetBatch, AssetCorpus

log = logging.getLogger(__name__)

_VALIDATION_SEED_OFFSET = 7919  # the validation bank's seed: another bank of systems


@dataclass(frozen=True)
class AssetRecipe:
    """Everything that decides a run (written into ``training.json``)."""

    base: str = str(SHIPPED_CHECKPOINT)
    seed: int = 0
    minutes: float = 15.0
    max_steps: int = 100_000
    batch: int = 8
    max_tags: int = 8
    context: int = 256
    horizon: int = 16
    lr: float = 1e-3
    warmup_steps: int = 30
    weight_decay: float = 0.01
    train_shared: bool = False
    regression_half_life: int = 128
    systems_per_source: int = 40
    length: int = 3000
    chiller_runs: int = 6
    validation_batches: int = 8
    eval_every: int = 50
    threads: int = 2
    mask_recent_steps: int = 0
    mask_spread: int = 0
    masked_fraction: float = 0.0
    init: str = ""
    """A checkpoint to start every weight from (a fine-tune of an asset checkpoint); empty: ``base``."""


@dataclass(frozen=True)
class Tensors:
    ids: torch.Tensor
    current: torch.Tensor
    labels: torch.Tensor
    tag_mask: torch.Tensor


def to_tensors(batch: AssetBatch, tokenizer: TSTokenizer, mask_recent_steps: int = 0) -> Tensors:
    """Tokenise each tag's context alone (its newest ``mask_recent_steps`` slots masked); scale its future alike."""
    b, g, length = batch.context.shape
    context = batch.context
    if mask_recent_steps:
        context = context.copy()
        context[:, :, -mask_recent_steps:] = np.nan
    enc = tokenizer.encode(context.reshape(b * g, length))
    future = TSTokenizer.scale_values(batch.future.reshape(b * g, -1), enc.loc, enc.scale).reshape(b, g, -1)
    return Tensors(
        ids=torch.from_numpy(enc.ids.reshape(b, g, length)),
        current=torch.from_numpy(future[:, :, 0]).float(),
        labels=torch.from_numpy(future).float(),
        tag_mask=torch.from_numpy(batch.tag_mask),
    )


def _losses(model: SentinelleAssetModel, t: Tensors, masked: bool = False) -> tuple[torch.Tensor, float, float]:
    """The loss to step on, the forecast loss (NaN for a masked batch: not trained) and the estimate loss."""
    out = model(t.ids, current=t.current, tag_mask=t.tag_mask, labels=t.labels)
    assert out.loss is not None and out.forecast_loss is not None and out.estimate_loss is not None
    if masked:
        return out.estimate_loss, math.nan, float(out.estimate_loss.detach())
    return out.loss, float(out.forecast_loss.detach()), float(out.estimate_loss.detach())


def _finite(x: float) -> float | None:
    """A mean for the JSON record: None where no batch of that kind ran (JSON has no NaN)."""
    return float(x) if math.isfinite(x) else None


def train(recipe: AssetRecipe, out_dir: Path) -> dict[str, Any]:
    """Run the recipe; save the best checkpoint by validation loss; return the training record."""
    torch.manual_seed(recipe.seed)
    torch.set_num_threads(recipe.threads)
    t0 = time.time()
    corpus = AssetCorpus.build(recipe.seed, recipe.systems_per_source, recipe.length, recipe.chiller_runs)
    held = AssetCorpus.build(
        recipe.seed + _VALIDATION_SEED_OFFSET, max(2, recipe.systems_per_source // 8), recipe.length, 2
    )
    build_s = time.time() - t0
    if recipe.init:
        model = SentinelleAssetModel.from_pretrained(recipe.init)
    else:
        model = SentinelleAssetModel.from_pretrained(
            recipe.base, group_attention=True, regression_half_life=recipe.regression_half_life
        )
    tokenizer = TSTokenizer(model.config.vocab_size, model.config.token_limit)
    new = ("group_layers.", "now_embedding.", "now_head.", "regression.")
    for name, p in model.named_parameters():
        p.requires_grad = recipe.train_shared or name.startswith(new)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    vrng = np.random.default_rng(recipe.seed + _VALIDATION_SEED_OFFSET)
    crops = [
        held.sample(recipe.batch, recipe.context, recipe.horizon, vrng, recipe.max_tags)
        for _ in range(recipe.validation_batches)
    ]
    validation = [to_tensors(c, tokenizer) for c in crops]
    blind = [to_tensors(c, tokenizer, recipe.mask_recent_steps) for c in crops] if recipe.mask_recent_steps else []

    module: torch.nn.Module = model  # nn.Module's typed train()/eval(); transformers re-wraps them untyped

    def validate() -> tuple[float, float, float, float]:
        """Total (forecast + estimate + blind estimate), forecast, estimate, blind estimate (0 without a mask)."""
        module.eval()
        with torch.no_grad():
            parts = np.array([_losses(model, t)[1:] for t in validation])
            masked = float(np.mean([_losses(model, t, masked=True)[2] for t in blind])) if blind else 0.0
        module.train()
        f, e = parts.mean(axis=0)
        return float(f + e + masked), float(f), float(e), masked

    curve: list[dict[str, float | None]] = []
    v0 = validate()
    curve.append(
        {
            "step": 0,
            "val_loss": v0[0],
            "val_forecast": v0[1],
            "val_estimate": v0[2],
            "val_blind_estimate": v0[3],
            "s": 0.0,
        }
    )
    best = v0[0]
    model.save_pretrained(out_dir)
    rng = np.random.default_rng(recipe.seed)
    module.train()
    deadline = t0 + 60.0 * recipe.minutes
    step, running = 0, list[tuple[float, float, float]]()
    while step < recipe.max_steps and time.time() < deadline:
        step += 1
        lr = recipe.lr * min(1.0, step / recipe.warmup_steps)
        for group in optimizer.param_groups:
            group["lr"] = lr
        crop = corpus.sample(recipe.batch, recipe.context, recipe.horizon, rng, recipe.max_tags)
        masked = recipe.mask_recent_steps > 0 and rng.random() < recipe.masked_fraction
        m = recipe.mask_recent_steps + int(rng.integers(-recipe.mask_spread, recipe.mask_spread + 1)) if masked else 0
        loss, f, e = _losses(model, to_tensors(crop, tokenizer, m), masked)
        optimizer.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]  # torch leaves Tensor.backward unannotated
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        running.append((f, math.nan, e) if masked else (f, e, math.nan))
        if step % recipe.eval_every == 0:
            v = validate()
            with np.errstate(invalid="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # a window with no masked (or no plain) batch
                tf, te, tb = np.nanmean(running, axis=0)
            running = []
            curve.append(
                {
                    "step": step,
                    "train_forecast": _finite(tf),
                    "train_estimate": _finite(te),
                    "val_loss": v[0],
                    "val_forecast": v[1],
                    "val_estimate": v[2],
                    "train_blind_estimate": _finite(tb),
                    "val_blind_estimate": v[3],
                    "s": round(time.time() - t0, 1),
                }
            )
            log.info("step %d: train %.4f + %.4f + %.4f, validation %.4f + %.4f + %.4f", step, tf, te, tb, *v[1:])
            if v[0] < best:
                best = v[0]
                model.save_pretrained(out_dir)
    record = {
        "recipe": asdict(recipe),
        "steps": step,
        "corpus_build_s": round(build_s, 1),
        "wall_s": round(time.time() - t0, 1),
        "trainable_parameters": sum(p.numel() for p in params),
        "parameters": model.param_count(),
        "best_val_loss": best,
        "initial_val_loss": v0[0],
        "curve": curve,
        "heldout": HELDOUT_SUMMARY,
        "corpus": {
            "synthetic_sources": sorted({s.source for s in corpus.systems} - {"chiller"}),
            "chiller_runs": recipe.chiller_runs,
            "chiller_seeds": "drawn below 1000 (evaluation.heldout.pretraining_seed); fault intervals "
            "and 30 min of settling excluded from targets",
        },
    }
    (out_dir / "training.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    fields = AssetRecipe()
    for name, value in asdict(fields).items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            ap.add_argument(flag, action="store_true", default=value)
        else:
            ap.add_argument(flag, type=type(value), default=value)
    args = vars(ap.parse_args(argv))
    out = args.pop("out")
    out.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    record = train(AssetRecipe(**args), out)
    print(
        f"{record['steps']} steps in {record['wall_s']} s; validation loss "
        f"{record['initial_val_loss']:.4f} → {record['best_val_loss']:.4f}"
        + ("" if math.isfinite(record["best_val_loss"]) else " (not finite!)")
    )


if __name__ == "__main__":
    main()
