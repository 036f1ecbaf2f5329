"""The asset model's forward made cheaper (issue 14, item 5) answers as it did before.

``tests/data/asset_reference_outputs.npz`` holds three 8-tag groups (coupled tags, scattered
gaps, a short history, a recent gap, an unknown current value, an absent tag) and the shipped
asset checkpoint's quantiles and estimates for them, computed by the code *before* the speed
work (group attention through ``scaled_dot_product_attention`` with a concatenated "nobody" key,
keys and values projected from ``h + now`` per position, the smoothing recursion reading with
``torch.take``).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sentinelle.forecast import SHIPPED_CHECKPOINT
from sentinelle.forecast.asset_model import GroupAttention, SentinelleAssetModel
from sentinelle.forecast.model import SentinelleTSConfig, SentinelleTSLayer

from .model_helpers import in_eval_mode

REFERENCE = Path(__file__).resolve().parents[1] / "data" / "asset_reference_outputs.npz"


def test_the_shipped_asset_model_answers_as_before_the_speed_work() -> None:
    ref = np.load(REFERENCE)
    model = in_eval_mode(SentinelleAssetModel.from_pretrained(SHIPPED_CHECKPOINT.parent / "asset"))
    with torch.inference_mode():
        out = model(
            torch.from_numpy(ref["ids"].astype(np.int64)),
            current=torch.from_numpy(ref["current"]),
            tag_mask=torch.from_numpy(ref["tag_mask"]),
        )
    assert out.quantiles is not None and out.estimate is not None
    # Scaled space (values within ±15): float32 rounding of a reordered sum, nothing more.
    np.testing.assert_allclose(out.quantiles.numpy(), ref["q"], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(out.estimate.numpy(), ref["estimate"], rtol=1e-4, atol=1e-4)
    assert np.isfinite(ref["estimate"]).all()


def sdpa_reference(layer: GroupAttention, x: torch.Tensor, now: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """The group attention as first written: keys and values of ``h + now`` per position, the "nobody"
    key and its zero value concatenated, ``scaled_dot_product_attention`` with a boolean mask."""
    b, g, s, d = x.shape
    h = layer.norm(x)
    kv = h + now[:, :, None, :]

    def heads(t: torch.Tensor) -> torch.Tensor:
        return t.permute(0, 2, 1, 3).reshape(b * s, g, layer.num_heads, layer.head_dim).transpose(1, 2)

    q, k, v = heads(layer.q_proj(h)), heads(layer.k_proj(kv)), heads(layer.v_proj(kv))
    nobody = layer.nobody_key[None, :, None, :].expand(b * s, -1, 1, -1)
    k = torch.cat([nobody, k], dim=2)
    v = torch.cat([torch.zeros_like(nobody), v], dim=2)
    others = present[:, None, :] & ~torch.eye(g, dtype=torch.bool)[None]
    allowed = torch.cat([torch.ones(b, g, 1, dtype=torch.bool), others], dim=-1)
    mask = allowed[:, None, None].expand(b, s, 1, g, g + 1).reshape(b * s, 1, g, g + 1)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    out = out.transpose(1, 2).reshape(b, s, g, d).permute(0, 2, 1, 3)
    mixed: torch.Tensor = x + layer.o_proj(out)
    return mixed


class Wrapped(nn.Module):
    """A projection that is not a plain ``nn.Linear`` (as a LoRA-wrapped one is not)."""

    def __init__(self, inner: nn.Linear) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.inner(x)
        return out


def random_layer() -> GroupAttention:
    torch.manual_seed(3)
    config = SentinelleTSConfig(d_model=32, num_heads=4, dropout=0.0, group_attention=True)
    layer = GroupAttention(config)
    with torch.no_grad():
        for p in layer.parameters():
            p.normal_(0, 0.3)
    return layer.eval()


@pytest.mark.parametrize("with_now", [True, False])
def test_the_written_out_group_attention_gives_the_sdpa_numbers(with_now: bool) -> None:
    layer = random_layer()
    b, g, s, d = 3, 5, 4, 32
    x = torch.randn(b, g, s, d)
    now = torch.randn(b, g, d) if with_now else torch.zeros(b, g, d)
    present = torch.tensor([[1, 1, 1, 1, 1], [1, 0, 1, 1, 0], [1, 0, 0, 0, 0]], dtype=torch.bool)
    with torch.no_grad():
        expected = sdpa_reference(layer, x, now, present)
        fast = layer(x, now if with_now else None, present)
        layer.q_proj = Wrapped(layer.q_proj)  # type: ignore[assignment]
        wrapped = layer(x, now if with_now else None, present)
    torch.testing.assert_close(fast, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(wrapped, expected, rtol=1e-5, atol=1e-5)
    # The lone tag (row 2) gets exactly nothing from the group: the "nobody" key's value is 0.
    torch.testing.assert_close(fast[2, 0], x[2, 0], rtol=0, atol=0)
    assert not math.isnan(float(fast.sum()))


def test_gradients_reach_the_projections_and_the_nobody_key() -> None:
    layer = random_layer().train()
    x = torch.randn(2, 4, 3, 32)
    out = layer(x, torch.randn(2, 4, 32), torch.ones(2, 4, dtype=torch.bool))
    out.square().mean().backward()
    for p in (layer.q_proj.weight, layer.k_proj.weight, layer.v_proj.weight, layer.nobody_key):
        assert p.grad is not None and float(p.grad.abs().sum()) > 0


@pytest.mark.parametrize("horizon", [1, 5])
def test_a_shorter_horizon_gives_the_full_forecasts_first_steps_and_the_same_estimate(horizon: int) -> None:
    ref = np.load(REFERENCE)
    model = in_eval_mode(SentinelleAssetModel.from_pretrained(SHIPPED_CHECKPOINT.parent / "asset"))
    inputs = {
        "input_ids": torch.from_numpy(ref["ids"].astype(np.int64)),
        "current": torch.from_numpy(ref["current"]),
        "tag_mask": torch.from_numpy(ref["tag_mask"]),
    }
    with torch.inference_mode():
        full = model(**inputs)
        short = model(**inputs, horizon=horizon)
    assert full.quantiles is not None and short.quantiles is not None
    assert full.estimate is not None and short.estimate is not None
    assert short.quantiles.shape == (*full.quantiles.shape[:-1], horizon)
    torch.testing.assert_close(short.quantiles, full.quantiles[..., :horizon], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(short.estimate, full.estimate, rtol=1e-5, atol=1e-5)


def test_a_layer_run_for_the_summary_token_alone_gives_its_output_in_the_full_layer() -> None:
    torch.manual_seed(5)
    config = SentinelleTSConfig(d_model=32, num_heads=4, d_ff=64, dropout=0.0)
    layer = SentinelleTSLayer(config).eval()
    x = torch.randn(3, 7, 32)
    key_mask = torch.ones(3, 1, 1, 7, dtype=torch.bool)
    key_mask[1, ..., :4] = False  # a window whose oldest patches are missing
    with torch.no_grad():
        full = layer(x, key_mask)
        summary = layer(x, key_mask, summary_only=True)
        unmasked = layer(x, torch.ones_like(key_mask), summary_only=True)
    assert summary.shape == (3, 1, 32)
    torch.testing.assert_close(summary, full[:, -1:], rtol=1e-6, atol=1e-6)
    assert not torch.allclose(unmasked[1], summary[1])  # the summary token reads the other tokens, as masked
