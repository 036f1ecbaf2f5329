"""The asset model's regression branch: each tag regressed on the others over the context, applied to the others now.

Why: the classic virtual sensor — a linear regression of a tag on the asset's
other tags at the same instant — beats every univariate forecaster at
estimating a coupled tag's current value (chiller: MASE 0.54 against 0.77 for
AutoETS's 1-step forecast, ``bench/forecast_accuracy.py``), and a transformer
trained for minutes on a CPU does not learn to solve a least-squares problem in
its activations.  As the analog and smoothing branches do for copying and
smoothing, the computation is made an explicit path, and the network learns
only how far to trust it (a gate read from the tag's summary state and from the
fit's own quality).

What it computes per group, in each tag's scaled space, without parameters of
its own (under ``no_grad``, in float64):

* steps where every present tag is observed, weighted by recency
  (``0.5 ** (age / half_life)``);
* for each tag ``g``, ridge regression of ``g`` on the other present tags whose
  current value is known, every present tag's previous value (its own
  included: an ARX fit, so it is at least as good as "no change" and the
  others explain the step) and an intercept — one batched (2G+1)² solve;
* the fit applied to the other tags' current values and the newest context
  values: the estimate of ``g`` now (its own current value is never an input);
* features for the gate: log of the fit's in-context residual RMS over the
  tag's one-step RMS change (how much better than "no change" the fit is), log
  of that step RMS, and the share of the group used as predictors.

A tag without another present tag with a known current value, or with fewer
than ``min_weight`` (recency-weighted) complete steps, is marked unusable; the
caller then keeps the head's answer.

>>> branch = RegressionBranch(d_model=8, half_life=64)
>>> t = torch.linspace(0, 20, 129)
>>> a = torch.sin(t) + 0.01 * torch.randn(129, generator=torch.Generator().manual_seed(0))
>>> series = torch.stack([a, 2 * a + 1, torch.cos(t)])[None]            # (B=1, G=3, L+1): tag 1 = 2·tag 0 + 1
>>> values, current = series[..., :-1], series[..., -1].clone()
>>> truth = float(current[0, 1])
>>> current[0, 1] = float("nan")                                        # tag 1 now: unknown, to be estimated
>>> observed = torch.ones_like(values, dtype=torch.bool)
>>> out = branch(torch.zeros(1, 3, 8), values, observed, current, torch.ones(1, 3, dtype=torch.bool))
>>> abs(float(out.estimate[0, 1]) - truth) < 0.01, bool(out.usable.all())
(True, True)
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

FEATURES = 3
"""Width of the fit-quality features handed to the gate with the summary state."""


class RegressionAnswer(NamedTuple):
    estimate: torch.Tensor
    """(B, G): each tag now, from the others now (scaled space of the tag's window)."""
    usable: torch.Tensor
    """(B, G) bool."""
    logit: torch.Tensor
    """(B, G): the gate's logit for this answer against the head's (logit 0)."""


class RegressionBranch(nn.Module):
    """In-context ridge regression of each tag on the others (see the module docstring)."""

    def __init__(self, d_model: int, half_life: int, ridge: float = 1e-3, min_weight: float = 16.0) -> None:
        super().__init__()
        self.half_life = half_life
        self.ridge = ridge
        self.min_weight = min_weight
        self.gate = nn.Linear(d_model + FEATURES, 1)

    def forward(
        self,
        state: torch.Tensor,
        values: torch.Tensor,
        observed: torch.Tensor,
        current: torch.Tensor,
        present: torch.Tensor,
    ) -> RegressionAnswer:
        """``state`` (B, G, d); ``values``, ``observed`` (B, G, L); ``current`` (B, G), NaN unknown; ``present``."""
        with torch.no_grad():
            estimate, usable, features = self._fit(values, observed, current, present)
        gate_in = torch.cat([state, features.to(state.dtype)], dim=-1)
        logit = self.gate(gate_in)[..., 0].float()
        return RegressionAnswer(estimate.float(), usable, logit)

    def _fit(
        self, values: torch.Tensor, observed: torch.Tensor, current: torch.Tensor, present: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, g, length = values.shape
        v = values.double()
        seen = observed.bool() & present[..., None]
        # Step t is usable when every present tag is observed at t and at t − 1 (the lag columns).
        whole = (seen | ~present[..., None]).all(dim=1) & seen.any(dim=1)  # (B, L)
        complete = whole & torch.cat([torch.zeros_like(whole[:, :1]), whole[:, :-1]], dim=1)
        age = torch.arange(length - 1, -1, -1, device=v.device, dtype=torch.float64)
        w = complete.double() * torch.pow(0.5, age / self.half_life)  # (B, L)
        now_part = torch.where(seen, v, 0.0)
        lag_part = torch.cat([torch.zeros_like(now_part[..., :1]), now_part[..., :-1]], dim=-1)
        one = torch.ones(b, 1, length, dtype=v.dtype, device=v.device)
        z = torch.cat([now_part, lag_part, one], dim=1)  # (B, 2G+1, L): tags now, tags one step before, 1
        # (z·w) zᵀ as one batched product: einsum("bil,bjl,bl->bij") contracted the first two operands
        # first, an outer product over every step (B, 2G+1, 2G+1, L): 60 % of the branch's time.
        gram = (z * w[:, None, :]) @ z.transpose(1, 2)  # (B, 2G+1, 2G+1)
        known = torch.isfinite(current) & present
        eye = torch.eye(g, dtype=torch.bool, device=v.device)
        others = known[:, None, :] & ~eye[None]  # (B, target G, predictor G): the others' values now
        lags = present[:, None, :].expand(b, g, g)  # every present tag's previous value, its own included
        always = torch.ones(b, g, 1, dtype=torch.bool, device=v.device)
        mask = torch.cat([others, lags, always], dim=-1).double()  # (B, G, 2G+1)
        total = w.sum(dim=1).clamp(min=1e-12)  # (B,)
        a = mask[..., :, None] * gram[:, None] * mask[..., None, :]  # (B, G, 2G+1, 2G+1)
        diag = torch.diagonal(gram, dim1=1, dim2=2)[:, None, :]  # each predictor's own scale
        ridge = self.ridge * diag + 1e-9 * total[:, None, None]
        a = a + torch.diag_embed(torch.where(mask > 0, ridge, 1.0))
        rhs = mask * gram[:, :, :g].transpose(1, 2)  # (B, G, 2G+1): Σ w z_k y_g, row g
        coef = torch.linalg.solve(a, rhs[..., None])[..., 0]
        last = _last_observed(v, seen)  # (B, G): each tag's newest context value: the lag column now
        now = torch.cat(
            [torch.where(known, current.double(), 0.0), last, torch.ones(b, 1, dtype=v.dtype, device=v.device)], 1
        )
        estimate = (coef * now[:, None, :]).sum(-1)  # (B, G)
        use = others
        fitted = torch.einsum("bgk,bkl->bgl", coef, z)  # (B, G, L)
        resid = ((v - fitted) ** 2 * w[:, None, :]).sum(-1) / total[:, None]
        step_ok = seen[..., 1:] & seen[..., :-1]
        step = ((v[..., 1:] - v[..., :-1]) ** 2 * step_ok).sum(-1) / step_ok.sum(-1).clamp(min=1)
        eps = 1e-6
        usable = present & (w.sum(dim=1) >= self.min_weight)[:, None] & use.any(dim=-1)
        features = torch.stack(
            [
                0.5 * torch.log((resid + eps) / (step + eps)),
                0.5 * torch.log(step + eps),
                use.double().sum(-1) / (present.double().sum(-1, keepdim=True) - 1).clamp(min=1),
            ],
            dim=-1,
        )
        features = torch.where(usable[..., None], features, 0.0)
        return estimate, usable, features


def _last_observed(values: torch.Tensor, seen: torch.Tensor) -> torch.Tensor:
    """Newest observed value per (B, G) row of (B, G, L) (0 where none is)."""
    positions = torch.arange(values.shape[-1], device=values.device).expand_as(values)
    newest = torch.where(seen, positions, -1).amax(dim=-1)
    picked = values.gather(-1, newest.clamp(min=0)[..., None])[..., 0]
    return torch.where(newest >= 0, picked, 0.0)
