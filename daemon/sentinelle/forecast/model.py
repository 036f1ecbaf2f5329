"""The forecasting model: a patch-based transformer encoder with a direct multi-quantile head.

Built in the manner of Chronos-Bolt and TimesFM rather than as a causal LM over
one token per step: on our 2-core CPU a Llama-type model reading one token per
step manages ~14 windows/s at context 512 (``shared/FACTS.md``); reading 16
steps per token cuts the sequence 16× and attention ~256×, and forecasting the
whole horizon and every quantile in one pass removes autoregressive decoding.

Data flow of :meth:`SentinelleTSModel.forward`::

    input_ids (B, L)         token ids from TSTokenizer, left-padded with 0 ("missing")
      → codebook             dequantised scaled values + observed mask
      → patches (B, N, 2P)   [values, mask] of P steps each
      → residual MLP         (B, N, d)  + learned positions, counted from the newest patch
      → + summary token      (B, N+1, d)
      → N_layers × pre-norm encoder layer (bidirectional attention; fully-missing patches
        are masked as keys so padding and long gaps do not change the answer)
      → summary state → residual MLP → (B, H, Q) raw
      → median mixed, per horizon step, by gates read from the summary state, with the
        analog branch's answers (the context's own matching patterns, copied forward,
        forecast/analog_branch.py) and the smoothing branch's (Holt–Winters experts fitted
        in context, forecast/smoothing.py)
      → median + cumulative softplus offsets → quantiles (B, Q, H), monotone in the level

Why a summary token rather than the last patch's state: there is always one
key that is never masked, so a window whose newest patches (or all patches) are
missing still gets a well-defined, finite forecast; and the head reads a state
whose only job is the forecast.  It costs one extra token of 33.

Positions are counted back from the newest patch, so a short context uses the
same positions for its recent past as a full one and left padding is free.

A training batch, for a series cut into a context ``x`` (B, L ≤ context_length)
and the ``horizon`` steps ``y`` (B, H) that follow it::

    enc = TSTokenizer(config.vocab_size, config.token_limit).encode(x)
    labels = TSTokenizer.scale_values(y, enc.loc, enc.scale)      # the context's loc/scale; NaN kept
    out = model(torch.from_numpy(enc.ids), labels=torch.from_numpy(labels).float())
    out.loss.backward()

The model is a :class:`~transformers.PreTrainedModel`, so peft can wrap it
(LoRA on ``q_proj``/``v_proj``, or ``up_proj``/``down_proj``), and it saves and
loads as ``config.json`` + ``model.safetensors``.  Importing this module imports
torch; :mod:`sentinelle.forecast` does not import it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from huggingface_hub.dataclasses import strict
from torch import nn
from transformers import AutoConfig, AutoModel, PreTrainedConfig, PreTrainedModel
from transformers import initialization as init
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.utils.generic import ModelOutput

from .analog_branch import AnalogBranch
from .smoothing import SmoothingBranch

DEFAULT_LEVELS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


@strict
class SentinelleTSConfig(PreTrainedConfig):
    """Shape of a sentinelle forecasting model; saved as ``config.json``.

    Lengths are in time steps (``context_length``, ``patch_length``, ``horizon``);
    ``token_limit`` is in units of the window's scale (see :mod:`.tokenizer`).
    """

    model_type = "sentinelle_ts"
    attribute_map = {  # noqa: RUF012  (the base class declares it a ClassVar)
        "hidden_size": "d_model",
        "num_hidden_layers": "num_layers",
        "num_attention_heads": "num_heads",
        "intermediate_size": "d_ff",
    }

    context_length: int = 512
    patch_length: int = 16
    horizon: int = 64
    quantile_levels: tuple[float, ...] | list[float] = DEFAULT_LEVELS
    d_model: int = 256
    num_layers: int = 4
    num_heads: int = 4
    d_ff: int = 1024
    dropout: float = 0.1
    vocab_size: int = 4096
    token_limit: float = 15.0
    initializer_range: float = 0.02
    norm_eps: float = 1e-5
    analog_window: int = 0
    """Steps of the pattern the analog branch matches (0: no analog branch; checkpoints before it)."""
    analog_dim: int = 32
    smoothing_max_period: int = 0
    """Longest season (steps) the exponential-smoothing branch looks for (0: no such branch)."""
    smoothing_window: int = 256
    """Newest steps of the context whose one-step errors choose among the smoothing experts."""
    smoothing_spread_floor: float = 0.0
    """Quantiles lie at least this × z_q × the smoothing branch's h-step σ from the median (0: off)."""
    group_attention: bool = False
    """The asset model (:mod:`.asset_model`): attention across an asset's tags after every time layer,
    the other tags' current values as covariates, and an estimate-now head (False: univariate only)."""
    regression_half_life: int = 0
    """Asset model: half-life (steps) of the in-context regression branch's weights (0: no such branch)."""

    def __post_init__(self, **kwargs: Any) -> None:
        # JSON brings the levels back as a list; the model indexes them as a tuple.
        self.quantile_levels = tuple(float(q) for q in self.quantile_levels)
        super().__post_init__(**kwargs)

    def validate_architecture(self) -> None:
        """Reject shapes the model cannot be built with (called by transformers' strict validation)."""
        problems = []
        if self.patch_length < 1 or self.context_length < self.patch_length:
            problems.append(f"context_length ({self.context_length}) must be ≥ patch_length ({self.patch_length}) ≥ 1")
        elif self.context_length % self.patch_length:
            problems.append(
                f"context_length ({self.context_length}) must be a multiple of patch_length ({self.patch_length})"
            )
        if self.horizon < 1:
            problems.append(f"horizon must be ≥ 1, got {self.horizon}")
        if self.num_heads < 1 or self.d_model % self.num_heads:
            problems.append(f"d_model ({self.d_model}) must be a multiple of num_heads ({self.num_heads})")
        if min(self.num_layers, self.d_ff, self.d_model) < 1:
            problems.append("d_model, d_ff and num_layers must be ≥ 1")
        levels = tuple(self.quantile_levels)
        if not levels or list(levels) != sorted(set(levels)) or not all(0 < q < 1 for q in levels):
            problems.append(f"quantile_levels must be strictly increasing in (0, 1), got {list(levels)}")
        elif 0.5 not in levels:
            problems.append(f"quantile_levels must contain 0.5 (the median anchors the head), got {list(levels)}")
        if self.vocab_size < 3 or self.vocab_size % 2:
            problems.append(f"vocab_size must be even and ≥ 4 (0 is 'missing'), got {self.vocab_size}")
        if not self.token_limit > 0:
            problems.append(f"token_limit must be > 0, got {self.token_limit}")
        if self.analog_window < 0 or (
            self.analog_window and (self.analog_dim < 1 or self.analog_window >= self.context_length)
        ):
            problems.append(
                f"analog_window must be 0 or in [1, context_length) with analog_dim ≥ 1, got {self.analog_window}"
            )
        if self.smoothing_max_period < 0 or self.smoothing_max_period == 1:
            problems.append(f"smoothing_max_period must be 0 (no branch) or ≥ 2, got {self.smoothing_max_period}")
        if not self.smoothing_spread_floor >= 0:
            problems.append(f"smoothing_spread_floor must be ≥ 0, got {self.smoothing_spread_floor}")
        if self.smoothing_window < 1:
            problems.append(f"smoothing_window must be ≥ 1, got {self.smoothing_window}")
        if self.regression_half_life < 0 or (self.regression_half_life and not self.group_attention):
            problems.append(
                f"regression_half_life must be 0, or ≥ 1 with group_attention, got {self.regression_half_life}"
            )
        if not 0 <= self.dropout < 1:
            problems.append(f"dropout must be in [0, 1), got {self.dropout}")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def num_patches(self) -> int:
        """Patches in a full context."""
        return self.context_length // self.patch_length


