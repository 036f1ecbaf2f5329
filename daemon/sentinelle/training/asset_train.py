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

    python -m sentinelle.training.asset_train --out DIR [--minutes 15] [--context 256]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
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


@dataclass(frozen=True)
class Tensors:
    ids: torch.Tensor
    current: torch.Tensor
    labels: torch.Tensor
    tag_mask: torch.Tensor


def to_tensors(batch: AssetBatch, tokenizer: TSTokenizer) -> Tensors:
    """Tokenise each tag's context alone; scale its future with the same loc/scale."""
    b, g, length = batch.context.shape
    enc = tokenizer.encode(batch.context.reshape(b * g, length))
    future = TSTokenizer.scale_values(batch.future.reshape(b * g, -1), enc.loc, enc.scale).reshape(b, g, -1)
    return Tensors(
        ids=torch.from_numpy(enc.ids.reshape(b, g, length)),
        current=torch.from_numpy(future[:, :, 0]).float(),
        labels=torch.from_numpy(future).float(),
        tag_mask=torch.from_numpy(batch.tag_mask),
    )


def _losses(model: SentinelleAssetModel, t: Tensors) -> tuple[torch.Tensor, float, float]:
    out = model(t.ids, current=t.current, tag_mask=t.tag_mask, labels=t.labels)
    assert out.loss is not None and out.forecast_loss is not None and out.estimate_loss is not None
    return out.loss, float(out.forecast_loss.detach()), float(out.estimate_loss.detach())


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
    validation = [
        to_tensors(held.sample(recipe.batch, recipe.context, recipe.horizon, vrng, recipe.max_tags), tokenizer)
        for _ in range(recipe.validation_batches)
    ]

    module: torch.nn.Module = model  # nn.Module's typed train()/eval(); transformers re-wraps them untyped

    def validate() -> tuple[float, float, float]:
        module.eval()
        with torch.no_grad():
            parts = np.array([_losses(model, t)[1:] for t in validation])
        module.train()
        f, e = parts.mean(axis=0)
        return float(f + e), float(f), float(e)

    curve: list[dict[str, float]] = []
    v0 = validate()
    curve.append({"step": 0, "val_loss": v0[0], "val_forecast": v0[1], "val_estimate": v0[2], "s": 0.0})
    best = v0[0]
    model.save_pretrained(out_dir)
    rng = np.random.default_rng(recipe.seed)
    module.train()
    deadline = t0 + 60.0 * recipe.minutes
    step, running = 0, []
    while step < recipe.max_steps and time.time() < deadline:
        step += 1
        lr = recipe.lr * min(1.0, step / recipe.warmup_steps)
        for group in optimizer.param_groups:
            group["lr"] = lr
        t = to_tensors(corpus.sample(recipe.batch, recipe.context, recipe.horizon, rng, recipe.max_tags), tokenizer)
        loss, f, e = _losses(model, t)
        optimizer.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]  # torch leaves Tensor.backward unannotated
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        running.append((f, e))
        if step % recipe.eval_every == 0:
            v = validate()
            tf, te = np.mean(running, axis=0)
            running = []
            curve.append(
                {
                    "step": step,
                    "train_forecast": float(tf),
                    "train_estimate": float(te),
                    "val_loss": v[0],
                    "val_forecast": v[1],
                    "val_estimate": v[2],
                    "s": round(time.time() - t0, 1),
                }
            )
            log.info("step %d: train %.4f + %.4f, validation %.4f + %.4f", step, tf, te, v[1], v[2])
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
