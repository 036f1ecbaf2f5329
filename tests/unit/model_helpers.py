"""Shared by the model tests: run an in-memory model on raw windows, as the engine does."""

from __future__ import annotations

from typing import Any, TypeVar

import numpy as np
import torch

from sentinelle.forecast.model import SentinelleTSConfig, SentinelleTSModel
from sentinelle.forecast.tokenizer import TSTokenizer

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
