"""training/asset_train.py: batches made as the blind estimate is used (newest slots masked, estimate loss only)."""

from __future__ import annotations

import math

import numpy as np
import torch

from sentinelle.forecast.asset_model import SentinelleAssetModel
from sentinelle.forecast.model import SentinelleTSConfig
from sentinelle.forecast.tokenizer import MISSING_ID, TSTokenizer
from sentinelle.training.asset_corpus import AssetBatch
from sentinelle.training.asset_train import AssetRecipe, _losses, to_tensors

from .model_helpers import in_eval_mode

TOKENIZER = TSTokenizer(64, 15.0)


def _batch() -> AssetBatch:
    """Two tags; the newest 8 context slots jump far away (what masking must hide from loc/scale)."""
    t = np.arange(40, dtype=np.float64)
    context = np.stack([np.sin(t / 5.0), np.cos(t / 5.0)])[None].copy()  # (1, 2, 40)
    context[:, :, -8:] += 100.0
    future = np.full((1, 2, 4), 0.5)
    return AssetBatch(context, future, np.ones((1, 2), dtype=bool))


def test_masking_hides_the_newest_slots_from_the_tokens_and_the_scale() -> None:
    plain, blind = to_tensors(_batch(), TOKENIZER), to_tensors(_batch(), TOKENIZER, mask_recent_steps=8)
    assert (blind.ids[..., -8:] == MISSING_ID).all() and (plain.ids[..., -8:] != MISSING_ID).all()
    assert torch.equal(plain.tag_mask, blind.tag_mask)
    # Loc and scale come from what the blind context saw (the jump excluded): as a context that never had it.
    unseen = _batch().context.copy()
    unseen[..., -8:] = np.nan
    enc = TOKENIZER.encode(unseen.reshape(2, -1))
    expected = TSTokenizer.scale_values(np.full(2, 0.5), enc.loc, enc.scale)
    np.testing.assert_allclose(blind.current.numpy().ravel(), expected, rtol=1e-6)
    assert not torch.allclose(blind.current, plain.current)


def test_a_masked_batch_trains_the_estimate_only() -> None:
    config = SentinelleTSConfig(
        context_length=40, patch_length=8, horizon=4, d_model=16, num_layers=1, num_heads=2, d_ff=32,
        vocab_size=64, group_attention=True,
    )  # fmt: skip
    model = in_eval_mode(SentinelleAssetModel(config))
    t = to_tensors(_batch(), TOKENIZER, mask_recent_steps=8)
    loss, forecast, estimate = _losses(model, t, masked=True)
    assert math.isnan(forecast) and math.isfinite(estimate) and float(loss.detach()) == estimate
    loss, forecast, estimate = _losses(model, t)
    assert math.isfinite(forecast) and math.isclose(float(loss.detach()), forecast + estimate, rel_tol=1e-5)


def test_the_default_recipe_trains_as_before() -> None:
    r = AssetRecipe()
    assert (r.mask_recent_steps, r.masked_fraction, r.init) == (0, 0.0, "")
