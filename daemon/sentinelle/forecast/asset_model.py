"""The asset model (issue 14): an asset's tags encoded together, each tag also estimated from the others *now*.

:class:`SentinelleAssetModel` is :class:`~.model.SentinelleTSModel` (same
config type with ``group_attention=True``, same blocks and weights names) plus:

* **group attention** after every time layer: at each patch position (and at the
  summary token) a tag's token attends to the *other* present tags' tokens at that
  position — Chronos-2's group attention, alternating with attention over time;
* **the other tags' current values as known covariates**: each tag's value at the
  newest instant (scaled with its own window's loc/scale) is embedded and added to
  that tag's keys and values in the *last* group attention layer only, so a tag never
  sees its own current value: it is not a key of its own query, the time layers never
  read it, and no later group layer could pass it back through another tag's token
  (with covariates in every group layer, tag 0's value would reach tag 1 in layer 1
  and come back to tag 0 in layer 2 — ``tests/unit/test_asset_model.py`` catches that);
* **an estimate-now head**: quantiles of each tag's current value, the first
  forecast step plus a correction read from the summary state (zero at
  initialisation, so a warm-started model first answers with its 1-step forecast);
  with ``regression_half_life`` its median is mixed, by a learned gate, with the
  in-context regression of the tag on the others now (:mod:`.regression_branch`).

Data flow of :meth:`SentinelleAssetModel.forward`::

    input_ids (B, G, L)  each tag's context, tokenised alone      current (B, G) scaled, NaN unknown
      → embed per tag (B·G, N+1, d)                               → now embedding (B, G, d)
      → N × [time layer (per tag), group attention (per position; a tag is not its own key;
             a learned "nobody" key with value 0 is always there; the last one's keys and
             values + the now embedding)]
      → forecast head and branches as the univariate model       → quantiles (B, G, Q, H)
      → first step + now head(state)                             → estimate (B, G, Q)

Why the "nobody" key with a zero value rather than self-attention including the
tag itself: with one tag (or all others absent) the group layer adds exactly
zero, so ``G = 1`` *is* the univariate model, bit for bit — one checkpoint serves
both uses and warm-starting from the shipped weights changes nothing until the
group layers learn something.  A tag marked absent (``tag_mask`` False) is not a
key for anyone, so it cannot change the other tags' answers.

Cost: the time layers, branches and head of the univariate model, plus two group layers over every
patch position (each about half a time layer, a third of it the copies that put the tags of one
position side by side) and one for the summary token alone: the heads read nothing else, so the
last time layer and its group layer run for that token (:class:`~.model.SentinelleTSLayer`), and the
estimate asks for one forecast step (``horizon=1``).  Per tag 0.87× the univariate model's time at
1,000 tags on one thread in 128-row passes, 1.13× at 100 tags, 1.24× on two threads in one pass
(alternating passes, loaded 2-core machine, 2026-12-07; docs/benchmarks/forecast-speed.md,
``bench/forecast_speed.py``).

Tags carry no identity embedding: the model must read a tag's role from its
data and its relations (what a pretrained model can transfer across plants);
an asset's fine-tuning (LoRA, issue 14 step 3) is where names could come in.

>>> config = SentinelleTSConfig(context_length=32, patch_length=8, horizon=4, d_model=16, num_layers=1,
...                             num_heads=2, d_ff=32, vocab_size=64, group_attention=True)
>>> model = SentinelleAssetModel(config).eval()
>>> out = model(torch.randint(1, 64, (2, 3, 32)), current=torch.zeros(2, 3), labels=torch.zeros(2, 3, 4))
>>> tuple(out.quantiles.shape), tuple(out.estimate.shape), out.loss.ndim
((2, 3, 9, 4), (2, 3, 9), 0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import initialization as init
from transformers.utils.generic import ModelOutput

from .model import ResidualBlock, SentinelleTSConfig, SentinelleTSModel, pinball_loss
from .regression_branch import RegressionBranch


@dataclass
class SentinelleAssetOutput(ModelOutput):
    """What :meth:`SentinelleAssetModel.forward` returns (scaled space of each tag's window)."""

    loss: torch.Tensor | None = None
    """Forecast pinball loss + estimate-now pinball loss (scalar), when labels are given."""
    quantiles: torch.Tensor | None = None
    """Shape (B, G, Q, H): each tag's forecast of the next H steps (step 1 is "now")."""
    estimate: torch.Tensor | None = None
    """Shape (B, G, Q): each tag's current value estimated from its past and the other tags now."""
    forecast_loss: torch.Tensor | None = None
    estimate_loss: torch.Tensor | None = None


class GroupAttention(nn.Module):
    """Pre-norm attention across the tags of an asset, per patch position; a tag is not its own key."""

    def __init__(self, config: SentinelleTSConfig) -> None:
        super().__init__()
        d = config.d_model
        self.num_heads = config.num_heads
        self.head_dim = d // config.num_heads
        self.dropout = config.dropout
        self.norm = nn.RMSNorm(d, eps=config.norm_eps)
        self.q_proj = nn.Linear(d, d, bias=False)
        self.k_proj = nn.Linear(d, d, bias=False)
        self.v_proj = nn.Linear(d, d, bias=False)
        self.o_proj = nn.Linear(d, d, bias=False)
        self.nobody_key = nn.Parameter(torch.zeros(config.num_heads, self.head_dim))
        """Key of "no other tag", always attendable; its value is 0 (a lone tag gets exactly nothing)."""
        self.out_dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, now: torch.Tensor | None, present: torch.Tensor) -> torch.Tensor:
        """Tokens (B, G, S, d), now embeddings (B, G, d) or None (none), present tags (B, G) → tokens (B, G, S, d).

        The attention is written out rather than handed to ``scaled_dot_product_attention``:
        with G ≈ 8 keys per query it is B·S·heads tiny problems, and the "nobody" key, whose value
        is 0, then costs one dot product per query instead of a concatenated key and value (copies
        of every token).  Same numbers to float32 rounding (``tests/unit/test_asset_speed.py``).
        """
        b, g, s, d = x.shape
        h = self.norm(x)
        q, k, v = self._project(h, now)  # (B, S, heads, G, head_dim) each; q already scaled
        others = present[:, None, :] & ~torch.eye(g, dtype=torch.bool, device=x.device)[None]  # (B, G, G)
        scores = (q @ k.transpose(-1, -2)).masked_fill(~others[:, None, None], -math.inf)  # (B, S, heads, G, G)
        nobody = q @ self.nobody_key.to(q.dtype)[:, :, None]  # (B, S, heads, G, 1): always a key, value 0
        top = torch.maximum(scores.amax(dim=-1, keepdim=True), nobody)
        weights = torch.exp(scores - top)
        weights = weights / (weights.sum(dim=-1, keepdim=True) + torch.exp(nobody - top))
        weights = F.dropout(weights, self.dropout, self.training)
        out = (weights @ v).permute(0, 3, 1, 2, 4).reshape(b, g, s, d)
        mixed: torch.Tensor = x + self.out_dropout(self.o_proj(out))
        return mixed

    def _project(self, h: torch.Tensor, now: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Queries (scaled by 1/√head_dim), keys and values, each (B, S, heads, G, head_dim).

        Keys and values read ``h + now``; as the projections are linear, that is the projection of
        ``h`` plus the projection of ``now`` (B, G, d), made once per tag rather than per position,
        and q, k, v of ``h`` come from one matrix product.  Projections wrapped by an adapter (LoRA
        on ``q_proj`` / ``v_proj``) are called as modules instead, so the adapter takes part.
        """
        b, g, s, d = h.shape
        scale = 1.0 / math.sqrt(self.head_dim)
        projections = (self.q_proj, self.k_proj, self.v_proj)
        if all(type(p) is nn.Linear for p in projections):
            weight = torch.cat([self.q_proj.weight * scale, self.k_proj.weight, self.v_proj.weight])
            qkv = F.linear(h, weight)  # (B, G, S, 3d)
            if now is not None:
                qkv[..., d:] += F.linear(now.to(h.dtype), weight[d:])[:, :, None]
        else:
            kv = h if now is None else h + now[:, :, None, :].to(h.dtype)
            qkv = torch.cat([self.q_proj(h) * scale, self.k_proj(kv), self.v_proj(kv)], dim=-1)
        heads = qkv.view(b, g, s, 3, self.num_heads, self.head_dim).permute(3, 0, 2, 4, 1, 5)
        q, k, v = heads.unbind(0)
        return q, k, v


class SentinelleAssetModel(SentinelleTSModel):
    """An asset's tags (B, G, L) in; per tag the forecast (B, G, Q, H) and the estimate of now (B, G, Q) out."""

    def _add_modules(self, config: SentinelleTSConfig) -> None:
        if not config.group_attention:
            raise ValueError("SentinelleAssetModel needs a config with group_attention=True")
        d = config.d_model
        self.group_layers = nn.ModuleList([GroupAttention(config) for _ in range(config.num_layers)])
        self.now_embedding = ResidualBlock(2, d, d, config.dropout)
        self.now_head = ResidualBlock(d, config.d_ff, len(config.quantile_levels), config.dropout)
        self.regression = RegressionBranch(d, config.regression_half_life) if config.regression_half_life else None

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, GroupAttention):
            # Zero output: a warm-started model first answers as the univariate checkpoint did.
            init.zeros_(module.o_proj.weight)
            init.normal_(module.nobody_key, mean=0.0, std=self.config.initializer_range)
        if isinstance(module, RegressionBranch):
            # Start leaning on the head (weight ~0.12 for the regression): a warm start moves little at first.
            init.zeros_(module.gate.weight)
            init.constant_(module.gate.bias, -2.0)
        if module is getattr(self, "now_head", None):
            init.zeros_(module.output_layer.weight)
            init.zeros_(module.output_layer.bias)
            init.zeros_(module.residual_layer.weight)
            init.zeros_(module.residual_layer.bias)

    def forward(  # type: ignore[override]
        self,
        input_ids: torch.Tensor,
        current: torch.Tensor | None = None,
        tag_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        horizon: int | None = None,
        **kwargs: Any,
    ) -> SentinelleAssetOutput:
        """Forecasts and estimates of now; with ``labels`` (B, G, ≤H) also their pinball losses.

        ``input_ids`` (B, G, L) — or (B, L), one tag per row — are each tag's context
        tokenised alone (its own loc/scale).  ``current`` (B, G) is each tag's value at
        the newest instant (the first forecast step) scaled with that tag's loc/scale,
        NaN where unknown; a tag's own ``current`` never reaches its own answers.
        ``tag_mask`` (B, G) marks present tags (default all); absent tags are nobody's
        key, their own answers are meaningless and excluded from the loss.
        ``labels`` are the future in the scaled space, step 1 being the current value.
        ``horizon``: forecast only the first steps (None: the model's; the estimate of now needs 1) —
        the same numbers as the full forecast's first steps, the analog branch's look-ahead saved.
        """
        if input_ids.ndim == 2:
            input_ids = input_ids[:, None]
            current = None if current is None else current.reshape(-1, 1)
            tag_mask = None if tag_mask is None else tag_mask.reshape(-1, 1)
            labels = None if labels is None else labels[:, None]
        if input_ids.ndim != 3:
            raise ValueError(f"input_ids must have shape (batch, tags, length), got {tuple(input_ids.shape)}")
        b, g, length = input_ids.shape
        cfg = self.config
        present = torch.ones(b, g, dtype=torch.bool, device=input_ids.device) if tag_mask is None else tag_mask.bool()
        x, key_mask, values, observed = self._embed(input_ids.reshape(b * g, length))
        dtype = x.dtype
        if current is None:
            current = torch.full((b, g), float("nan"), device=x.device)
        known = torch.isfinite(current) & present
        value = torch.where(known, current.float(), 0.0).clamp(-cfg.token_limit, cfg.token_limit)
        now = self.now_embedding(torch.stack([value, known.float()], dim=-1).to(dtype))  # (B, G, d)
        d = x.shape[2]
        last = len(self.layers) - 1
        for i, (layer, group) in enumerate(zip(self.layers, self.group_layers, strict=True)):
            # After the last time layer only the summary token is read (group attention is per
            # position, the heads read the summary state): that layer and its group layer run for it alone.
            x = layer(x, key_mask, summary_only=i == last)
            s = x.shape[1]
            # Current values enter the last group layer only: from an earlier one, tag h's token
            # would carry tag g's current value back to tag g in the next group layer.
            x = group(x.view(b, g, s, d), now if i == last else None, present).reshape(b * g, s, d)
        state, raw, sigma = self._answer(x, values, observed, horizon)
        quantiles = self._quantiles(raw, sigma)  # (B·G, Q, H)
        now_raw = raw[:, :1] + self.now_head(state).float()[:, None, :]
        if self.regression is not None:
            reg = self.regression(
                state.view(b, g, -1),
                values.reshape(b, g, -1),
                observed.reshape(b, g, -1) > 0,
                torch.where(present, current, float("nan")),
                present,
            )
            now_raw = self._mix_now(now_raw, reg.estimate.reshape(-1), reg.logit.reshape(-1), reg.usable.reshape(-1))
        estimate = self._quantiles(now_raw, None if sigma is None else sigma[:, :1])  # (B·G, Q, 1)
        out = SentinelleAssetOutput(
            quantiles=quantiles.view(b, g, *quantiles.shape[1:]), estimate=estimate[..., 0].view(b, g, -1)
        )
        if labels is not None:
            y = torch.where(present[..., None], labels.float(), float("nan")).reshape(b * g, -1)
            out.forecast_loss = pinball_loss(quantiles, y, self.levels)
            out.estimate_loss = pinball_loss(estimate, y[:, :1], self.levels)
            out.loss = out.forecast_loss + out.estimate_loss
        return out

    def _mix_now(
        self, now_raw: torch.Tensor, estimate: torch.Tensor, logit: torch.Tensor, usable: torch.Tensor
    ) -> torch.Tensor:
        """``now_raw`` (B·G, 1, Q) with its median replaced by the gated mix of the head's and the regression's."""
        m = self.median_index
        logits = torch.stack([torch.zeros_like(logit), torch.where(usable, logit, -math.inf)], dim=-1)
        weights = torch.softmax(logits, dim=-1)
        mixed = weights[:, 0] * now_raw[:, 0, m] + weights[:, 1] * torch.where(usable, estimate, 0.0)
        return torch.cat([now_raw[..., :m], mixed[:, None, None], now_raw[..., m + 1 :]], dim=-1)
