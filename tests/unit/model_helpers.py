"""Shared by the model tests: run an in-memory model on raw windows, as the engine does."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from peft import LoraConfig

from sentinelle.forecast.adapters import base_fingerprint, save_adapter, wrap_for_training
from sentinelle.forecast.asset_model import GroupAttention, SentinelleAssetModel
from sentinelle.forecast.model import SentinelleTSConfig, SentinelleTSModel
from sentinelle.forecast.tokenizer import TSTokenizer
from sentinelle.training.asset_finetune import ASSET_TARGET_MODULES

ModuleT = TypeVar("ModuleT", bound=torch.nn.Module)


def in_eval_mode(model: ModuleT) -> ModuleT:
    """``model.eval()``, through nn.Module's typed method: transformers' PreTrainedModel re-declares it unannotated."""
    torch.nn.Module.eval(model)
    return model


def forecast_with(model: SentinelleTSModel, x: np.ndarray) -> np.ndarray:
    """Quantiles (B, Q, H) in the windows' units for windows ``x`` (B, L), NaN for gaps."""
    tok = TSTokenizer(model.config.vocab_size, model.config.token_limit)
    enc = tok.encode(x)
    with torch.no_grad():
        q = model(torch.from_numpy(enc.ids)).quantiles
    assert q is not None
    return np.asarray(tok.unscale(q.numpy(), enc.loc, enc.scale))


def small_model(**branches: Any) -> SentinelleTSModel:
    """An untrained, seeded model of context 128, horizon 16, with the given branch settings, in eval mode."""
    torch.manual_seed(0)
    config = SentinelleTSConfig(
        context_length=128,
        patch_length=16,
        horizon=16,
        d_model=16,
        num_layers=1,
        num_heads=2,
        d_ff=32,
        vocab_size=4096,
        dropout=0.0,
        **branches,
    )
    return in_eval_mode(SentinelleTSModel(config))


def small_asset_checkpoint(path: Path) -> Path:
    """An untrained, seeded asset model (context 64, horizon 8) saved in ``path``, its group attention and
    estimate head given weights large enough that every tag's estimate depends on the others."""
    torch.manual_seed(0)
    config = SentinelleTSConfig(
        context_length=64, patch_length=16, horizon=8, d_model=16, num_layers=2, num_heads=2, d_ff=32,
        vocab_size=256, dropout=0.0, group_attention=True,
    )  # fmt: skip
    model = like_trained(SentinelleAssetModel(config))
    model.save_pretrained(path)
    return path


def like_trained(model: SentinelleAssetModel) -> SentinelleAssetModel:
    """Group layers and the now head with nonzero outputs (they start at zero), so that tests reading
    across tags or the estimate of now can fail."""
    with torch.no_grad():
        for group in model.group_layers:
            assert isinstance(group, GroupAttention)
            group.o_proj.weight.normal_(0, 0.3)
        for p in model.now_head.parameters():
            p.normal_(0, 0.3)
    return model


def random_adapter(base: Path, out: Path) -> Path:
    """An adapter of ``base`` whose LoRA weights are all nonzero (a trained one may be a no-op: best step 0)."""
    torch.manual_seed(1)
    model = wrap_for_training(SentinelleAssetModel.from_pretrained(base), LoraConfig(r=2, lora_alpha=4,
                              target_modules=list(ASSET_TARGET_MODULES)))  # fmt: skip
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    save_adapter(model, "default", out, {"base_model": base_fingerprint(base), "tags": ["p.a", "p.b", "p.c"]})
    return out