@dataclass
class SentinelleTSOutput(ModelOutput):
    """What :meth:`SentinelleTSModel.forward` returns."""

    loss: torch.Tensor | None = None
    """Mean pinball loss over observed labels and all levels (scalar), when labels are given."""
    quantiles: torch.Tensor | None = None
    """Shape (B, Q, H), float32, in the window's scaled space (see ``TSTokenizer.unscale``)."""


def codebook(vocab_size: int, limit: float) -> torch.Tensor:
    """Scaled value of every token id, as ``TSTokenizer.centers`` (id 0, missing, → 0)."""
    width = 2.0 * limit / (vocab_size - 1)
    centers = -limit + (torch.arange(vocab_size, dtype=torch.float64) - 0.5) * width
    centers[0] = 0.0
    return centers.to(torch.float32)


class ResidualBlock(nn.Module):
    """Two-layer MLP with a linear skip connection (TimesFM's input and output blocks)."""

    def __init__(self, d_in: int, d_hidden: int, d_out: int, dropout: float) -> None:
        super().__init__()
        self.hidden_layer = nn.Linear(d_in, d_hidden)
        self.output_layer = nn.Linear(d_hidden, d_out)
        self.residual_layer = nn.Linear(d_in, d_out)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.residual_layer(x) + self.dropout(self.output_layer(F.silu(self.hidden_layer(x))))
        return out


