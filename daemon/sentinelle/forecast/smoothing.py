"""The model's exponential-smoothing branch: a bank of Holt–Winters forecasters chosen in context.

Why a statistical path inside a neural model: on noisy sensors and on daily
load with a weekly cycle, exponential smoothing with its parameters fitted to
the series at hand is hard to beat (on our held-out benchmark AutoETS beat the
patch transformer at horizon 1 on every noisy data set), and a transformer that
reads 16-step patches and is trained for a few CPU hours does not learn to
estimate a level to the last few percent of noise.  Smyl's ES-RNN, the M4
competition's winner, made the same choice: exponential smoothing computed
inside the network, the network learning what the smoothing cannot.  Here the
transformer's summary state decides, per horizon step, how much to trust the
smoothing answer against its own head and the analog branch.

What the branch computes, for each window, in the window's scaled space and
without parameters of its own (it runs under ``no_grad``; only the gate and
the selection temperature learn):

* Candidate seasons: the two highest local maxima of the context's
  autocorrelation over lags 2..``max_period`` that exceed 0.1 (none: no
  seasonal experts for that window).
* Experts: simple exponential smoothing with every α of :data:`ALPHAS`, and
  additive Holt–Winters (level α, season γ of :data:`GAMMAS`) for each
  candidate season — 63 experts, run over the context in one vectorised
  recursion (on the CPU) or its chunked triangular-solve form (on a GPU, where
  512 sequential steps of small kernels would bound the pass; same numbers to
  float32 rounding); a missing step updates nothing.  Seasonal indices start from the
  context's mean profile, the level from the first observed value.
* Selection as ETS fits its parameters: by the one-step-ahead squared error of
  each expert over the newest ``window`` steps of the context.  The experts'
  forecasts are averaged with weights ``softmax(-temperature · (error / best error − 1))``,
  a soft arg-min that leans on the best fit and hedges between near ties.
* Features for the gate: how much better the best expert fits than a random
  walk, its error in window-scale units, the weight carried by seasonal
  experts and the weighted mean α (how fast the series moves).

A row without an observed step in the scoring window is marked unusable and the
caller falls back to the head.
"""

from __future__ import annotations

import math
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

ALPHAS = (0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 0.7, 0.9, 1.0)
"""Level smoothing weights of the experts (1.0: the random walk)."""
RANDOM_WALK = ALPHAS.index(1.0)
"""The expert whose error the gate's first feature compares the best one with."""
GAMMAS = (0.05, 0.15, 0.3)
"""Season smoothing weights of the seasonal experts."""
SEASONS = 2
"""Candidate seasons per window (the highest autocorrelation peaks)."""
FEATURES = 4
"""Width of the feature vector handed to the gate."""
SERIAL_ELEMENTS = 32_768
"""torch's grain size (``at::internal::GRAIN_SIZE``): element-wise ops on fewer elements run on one thread."""


class SmoothingAnswer(NamedTuple):
    """What :class:`SmoothingBranch` hands the model's mix."""

    forecast: torch.Tensor
    """(B, H): the soft-best experts' point forecast, scaled space (0 where not usable)."""
    logit: torch.Tensor
    """(B, H): the gate's logit for this answer, against the head's and the analog's."""
    usable: torch.Tensor
    """(B,): False where the scoring window holds no observed step."""
    sigma: torch.Tensor
    """(B, H): the h-step error spread exponential smoothing implies (0 where not usable)."""


