"""Shared by the model tests: run an in-memory model on raw windows, as the engine does."""

from __future__ import annotations

import numpy as np
import torch

from sentinelle.forecast.model import SentinelleTSModel
from sentinelle.forecast.tokenizer import TSTokenizer


def forecast_with(model: SentinelleTSModel, x: np.ndarray) -> np.ndarray:
    """Quantiles (B, Q, H) in the windows' units for windows ``x`` (B, L), NaN for gaps."""
    tok = TSTokenizer(model.config.vocab_size, model.config.token_limit)
    enc = tok.encode(x)
    with torch.no_grad():
        q = model(torch.from_numpy(enc.ids)).quantiles
    assert q is not None
    return np.asarray(tok.unscale(q.numpy(), enc.loc, enc.scale))