class SentinelleTSAttention(nn.Module):
    """Multi-head self-attention over patches, on ``scaled_dot_product_attention``."""

    def __init__(self, config: SentinelleTSConfig) -> None:
        super().__init__()
        d = config.d_model
        self.num_heads = config.num_heads
        self.head_dim = d // config.num_heads
        self.dropout = config.dropout
        self.q_proj = nn.Linear(d, d, bias=False)
        self.k_proj = nn.Linear(d, d, bias=False)
        self.v_proj = nn.Linear(d, d, bias=False)
        self.o_proj = nn.Linear(d, d, bias=False)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor, summary_only: bool = False) -> torch.Tensor:
        """Tokens (B, S, d) → attention outputs (B, S, d); with ``summary_only`` for the last token alone
        (B, 1, d): it still reads every token as a key and value, but is the only query."""
        b, d = x.shape[0], x.shape[2]

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.view(b, t.shape[1], self.num_heads, self.head_dim).transpose(1, 2)

        out = F.scaled_dot_product_attention(
            heads(self.q_proj(x[:, -1:] if summary_only else x)),
            heads(self.k_proj(x)),
            heads(self.v_proj(x)),
            attn_mask=key_mask,
            dropout_p=self.dropout if self.training else 0.0,
        )
        projected: torch.Tensor = self.o_proj(out.transpose(1, 2).reshape(b, out.shape[2], d))
        return projected


class SentinelleTSMLP(nn.Module):
    def __init__(self, config: SentinelleTSConfig) -> None:
        super().__init__()
        self.up_proj = nn.Linear(config.d_model, config.d_ff)
        self.down_proj = nn.Linear(config.d_ff, config.d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.down_proj(F.gelu(self.up_proj(x)))
        return out


class SentinelleTSLayer(GradientCheckpointingLayer):
    """Pre-norm encoder layer: x + attention(norm(x)), then x + MLP(norm(x))."""

    def __init__(self, config: SentinelleTSConfig) -> None:
        super().__init__()
        self.attention_norm = nn.RMSNorm(config.d_model, eps=config.norm_eps)
        self.self_attn = SentinelleTSAttention(config)
        self.mlp_norm = nn.RMSNorm(config.d_model, eps=config.norm_eps)
        self.mlp = SentinelleTSMLP(config)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor, summary_only: bool = False) -> torch.Tensor:
        """Tokens (B, S, d) → (B, S, d); with ``summary_only`` only the last (summary) token's output (B, 1, d).

        Why ``summary_only``: the forecast reads the summary token alone, so after the last layer the
        other tokens' outputs are never used; that layer still needs every token's keys and values but
        only one query, one output projection and one MLP row per window — the same numbers for the
        summary token, a quarter of the encoder's work saved at three layers (its MLP is most of a layer).
        """
        attended = self.self_attn(self.attention_norm(x), key_mask, summary_only)
        x = (x[:, -1:] if summary_only else x) + self.dropout(attended)
        out: torch.Tensor = x + self.dropout(self.mlp(self.mlp_norm(x)))
        return out


class SentinelleTSPreTrainedModel(PreTrainedModel):
    config: SentinelleTSConfig
    config_class = SentinelleTSConfig
    base_model_prefix = "model"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    _no_split_modules = ["SentinelleTSLayer"]  # noqa: RUF012  (transformers declares it a plain class attribute)

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, SentinelleTSModel):
            # Neither is a standard layer transformers knows: the summary token is a bare
            # parameter, and the codebook is a buffer left empty when loading on the meta device.
            init.normal_(module.summary_token, mean=0.0, std=self.config.initializer_range)
            init.copy_(module.codebook, codebook(self.config.vocab_size, self.config.token_limit))
        if isinstance(module, AnalogBranch):
            # Start almost closed: a warm-started model first behaves like the checkpoint it came from.
            init.zeros_(module.gate.weight)
            init.copy_(module.gate.bias, torch.tensor([1.0, 0.0, 0.0]).repeat(self.config.horizon))
            init.zeros_(module.project.weight)
            init.zeros_(module.project.bias)
            init.constant_(module.log_sharpness, math.log(5.0))
        if isinstance(module, SmoothingBranch):
            init.zeros_(module.gate.weight)
            init.zeros_(module.gate.bias)
            init.constant_(module.log_temperature, math.log(20.0))