class SmoothingBranch(nn.Module):
    """Holt–Winters experts fitted in context; their soft-best forecast and a gate logit per horizon step."""

    def __init__(self, d_model: int, horizon: int, max_period: int, window: int) -> None:
        super().__init__()
        self.horizon = horizon
        self.max_period = max_period
        self.window = window
        self.scan: Literal["auto", "recursion", "chunked"] = "auto"
        """How :meth:`experts` runs the recursion (auto: :meth:`use_chunked`); a switch for benchmarks."""
        self.chunk = 32
        """Steps per block of the chunked form."""
        self.log_temperature = nn.Parameter(torch.tensor(math.log(20.0)))
        self.gate = nn.Linear(d_model + FEATURES, horizon)
        # Constants, not buffers: a checkpoint loaded on the meta device leaves non-persistent
        # buffers empty, and these are cheap to rebuild on the input's device.
        seasonal = [(a, g) for _ in range(SEASONS) for a in ALPHAS for g in GAMMAS]
        per_season = len(ALPHAS) * len(GAMMAS)
        self._alpha = [*ALPHAS, *(a for a, _ in seasonal)]
        self._gamma = [0.0] * len(ALPHAS) + [g for _, g in seasonal]
        # Which candidate season each expert uses (-1: none, simple exponential smoothing).
        self._season_of = [-1] * len(ALPHAS) + [i // per_season for i in range(len(seasonal))]

    def constants(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per expert (E,): level weight α, season weight γ, candidate season index (-1: none)."""
        return (
            torch.tensor(self._alpha, dtype=torch.float32, device=device),
            torch.tensor(self._gamma, dtype=torch.float32, device=device),
            torch.tensor(self._season_of, dtype=torch.long, device=device),
        )

    def forward(self, state: torch.Tensor, values: torch.Tensor, observed: torch.Tensor) -> SmoothingAnswer:
        """The soft-best experts' forecast, its gate logit and spread, for windows ``values`` (B, L)."""
        alpha, gamma, season_of = self.constants(values.device)
        with torch.no_grad():
            forecasts, errors, valid, usable = self.experts(values.float(), observed > 0, alpha, gamma, season_of)
            best = torch.where(valid, errors, math.inf).amin(dim=1, keepdim=True).clamp(min=1e-12, max=1e30)
            relative = errors / best - 1.0
        # A row with nothing to score keeps every expert (equal errors), and its answer is set to 0
        # and marked unusable: the caller gives it no weight, and no NaN reaches the mix.
        logits = torch.where(valid | ~usable[:, None], -self.log_temperature.exp() * relative, -math.inf)
        weights = torch.softmax(logits, dim=1)  # (B, E)
        forecast = torch.where(usable[:, None], (weights[:, :, None] * forecasts).sum(dim=1), 0.0)
        with torch.no_grad():
            walk = errors[:, RANDOM_WALK : RANDOM_WALK + 1].clamp(min=1e-12)
            features = torch.cat(
                [
                    torch.log(best / walk).clamp(-6.0, 1.0),
                    (0.5 * torch.log(best)).clamp(-8.0, 3.0),
                    (weights * (season_of >= 0)).sum(dim=1, keepdim=True),
                    (weights * alpha).sum(dim=1, keepdim=True),
                ],
                dim=1,
            )
            # Spread of the h-step error of exponential smoothing with the experts' weighted α,
            # from their best one-step error: σ_h² = σ₁² (1 + (h − 1) α²).
            steps = torch.arange(self.horizon, device=values.device, dtype=torch.float32)[None, :]
            sigma = torch.sqrt(best * (1.0 + steps * features[:, 3:4] ** 2))
        gate_in = torch.cat([state.float(), features], dim=1)
        logit = self.gate(gate_in.to(self.gate.weight.dtype)).float()  # the gate in the model's dtype
        return SmoothingAnswer(forecast, logit, usable, torch.where(usable[:, None], sigma, 0.0))

    def experts(
        self,
        v: torch.Tensor,
        seen: torch.Tensor,
        alpha: torch.Tensor,
        gamma: torch.Tensor,
        season_of: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Forecasts (B, E, H), one-step errors (B, E), valid (B, E), usable (B,) of every expert
        (``alpha``, ``gamma``, ``season_of`` from :meth:`constants`)."""
        b, length = v.shape
        device = v.device
        filled = torch.where(seen, v, 0.0)
        count = seen.sum(dim=1, keepdim=True).clamp(min=1)
        centred = torch.where(seen, v - filled.sum(dim=1, keepdim=True) / count, 0.0)
        periods, has_season = self.seasons(centred, count)  # (B, S) each
        seasonal = season_of >= 0
        period = torch.where(seasonal, periods.gather(1, season_of.clamp(min=0).expand(b, -1)), 1)  # (B, E), 1 for SES
        valid = ~seasonal | has_season.gather(1, season_of.clamp(min=0).expand(b, -1))
        p_max = max(self.max_period, 1)

        # Seasonal indices start from the context's mean profile (deviation from its mean per phase).
        steps = torch.arange(length, device=device)
        phase = steps[None, None, :] % periods[:, :, None]  # (B, S, L)
        sums = torch.zeros(b, SEASONS, p_max, device=device).scatter_add_(
            2, phase, centred[:, None, :].expand(-1, SEASONS, -1)
        )
        counts = torch.zeros(b, SEASONS, p_max, device=device).scatter_add_(
            2, phase, seen[:, None, :].float().expand(-1, SEASONS, -1)
        )
        profile = sums / counts.clamp(min=1)
        profile = profile - (profile * (counts > 0)).sum(-1, keepdim=True) / (counts > 0).sum(-1, keepdim=True).clamp(
            min=1
        )
        profile = torch.where(
            seasonal[None, :, None],
            profile.gather(1, season_of.clamp(min=0)[None, :, None].expand(b, -1, p_max)),
            0.0,
        )  # (B, E, P): each expert's starting seasonal indices by phase
        first = torch.where(seen, steps, length).amin(dim=1)  # (B,)
        first_value = v.gather(1, first.clamp(max=length - 1)[:, None])  # (B, 1)
        level = first_value - profile.gather(2, (first[:, None] % period)[:, :, None])[..., 0]  # (B, E)

        season_gain = gamma * (1.0 - alpha)  # (E,): s += γ(1-α)·e
        mask = seen.float()
        start = max(0, length - self.window)
        if self.use_chunked(device):
            level, error, forecasts = self._chunked(filled, mask, level, profile, period, alpha, season_gain, start)
        else:
            # Over blocks of rows small enough that each per-step op stays on one thread: torch splits
            # an element-wise op over its intra-op threads from SERIAL_ELEMENTS elements up, and the
            # recursion runs thousands of such ops of a few tens of µs.  When another process holds
            # the second core every split op waits for the descheduled thread: with 2 threads on the
            # loaded 2-core machine a pass over 1,000 windows took 52 s against 5.8 s on 1 thread
            # (bench/forecast_speed.py).  Rows are independent: the same numbers.
            rows = max(1, SERIAL_ELEMENTS // level.shape[1])
            parts = [
                self._recursion(
                    filled[i : i + rows], mask[i : i + rows], level[i : i + rows], profile[i : i + rows],
                    period[i : i + rows], alpha, season_gain, start,
                )
                for i in range(0, b, rows)
            ]  # fmt: skip
            level, error, forecasts = (
                torch.cat(part) if len(parts) > 1 else part[0] for part in zip(*parts, strict=True)
            )
        scored = mask[:, start:].sum(dim=1, keepdim=True)
        usable = scored[:, 0] > 0
        errors = error / scored.clamp(min=1)
        return forecasts, errors, valid & usable[:, None], usable

    def use_chunked(self, device: torch.device) -> bool:
        """Whether :meth:`experts` runs the chunked form (:attr:`scan`; ``auto``: on every device but the CPU)."""
        if self.scan == "auto":
            return device.type != "cpu"
        return self.scan == "chunked"

    def _recursion(
        self,
        filled: torch.Tensor,
        mask: torch.Tensor,
        level: torch.Tensor,
        profile: torch.Tensor,
        period: torch.Tensor,
        alpha: torch.Tensor,
        season_gain: torch.Tensor,
        start: int,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The experts step by step: final level (B, E), squared one-step errors from ``start`` (B, E),
        forecasts (B, E, H).  ``profile`` (B, E, P): seasonal indices in force at step 0, by phase.

        The reference form, and the fastest on the CPU: one step is a handful of small
        kernels, so on a GPU the pass is bound by launching ``length`` × 6 of them.
        """
        b, length = filled.shape
        e = level.shape[1]
        device = filled.device
        p_max = profile.shape[2]
        # history[p_max + t]: the seasonal indices (B, E) written at step t; the one in force at
        # step t is the one written a period earlier.  Time first, so a step's write is one
        # contiguous slab and its reads come in runs (experts of a season are adjacent); a
        # gather/scatter by phase per step cost three times as much on the CPU.
        history = torch.empty(p_max + length, b, e, device=device)
        before = torch.arange(-p_max, 0, device=device)
        history[:p_max] = profile.gather(2, before[None, None, :] % period[:, :, None]).permute(2, 0, 1)
        cell = torch.arange(b * e, device=device).view(b, e)
        read = (p_max - period) * (b * e) + cell  # flat index of the slab a period back, at t = 0
        # With e the one-step error, the update is level += α·e and s += γ(1-α)·e (additive
        # Holt-Winters, error-correction form); a missing step (mask 0) updates nothing.
        gain = season_gain[None, :].expand(b, -1)
        alpha = alpha[None, :].expand(b, -1)
        error = torch.zeros(b, e, device=device)
        # The loop runs `length` times on small tensors, so each op's dispatch counts: columns
        # are unbound once, the read index advances in place, and results go to preallocated
        # tensors: the same numbers, the loop alone 27 % faster at 1,000 windows on one thread
        # (end to end, within this machine's noise: bench/forecast_speed.py).
        # Reads go through index_select on the flat history, not torch.take: the same elements, but
        # take runs a parallel loop even over these few thousand, and with a second intra-op thread
        # that another process keeps off its core each call waited ~20 ms (2 threads, loaded 2-core
        # machine: 10.7 s of a 15 s pass over 96 windows; index_select 9 µs a call).
        values_at = filled.t().unsqueeze(-1).unbind(0)  # (B, 1) each; 0 where missing
        mask_at = mask.t().unsqueeze(-1).unbind(0)
        slabs = history.unbind(0)
        flat = history.view(-1)
        index = read.reshape(-1).clone()
        s_t = torch.empty_like(level)
        miss = torch.empty_like(level)
        for t in range(length):
            torch.index_select(flat, 0, index, out=s_t.view(-1))
            index += b * e
            torch.sub(values_at[t], level, out=miss)
            miss.sub_(s_t).mul_(mask_at[t])
            if t >= start:
                error.addcmul_(miss, miss)
            level.addcmul_(alpha, miss)
            torch.addcmul(s_t, gain, miss, out=slabs[p_max + t])
        # The index in force at step length-1+k was written at the newest step of the same phase.
        ahead = torch.arange(1, self.horizon + 1, device=device)[None, None, :]
        cycles = torch.div(ahead + period[:, :, None] - 1, period[:, :, None], rounding_mode="floor")
        written = length - 1 + ahead - period[:, :, None] * cycles  # (B, E, H)
        at = ((p_max + written) * (b * e) + cell[:, :, None]).reshape(-1)
        forecasts = level[:, :, None] + flat.index_select(0, at).view(b, e, self.horizon)
        return level, error, forecasts

    def _chunked(
        self,
        filled: torch.Tensor,
        mask: torch.Tensor,
        level: torch.Tensor,
        profile: torch.Tensor,
        period: torch.Tensor,
        alpha: torch.Tensor,
        season_gain: torch.Tensor,
        start: int,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """:meth:`_recursion`'s numbers in ``ceil(length / chunk)`` sequential steps instead of ``length``.

        Unrolled, the error-correction recursion is linear in the one-step errors e_t:
        level_t = level_0 + α Σ_{k<t} e_k and the seasonal index in force at t is its start
        value plus γ(1-α) Σ e_k over earlier steps of t's phase, so
        e_t = m_t (x_t − level_0 − s0_t − Σ_{k<t} (α + γ(1-α)·[k ≡ t mod p]) e_k),
        a unit lower-triangular system (I + M A) e = M (x − level_0 − s0), m_t = 0 for a
        missing step (which then updates nothing, as in the recursion).  A chunk's block
        depends only on the lag, so it is built once; each chunk solves its block (one batched
        triangular solve by forward substitution: no powers of 1−α, no cancellation at α = 1)
        with the level and the per-phase seasonal indices the earlier chunks left, then adds
        its errors into them.  More arithmetic than the recursion (chunk × per step), so
        the CPU keeps the recursion; on a GPU it is 16 launches of a few kernels, not 3,000.
        """
        length = filled.shape[1]
        device = filled.device
        c = min(self.chunk, length)
        offsets = torch.arange(c, device=device)
        lag = offsets[:, None] - offsets[None, :]  # (C, C): row step minus column step
        same_phase = torch.remainder(lag[None, None], period[:, :, None, None]) == 0
        coupling = torch.where(
            lag > 0, alpha[None, :, None, None] + season_gain[None, :, None, None] * same_phase, 0.0
        )  # (B, E, C, C): what an error at a column step adds to a row step's forecast
        eye = torch.eye(c, device=device)
        table = profile.clone()  # (B, E, P): the seasonal index in force, by phase
        error = torch.zeros_like(level)
        gain = season_gain[None, :, None]
        for first in range(0, length, c):
            n = min(c, length - first)
            m = mask[:, None, first : first + n]  # (B, 1, n)
            phase = torch.remainder((first + offsets[:n])[None, None, :], period[:, :, None])  # (B, E, n)
            rhs = m * (filled[:, None, first : first + n] - level[:, :, None] - table.gather(2, phase))
            system = eye[:n, :n] + m[..., None] * coupling[..., :n, :n]
            miss = torch.linalg.solve_triangular(system, rhs[..., None], upper=False, unitriangular=True)[..., 0]
            level = level + alpha * miss.sum(dim=2)
            table = table.scatter_add(2, phase, gain * miss)
            scored = miss[..., max(start - first, 0) :]
            error = error + (scored * scored).sum(dim=2)
        ahead = torch.arange(length, length + self.horizon, device=device)[None, None, :]
        forecasts = level[:, :, None] + table.gather(2, torch.remainder(ahead, period[:, :, None]))
        return level, error, forecasts

    def seasons(self, centred: torch.Tensor, count: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``SEASONS`` strongest autocorrelation peaks in lags 2..max_period: periods (B, S), found (B, S).

        ``centred`` (B, L): the windows minus their observed mean, 0 where missing;
        ``count`` (B, 1): their observed steps.
        """
        x = centred
        length = x.shape[1]
        top = max(2, min(self.max_period, length - 2))  # longest lag looked at (short windows: fewer)
        spectrum = torch.fft.rfft(x, n=2 * length)
        acov = torch.fft.irfft(spectrum.abs() ** 2, n=2 * length)[:, : top + 2]
        lags = torch.arange(top + 2, device=x.device)
        # Lags beyond a third of the observed steps are too poorly estimated to trust.
        acf = torch.where(lags[None, :] * 3 <= count, acov / acov[:, :1].clamp(min=1e-12), -1.0)
        middle = acf[:, 2 : top + 1]
        peak = (middle >= acf[:, 1:top]) & (middle >= acf[:, 3 : top + 2]) & (middle > 0.1)
        score = torch.where(peak, middle, -2.0)
        strongest, index = score.topk(min(SEASONS, score.shape[1]), dim=1)
        periods = index + 2
        found = strongest > -2.0
        if periods.shape[1] < SEASONS:  # max_period 2: one candidate lag only
            pad = SEASONS - periods.shape[1]
            periods = F.pad(periods, (0, pad), value=2)
            found = F.pad(found, (0, pad), value=False)
        return torch.where(found, periods, 1), found
