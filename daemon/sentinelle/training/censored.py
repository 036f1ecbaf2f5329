"""Training targets from a deadband-compressed export: a held point is an interval, not a value.

A historian that compresses by deadband writes a value only once it has moved
more than ``deadband`` from the last value written; every slot in between is
*held*: the export repeats the last value, and all it says about the true value
is that it lay within ``[held − deadband, held + deadband]`` (issue 17).  Taking
the held value for a measurement teaches a forecaster that the tag stays flat;
dropping held slots as targets (``"skip"``, the behaviour before) teaches it
from the moves past the deadband only — a biased sample of large steps, which
widens the quantiles it learns (the adapter's live 80 % band came out 9–67 %
wider than the base model's on the deadband report's plant).

So a target is a pair of bounds ``lower ≤ y ≤ upper`` (:func:`target_bounds`):
equal for a read point, ``held ± deadband`` for a held one.  The quantile loss
of an interval target (:func:`interval_pinball_loss`) is, per ``held_targets``:

* ``"nearest"`` (the default): the pinball loss of the value in the interval
  nearest to the quantile — zero inside, the pinball distance to the nearer edge
  outside; a lower bound of the true loss.  Outside the band its gradient is the
  ordinary one (−τ below, 1 − τ above: the true value's side is known); inside it
  says nothing, so a quantile whose true value lies inside is left to the base
  model and to the read targets (which push it towards the band's edge).
* ``"uniform"``: the expected pinball loss when the true value is uniform in the
  interval (the least-informative distribution given only the bounds), in closed
  form.  Inside the band its gradient is ``(q − lower) / (upper − lower) − τ``:
  each quantile is drawn to its level's place in the band.  Consistent when the
  true value is uniform there; a steady tag's is rather bell-shaped around the
  held value, and on the deadband report's selection seed (1510) this mode's
  adapter forecast the live data slightly worse than ``"nearest"``'s (relative
  live one-step pinball loss 1.022 against 1.011; ``"skip"`` 1.116).
* ``"skip"``: held points are no targets (NaN bounds), the behaviour before.

Both interval losses equal the ordinary pinball loss on a read point, so a series
without held points trains exactly as before.  Bounds are scaled like labels
(the context's loc/scale), which keeps the interval an interval.

>>> import numpy as np, torch
>>> lo, hi = target_bounds(np.array([1.0, 1.0, 1.5]), np.array([False, True, False]), 0.2, "uniform")
>>> lo.tolist(), hi.tolist()
([1.0, 0.8, 1.5], [1.0, 1.2, 1.5])
>>> q = torch.tensor([[[1.0]]])  # one quantile (the median), one step
>>> [round(float(interval_pinball_loss(q, torch.tensor([[a]]), torch.tensor([[b]]), (0.5,), "nearest")), 3)
...  for a, b in ((0.9, 1.1), (1.2, 1.4), (1.0, 1.0))]
[0.0, 0.1, 0.0]
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from ..records import BoolArray, FloatArray

__all__ = ["HeldTargets", "interval_pinball_loss", "target_bounds"]

HeldTargets = Literal["nearest", "uniform", "skip"]
"""How fine-tuning takes a compressed export's held points: see the module docstring."""


def target_bounds(
    values: FloatArray, held: BoolArray | None, deadband: float | None, mode: HeldTargets
) -> tuple[FloatArray, FloatArray]:
    """Lower and upper bounds of each point's true value (NaN: no target).

    A read point is its own bounds; a held point is ``value ± deadband``, or no
    target when the mode is ``"skip"`` or the deadband is not known (a tag held
    through the whole export has no steps to estimate it from).
    """
    v = np.asarray(values, dtype=np.float64)
    if held is None or not held.any():
        return v.copy(), v.copy()
    if mode == "skip" or deadband is None:
        point = np.where(held, np.nan, v)
        return point, point.copy()
    return np.where(held, v - deadband, v), np.where(held, v + deadband, v)


def interval_pinball_loss(
    quantiles: torch.Tensor,
    lower: torch.Tensor,
    upper: torch.Tensor,
    levels: tuple[float, ...],
    mode: HeldTargets = "nearest",
) -> torch.Tensor:
    """Mean quantile loss of ``quantiles`` (B, Q, H) against interval targets ``lower ≤ y ≤ upper`` (B, H' ≤ H).

    Averaged over the steps with finite bounds and over levels, as
    :func:`~sentinelle.forecast.model.pinball_loss` (which it equals where
    ``lower == upper``).  ``mode``: ``"nearest"`` or ``"uniform"`` (module
    docstring); ``"skip"`` bounds are points, so it is the ordinary loss.
    """
    if lower.shape != upper.shape:
        raise ValueError(f"lower {tuple(lower.shape)} and upper {tuple(upper.shape)} bounds differ in shape")
    if lower.ndim != 2 or lower.shape[0] != quantiles.shape[0] or lower.shape[1] > quantiles.shape[2]:
        raise ValueError(
            f"bounds must have shape (batch, ≤ {quantiles.shape[2]}), got {tuple(lower.shape)} "
            f"for quantiles {tuple(quantiles.shape)}"
        )
    q = quantiles[..., : lower.shape[1]].float()
    lo32 = lower.to(device=q.device, dtype=torch.float32)
    hi32 = upper.to(device=q.device, dtype=torch.float32)
    observed = torch.isfinite(lo32) & torch.isfinite(hi32)
    if bool((observed & (hi32 < lo32)).any()):
        raise ValueError("an upper bound is below its lower bound")
    lo = torch.where(observed, lo32, 0.0)[:, None, :]
    hi = torch.where(observed, hi32, 0.0)[:, None, :]
    tau = torch.tensor(levels, dtype=torch.float32, device=q.device)[None, :, None]
    nearest = torch.minimum(torch.maximum(q, lo), hi)  # the value in [lo, hi] nearest q
    if mode == "nearest" or mode == "skip":
        diff = nearest - q
        loss = torch.maximum(tau * diff, (tau - 1.0) * diff)
    else:
        # E ρτ(Y − q), Y ~ U[lo, hi] = τ(m − q) − E[(Y − q) 1{Y < q}]
        #   = τ(m − q) − r (c + lo − 2q) / 2, c = clip(q, lo, hi), r = (c − lo) / (hi − lo) = P(Y < q);
        # for a point (hi = lo) r = 1{q ≥ y}, which makes it the ordinary pinball loss.
        width = hi - lo
        below = torch.where(width > 0, (nearest - lo) / torch.where(width > 0, width, 1.0), (q >= lo).float())
        loss = tau * ((lo + hi) / 2 - q) - below * (nearest + lo - 2 * q) / 2
        loss = loss.clamp(min=0.0)  # exact arithmetic never goes below 0; float rounding may, by a hair
    loss = loss * observed[:, None, :]
    denominator = observed.sum() * q.shape[1]
    return loss.sum() / denominator.clamp(min=1)
