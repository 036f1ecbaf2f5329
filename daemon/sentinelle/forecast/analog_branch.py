"""The model's analog branch: the context's own matching patterns, copied forward.

Apart from :mod:`.model` (the transformer, its head and the mix of the branches), as the smoothing
branch is (:mod:`.smoothing`): a branch is one self-contained answer that the model's gates weigh,
with its own reasons and tests.  Importing this module imports torch.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:
    from .model import SentinelleTSConfig

__all__ = ["AnalogBranch"]


class AnalogBranch(nn.Module):
    """Forecast by analogy: where in the context did the latest pattern occur, and what came next?

    A differentiable nearest-neighbour ("analog") forecaster over single steps.  A
    causal convolution embeds the ``analog_window`` steps ending at every step
    ``t``; the embedding at the newest step is the query.  For horizon ``h`` the
    answer is the attention-weighted mean of ``x[t+h] - x[t] + x[T]`` over the
    steps ``t`` whose ``x[t+h]`` is in the context (the cycle copied forward, moved
    to the current level) — and of ``x[t+h]`` itself (the cycle's mean shape).  A
    gate read from the transformer's summary state mixes, per horizon step, the
    head's median with these two answers (``SentinelleTSModel._mix``); the head's
    quantile offsets keep the spread.

    Why: the patch transformer alone (1.1 M parameters, 25 k CPU steps) learned
    levels and trends but forecast a period-7 sine as a flat line — producing
    a cycle of any period and phase from one summary vector through an MLP is a
    lot to learn.  Copying is what attention does well, so the copy is made an
    explicit path and the transformer only has to decide how much to trust it.
    """

    def __init__(self, config: SentinelleTSConfig) -> None:
        super().__init__()
        self.window = config.analog_window
        self.horizon = config.horizon
        self.embed = nn.Conv1d(2, config.analog_dim, kernel_size=config.analog_window)
        self.project = nn.Linear(config.analog_dim, config.analog_dim)
        self.log_sharpness = nn.Parameter(torch.tensor(math.log(5.0)))
        self.gate = nn.Linear(config.d_model, 3 * config.horizon)

    def forward(
        self, state: torch.Tensor, values: torch.Tensor, observed: torch.Tensor, horizon: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Gate logits (B, H, 3) for [head, moved, shape], the two answers (B, H) and where they are usable.

        ``horizon``: H, the first steps only (default: the model's); the same numbers as theirs in the full answer.
        """
        b, length = values.shape
        h, w = min(horizon or self.horizon, self.horizon), self.window
        v = values.float()
        seen = (observed > 0).float()
        # The pattern ending at step t: its w values relative to x[t] (shape, not level), so a
        # cycle riding on a trend still matches itself; its distance to the newest pattern is
        # Σ_j weight_j ((x[t-j] - x[t]) - (x[T-j] - x[T]))².  Computed as (x[t-j] - x[T-j]) -
        # (x[t] - x[T]) in one (B, L, w) buffer updated in place and reduced by a matrix product:
        # the same sum to float32 rounding, 4× cheaper than a tensor per step of the expression.
        past = F.pad(v, (w - 1, 0)).unfold(1, w, 1)  # (B, L, w): x[t-w+1 .. t], a view
        query_seen = F.pad(seen, (w - 1, 0)).unfold(1, w, 1)[:, -1]  # (w,) per row, oldest first
        weight = query_seen / query_seen.sum(-1, keepdim=True).clamp(min=1.0)
        diff = past - past[:, -1:]
        diff.sub_((v - v[:, -1:])[:, :, None]).square_()
        distance = (diff @ weight[:, :, None])[..., 0]  # (B, L)
        # A learned correction of the distance (zero at init: plain nearest neighbours first).
        # The learned layers run in the model's dtype (bfloat16 on CUDA); the distances in float32.
        x = torch.stack([v, seen], dim=1).to(self.embed.weight.dtype)
        keys = self.project(F.gelu(self.embed(F.pad(x, (w - 1, 0))).transpose(1, 2))).float()  # (B, L, D)
        distance = distance + ((keys - keys[:, -1:]) ** 2).mean(-1)
        # Bounded logits in [-60, 0], so exp() neither overflows nor underflows in float32.
        logits = -60.0 * torch.tanh(self.log_sharpness.exp() * distance / 60.0)
        # A step t is a candidate when its whole window is observed; for horizon k it also needs x[t+k].
        window_seen = F.max_pool1d(1.0 - seen[:, None], w, 1)[:, 0] == 0  # (B, L-w+1)
        candidate = F.pad(window_seen, (w - 1, 0), value=False).float()
        e = torch.exp(logits) * candidate  # (B, L), softmax numerators
        # Σ_t a[t]·c[t+k] for k = 1..H, per row: a grouped correlation (no (B, L, H) tensor).  Not by
        # FFT: its round-off scales with the largest weight and swamps horizons whose matches are faint.
        kernels = torch.stack([e, e * v, candidate], dim=1).reshape(3 * b, 1, length)
        on_seen = F.conv1d(F.pad(seen, (0, h))[None], kernels, groups=b)[0].view(b, 3, h + 1)[:, :, 1:]
        ahead = F.conv1d(F.pad(v * seen, (0, h))[None], e[:, None], groups=b)[0][:, 1:]
        total, back, count = on_seen.unbind(1)  # (B, H) each
        usable = count > 0.5  # at least one candidate with its future observed
        denominator = torch.where(usable, total.clamp(min=1e-30), 1.0)
        shape = ahead / denominator
        last = _last_observed(v, seen > 0)
        moved = (ahead - back) / denominator + last[:, None]
        return self.gate(state).view(b, self.horizon, 3)[:, :h].float(), moved, shape, usable


def _last_observed(values: torch.Tensor, seen: torch.Tensor) -> torch.Tensor:
    """Newest observed value of each row (0 where none is)."""
    positions = torch.arange(values.shape[1], device=values.device).expand_as(values)
    newest = torch.where(seen, positions, -1).amax(dim=1)
    picked = values.float().gather(1, newest.clamp(min=0)[:, None])[:, 0]
    return torch.where(newest >= 0, picked, 0.0)