class SentinelleTSModel(SentinelleTSPreTrainedModel):
    """Token ids of a context in, quantiles of the next ``horizon`` steps out (scaled space).

    >>> config = SentinelleTSConfig(context_length=32, patch_length=8, horizon=4, d_model=16,
    ...                             num_layers=1, num_heads=2, d_ff=32, vocab_size=64)
    >>> model = SentinelleTSModel(config).eval()
    >>> out = model(torch.randint(1, 64, (3, 32)), labels=torch.zeros(3, 4))
    >>> tuple(out.quantiles.shape), bool((out.quantiles.diff(dim=1) > 0).all()), out.loss.ndim
    ((3, 9, 4), True, 0)
    """

    codebook: torch.Tensor

    def __init__(self, config: SentinelleTSConfig) -> None:
        super().__init__(config)
        d, p = config.d_model, config.patch_length
        self.register_buffer("codebook", codebook(config.vocab_size, config.token_limit), persistent=False)
        self.patch_embedding = ResidualBlock(2 * p, config.d_ff, d, config.dropout)
        self.position_embedding = nn.Embedding(config.num_patches, d)
        self.summary_token = nn.Parameter(torch.zeros(d))
        self.layers = nn.ModuleList([SentinelleTSLayer(config) for _ in range(config.num_layers)])
        self.norm = nn.RMSNorm(d, eps=config.norm_eps)
        levels = tuple(config.quantile_levels)
        self.median_index = levels.index(0.5)
        self.head = ResidualBlock(d, config.d_ff, config.horizon * len(levels), config.dropout)
        self.analog = AnalogBranch(config) if config.analog_window else None
        self.smoothing = (
            SmoothingBranch(d, config.horizon, config.smoothing_max_period, config.smoothing_window)
            if config.smoothing_max_period
            else None
        )
        self.levels = levels
        self.smoothing_share: torch.Tensor | None = None
        """Per horizon step, the least share of the smoothing answer in the median (None: the gates' own
        weights); set at inference by :class:`~.engine.ModelForecaster`, never trained."""
        self._add_modules(config)
        self.post_init()

    def _add_modules(self, config: SentinelleTSConfig) -> None:
        """Where a subclass adds its own modules (:mod:`.asset_model`), so ``post_init`` initialises them."""

    def param_count(self, trainable_only: bool = False) -> int:
        """Number of parameters (all, or only those that require gradients)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    def forward(
        self,
        input_ids: torch.Tensor,
        labels: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> SentinelleTSOutput:
        """Quantiles (B, Q, H) of the next H steps; with ``labels`` (B, ≤H) also their pinball loss.

        ``input_ids`` (B, L ≤ context_length) are padded on the left with id 0 up to
        a multiple of ``patch_length`` if needed.  ``labels`` are the future values in
        the context's scaled space (``TSTokenizer.scale_values``); NaN is ignored.
        Extra keyword arguments (e.g. ``attention_mask`` from a generic collator) are
        ignored: missing values are already id 0.
        """
        if input_ids.ndim != 2:
            raise ValueError(f"input_ids must have shape (batch, length), got {tuple(input_ids.shape)}")
        x, key_mask, values, observed = self._embed(input_ids)
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x = layer(x, key_mask, summary_only=i == last)  # the head reads the summary token alone
        _state, raw, sigma = self._answer(x, values, observed)
        quantiles = self._quantiles(raw, sigma)
        loss = None if labels is None else pinball_loss(quantiles, labels, self.levels)
        return SentinelleTSOutput(loss=loss, quantiles=quantiles)

    def _embed(self, input_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Token ids (B, L) → tokens (B, N+1, d) with the summary token last, their key mask
        (B, 1, 1, N+1), and the dequantised values and observed mask (B, N, P) of the patches."""
        cfg = self.config
        batch, length = input_ids.shape
        if length > cfg.context_length:
            raise ValueError(f"input_ids has {length} steps, more than context_length {cfg.context_length}")
        pad = (-length) % cfg.patch_length
        if pad or length == 0:
            input_ids = F.pad(input_ids, (pad or cfg.patch_length, 0), value=0)
        num_patches = input_ids.shape[1] // cfg.patch_length

        dtype = self.position_embedding.weight.dtype
        observed = (input_ids != 0).to(dtype).view(batch, num_patches, cfg.patch_length)
        values = self.codebook[input_ids].to(dtype).view(batch, num_patches, cfg.patch_length)
        x = self.patch_embedding(torch.cat([values, observed], dim=-1))
        x = x + self.position_embedding.weight[cfg.num_patches - num_patches :]
        x = torch.cat([x, self.summary_token.to(dtype).expand(batch, 1, -1)], dim=1)

        # True = may be attended to.  The summary token is always a valid key, so no
        # row of the attention is fully masked (which would give NaN).
        key_mask = torch.cat(
            [observed.amax(dim=-1) > 0, torch.ones(batch, 1, dtype=torch.bool, device=x.device)], dim=1
        )[:, None, None, :]
        return x, key_mask, values, observed

    def _answer(
        self, x: torch.Tensor, values: torch.Tensor, observed: torch.Tensor, horizon: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Encoded tokens → the summary state (B, d), the free head outputs (B, H, Q) with the
        branches mixed into the median, and the smoothing branch's σ (B, H) if there is one.

        ``horizon``: only the first steps (the asset model's estimate of now needs one); the same
        numbers as the full answer's first steps, without the analog branch's look-ahead for the rest.
        """
        batch = x.shape[0]
        state = self.norm(x[:, -1])
        raw = self.head(state).view(batch, self.config.horizon, -1)[:, :horizon].float()
        sigma = None
        if self.analog is not None or self.smoothing is not None:
            raw, sigma = self._mix(state, values.reshape(batch, -1), observed.reshape(batch, -1), raw)
        return state, raw, sigma

    def _quantiles(self, raw: torch.Tensor, sigma: torch.Tensor | None) -> torch.Tensor:
        """Free outputs (B, H, Q) → quantiles (B, Q, H): monotone, and at least the spread floor apart."""
        quantiles = self._monotone(raw)
        if sigma is not None and self.config.smoothing_spread_floor > 0:
            quantiles = self._spread_floor(quantiles, self.config.smoothing_spread_floor * sigma)
        return quantiles.transpose(1, 2)

    def _mix(
        self, state: torch.Tensor, values: torch.Tensor, observed: torch.Tensor, raw: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``raw`` (B, H, Q) with its median replaced by the gated mix of the head and the branches' answers
        (H: the model's horizon or fewer, the first steps).

        One softmax per horizon step over the head (logit 0 without the analog
        branch), the analog branch's two answers and the smoothing answer; an
        answer a row cannot give (no usable analog, no observed history) gets no weight.
        Also returns the smoothing branch's h-step σ (B, H), when there is that branch.
        """
        b, h = raw.shape[0], raw.shape[1]
        m = self.median_index
        answers = [raw[..., m]]
        logits = [torch.zeros(b, h, 1, device=raw.device)]
        usable = [torch.ones(b, h, dtype=torch.bool, device=raw.device)]
        if self.analog is not None:
            gate, moved, shape, can = self.analog(state, values, observed, h)
            answers += [moved, shape]
            logits = [gate]
            usable += [can, can]
        sigma = None
        if self.smoothing is not None:
            smooth = self.smoothing(state, values, observed)
            answers.append(smooth.forecast[:, :h])
            logits.append(smooth.logit[:, :h, None])
            usable.append(smooth.usable[:, None].expand(b, h))
            sigma = smooth.sigma[:, :h]
        weights = torch.softmax(torch.where(torch.stack(usable, -1), torch.cat(logits, -1).float(), -math.inf), -1)
        if self.smoothing is not None and self.smoothing_share is not None:
            weights = self._share_smoothing(weights, usable[-1])
        mixed = (weights * torch.stack(answers, -1)).sum(-1)
        return torch.cat([raw[..., :m], mixed[..., None], raw[..., m + 1 :]], dim=-1), sigma

    def _share_smoothing(self, weights: torch.Tensor, usable: torch.Tensor) -> torch.Tensor:
        """Weights (B, H, A) of the mix with the smoothing answer (last) given at least the share
        :attr:`smoothing_share` of step h, where that answer is usable: ``(1 − s_h) · w + s_h · smoothing``.

        Why: the gates learnt their trust on the pretraining mix; on held-apart validation data
        (``bench/forecast_validation.py``) the first steps' medians were better with more of the
        in-context Holt–Winters answer than the gates give it (noisy sensors, daily load).
        """
        assert self.smoothing_share is not None
        h = weights.shape[1]
        share = torch.zeros(h, device=weights.device)
        given = self.smoothing_share[:h].to(weights.device, torch.float32)
        share[: given.shape[0]] = given
        share = torch.where(usable, share[None, :], 0.0)[..., None]  # (B, H, 1)
        smoothing = F.one_hot(torch.tensor(weights.shape[-1] - 1), weights.shape[-1]).to(weights)
        return weights * (1.0 - share) + share * smoothing

    def _spread_floor(self, quantiles: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """(B, H, Q) quantiles pushed out to at least |z_q| σ (B, H) from the median, where narrower.

        Why: the head learnt its spread on the pretraining mix and is too narrow on noisy
        plant sensors (80 % coverage 0.6–0.7 on SKAB and the chiller); the series' own
        one-step errors give the spread exponential smoothing would quote, as ETS's
        prediction intervals do.  Only widens; |z_q| grows away from the median, so the
        order of the quantiles is kept.
        """
        levels = torch.tensor(self.levels, dtype=torch.float64)
        z = (torch.special.ndtri(levels).abs().float()).to(quantiles.device)  # (Q,)
        median = quantiles[..., self.median_index : self.median_index + 1]
        offset = (quantiles - median).abs()
        floor = z[None, None, :] * sigma[..., None]
        return median + torch.sign(levels - 0.5).float().to(quantiles.device) * torch.maximum(offset, floor)

    def _monotone(self, raw: torch.Tensor) -> torch.Tensor:
        """(B, H, Q) free outputs → quantiles non-decreasing in the level, by construction.

        The median is free; each level above adds a softplus (≥ 0) step to the one
        below it, each level below subtracts one, so quantiles never cross.
        """
        m = self.median_index
        median = raw[..., m : m + 1]
        upper = median + torch.cumsum(F.softplus(raw[..., m + 1 :]), dim=-1)
        lower = median - torch.cumsum(F.softplus(raw[..., :m].flip(-1)), dim=-1).flip(-1)
        return torch.cat([lower, median, upper], dim=-1)


def pinball_loss(quantiles: torch.Tensor, labels: torch.Tensor, levels: tuple[float, ...]) -> torch.Tensor:
    """Mean quantile (pinball) loss of ``quantiles`` (B, Q, H) against ``labels`` (B, H' ≤ H).

    Averaged over observed (non-NaN) label steps and over levels; twice it
    approximates the CRPS.  Its gradient is bounded by max(q, 1-q), so a label far
    outside the context's range (a scaled value of 1e6 after a flat context) cannot
    blow up training, only the reported value.
    """
    if labels.ndim != 2 or labels.shape[0] != quantiles.shape[0] or labels.shape[1] > quantiles.shape[2]:
        raise ValueError(
            f"labels must have shape (batch, ≤ {quantiles.shape[2]}), got {tuple(labels.shape)} "
            f"for quantiles {tuple(quantiles.shape)}"
        )
    q = quantiles[..., : labels.shape[1]].float()
    y = labels.to(device=q.device, dtype=torch.float32)
    observed = ~torch.isnan(y)
    diff = torch.where(observed, y, 0.0)[:, None, :] - q
    tau = torch.tensor(levels, dtype=torch.float32, device=q.device)[None, :, None]
    loss = torch.maximum(tau * diff, (tau - 1.0) * diff) * observed[:, None, :]
    denominator = observed.sum() * q.shape[1]
    return loss.sum() / denominator.clamp(min=1)


AutoConfig.register(SentinelleTSConfig.model_type, SentinelleTSConfig, exist_ok=True)
AutoModel.register(SentinelleTSConfig, SentinelleTSModel, exist_ok=True)
