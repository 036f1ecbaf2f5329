"""Asset state: all tags of an asset seen together, T² and Q (and per-tag EWMA charts) on their state.

The numerics are :class:`~sentinelle.detect.asset.AssetT2Q` (``detect.asset_*``), with the optional slow second
chart per steady tag and MEWMA (``detect.asset_slow_chart_*``, ``asset_mewma_*``; with
``asset_slow_chart_open_only`` they are told whether the asset's alert is open as sent — its condition, or within
the re-arm time after it) and the optional anomaly-likelihood layer
(:class:`~sentinelle.detect.likelihood.AnomalyLikelihood`, ``detect.asset_likelihood_enabled``) flagging instead of
the raw score once the model is frozen. One subject per asset. While an asset's alert is open its condition holds
until the score falls to ``detect.asset_clear_score`` (a deadband under the limit, ISA-18.2's remedy for a condition
that hovers at its limit): a tick between the two neither counts as normal nor lets the clearing run go on.

Settling (``detect.asset_settle_steps``, off by default): when an asset's alert condition that lasted an
*episode* (at least ``detect.asset_settle_after_steps`` ticks) clears, the asset-state condition does not
flag again for the settling time.  A process coming back from an upset — a pump after a fault is
removed — drifts back towards its normal state and crosses the warm-up's limits on the way, which a
detector of where the asset *is* reports as new alerts though nothing new happened (ISA-18.2's
state-based, designed suppression during a transition).  Only this detector is held: per-tag residuals
(a new step) and limits still alert.  A short condition earns no settling, so a false opening just
before a fault does not delay it.  With ``detect.asset_settle_after_rearm`` the episode is the alert as
the operator sees it: a dip shorter than the re-arm time (``detect.rearm_steps``/``rearm_min_s``, the
chattering latch aside) continues it, and the settling time starts once the condition has stayed normal
through the re-arm time — when the alert stream sends ``cleared`` — so a condition that dips inside a
fault and comes back is not held.  An asset learns (its warm-up, or ``learn_rate``) only on
ticks with no gated tag and no ``asset_state`` alert of its own open; a paused asset is not
scored at all.  Findings' ``score``: T²/Q/chart over its limit.

Replayed history of a compressed export (``Tick.held``, ``detect.history_held``): with
**skip** a warm-up (or ``learn_rate``) tick with a held tag of the asset is not learned, so
the warm-up is made of changed slots only and, when history has too few, goes on live;
with **widen** every tick is learned and each held tag's ``deadband²/3`` joins the model's
variance floor (:attr:`~sentinelle.detect.asset.AssetT2Q.floor`, which the diagonal gets
before the correlation), for as long as that model — warmed up on history — is in use; a
tick with a held tag whose deadband is unknown is skipped, as with skip.

State: the warm-up buffer or the frozen model (mean, covariance, basis, limits, charts,
smoothing), and the likelihood layer's history — arrays and scalars, no pickle.
"""

from __future__ import annotations

import dataclasses
import math
from collections import deque

import numpy as np

from ...records import Contributor, IntArray
from ..asset import AssetT2Q
from ..chatter import rearm_s
from ..likelihood import AnomalyLikelihood
from .base import BuildContext, Explanation, Findings, Spec, Tick, check_tags, findings, nan_to, pack, unpack

RANK = 20
_VERSION = 1
_T2Q_ARRAYS = (
    "mean", "cov", "drifting", "_baseline", "_scale", "_basis", "_inv_eigen", "_smoothed_u", "last_u",
    "_chart", "_chart_limit", "last_chart", "warmup_scores",
)  # fmt: skip
_SLOW_ARRAYS = ("_slow", "_slow_limit", "last_slow", "_mewma", "_mewma_inv")
"""The slow chart's and the MEWMA's arrays (absent from a snapshot taken before they existed: the model then has
none)."""
_T2Q_SCALARS = ("count", "components", "ucl_t2", "ucl_q", "last_t2", "last_q", "_since_refresh")


class AssetDetector:
    name = "asset_state"

    def __init__(self, ctx: BuildContext) -> None:
        lay = ctx.layout
        s = ctx.settings
        self.layout = lay
        self.models: list[AssetT2Q] = []
        self.likelihoods: list[AnomalyLikelihood | None] = []
        for a in lay.asset_names:
            rows = lay.asset_rows[a]
            self.models.append(AssetT2Q.from_settings(np.array([lay.tag_settings[r].min_spread for r in rows]), s))
            self.likelihoods.append(AnomalyLikelihood.from_settings(s) if s.asset_likelihood_enabled else None)
        self._base_floor = [m.floor.copy() for m in self.models]
        self._rows = [_index(lay.asset_rows[a]) for a in lay.asset_names]
        """Per asset: its rows as a slice where they are contiguous (a view, not a copy per tick), else an array."""
        self.history_held = s.history_held
        n = len(lay.asset_names)
        self.spec = Spec(
            kind="asset_state",
            subjects=lay.subjects,
            subject_assets=np.arange(n),
            open_k=s.open_k if s.asset_open_k is None else s.asset_open_k,
            open_n=s.open_n if s.asset_open_n is None else s.asset_open_n,
            clear_steps=s.clear_normal_steps if s.asset_clear_normal_steps is None else s.asset_clear_normal_steps,
            updates=False,
        )
        self.severe_factor = s.asset_severe_factor
        self.clear_score = s.asset_clear_score
        self._scored = np.zeros(n, dtype=bool)
        self.warmup_ends_with_history = s.asset_warmup_ends_with_history
        self.settle_steps = s.asset_settle_steps
        self.settle_after = s.asset_settle_after_steps
        rearm = rearm_s(s.rearm_steps, s.rearm_min_s, lay.period_s)
        self.rearm_ticks = math.ceil(rearm / lay.period_s - 1e-9)
        """The re-arm time in ticks: an alert whose condition came back within it is the same alert (as sent)."""
        self.settle_quiet = self.rearm_ticks if s.asset_settle_after_rearm else 0
        """Ticks the condition stays normal before its episode is over (0: at the condition's clearing)."""
        self._closed_run = np.zeros(n, dtype=np.int64)
        """Per asset: ticks since its alert's condition was last open."""
        self._episode = np.zeros(n, dtype=np.int64)
        """Per asset: ticks the condition of its current episode has been open (0 once the episode is over)."""
        self._settle_left = np.zeros(n, dtype=np.int64)
        """Per asset: ticks of settling time left (its condition does not flag)."""
        self._since_open = np.full(n, np.iinfo(np.int64).max // 2, dtype=np.int64)
        """Per asset: ticks since its alert's condition was last open (for the slow chart's open-only rule)."""

    def observe(self, tick: Tick) -> Findings:
        lay = self.layout
        if tick.replay_ended and self.warmup_ends_with_history:
            # The history replay that ended was the warm-up: freeze on it before judging the first tick after it.
            for model in self.models:
                model.end_warmup()
            # The replay's alerts are dropped with it: no episode of theirs leaves a settling time behind.
            self._closed_run[:], self._episode[:], self._settle_left[:] = 0, 0, 0
        n = len(lay.asset_names)
        flagged = np.zeros(n, dtype=bool)
        normal = np.zeros(n, dtype=bool)
        t2 = np.full(n, np.nan)
        self._scored = ~tick.paused
        # The alert as sent is open through its re-arm time after its condition (a return within it continues it).
        self._since_open = np.where(tick.alerts.open(self), 0, self._since_open + 1)
        live = self._since_open <= self.rearm_ticks
        for k in np.flatnonzero(self._scored).tolist():
            # A gated tag makes the vector incomplete (NaN): T² skips the tick, and learns nothing from it.
            model = self.models[k]
            t2[k], flagged[k] = model.assess(tick.clean[self._rows[k]], alert_open=bool(live[k]))
            likelihood = self.likelihoods[k]
            if likelihood is not None and model.frozen:
                if not likelihood.seeded:
                    likelihood.seed(model.warmup_scores)
                flagged[k] = likelihood.assess(float(t2[k]))[1]
            normal[k] = math.isfinite(t2[k]) and not flagged[k]
        if self.clear_score < 1.0:  # (not with the likelihood layer: settings refuse the pair)
            # Deadband: an open alert's condition stays on (the clearing run restarts) until the score is down to
            # clear_score; the band's ticks do not open a closed alert.
            with np.errstate(invalid="ignore"):
                band = tick.alerts.open(self) & self._scored & (t2 > self.clear_score)
            flagged |= band
            normal &= ~band
        if self.settle_steps > 0:
            flagged &= ~self._settling(tick.alerts.open(self))
        severe = None
        if self.severe_factor > 0:
            with np.errstate(invalid="ignore"):
                severe = flagged & (t2 >= self.severe_factor)
        return findings(flagged, normal, t2, severe=severe)

    def _settling(self, is_open: np.ndarray) -> np.ndarray:
        """Per asset, whether this tick is in its settling time; counts the episodes from the open state."""
        quiet = self.settle_quiet
        self._closed_run = np.where(is_open, 0, self._closed_run + 1)
        ended = (self._closed_run == quiet + 1) & (self._episode >= self.settle_after)
        self._settle_left[ended] = self.settle_steps
        self._episode = np.where(is_open, self._episode + 1, np.where(self._closed_run > quiet, 0, self._episode))
        settling = ~is_open & (self._settle_left > 0)
        self._settle_left = np.maximum(self._settle_left - 1, 0)
        return settling

    def learn(self, tick: Tick, findings: Findings) -> None:
        is_open = tick.alerts.open(self)
        held = tick.held if self.history_held != "off" else None
        # An asset learns with no alert of its own open and no gated tag: one bincount over the rows, not a
        # Python test per asset.
        gated = np.bincount(self.layout.asset_index, weights=tick.gate, minlength=len(self.models)) > 0
        allowed_all = ~is_open & ~gated
        for k in np.flatnonzero(self._scored).tolist():
            rows = self._rows[k]
            allowed = bool(allowed_all[k])
            model = self.models[k]
            if held is not None and held[rows].any():
                unknown = tick.deadband is None or bool((held[rows] & ~(tick.deadband[rows] > 0)).any())
                if self.history_held == "skip" or unknown:  # widen: nothing to widen by without a deadband
                    allowed = False
                elif tick.deadband is not None and allowed and not model.frozen:
                    # A value known to within ±d, uniformly, carries d²/3 of variance the warm-up cannot see.
                    widened = self._base_floor[k] + np.where(held[rows], tick.deadband[rows] ** 2 / 3.0, 0.0)
                    model.floor = np.maximum(model.floor, widened)
            model.learn(allowed)
            likelihood = self.likelihoods[k]
            if likelihood is not None:
                likelihood.learn(allowed)

    def explain(self, tick: Tick, findings: Findings, subject: int, tag: str | None) -> Explanation:
        """The asset alert's numbers: its tag's value and forecast, the score; tags ranked by their contributions."""
        lay = self.layout
        model = self.models[subject]
        rows = lay.asset_rows[lay.asset_names[subject]]
        u, share = model.last_u, model.contributions
        row = rows[int(np.nanargmax(share))] if tag is None else lay.row_of[tag]
        j = rows.index(row)
        obs = dataclasses.replace(tick.obs(row), z=float(u[j]), score=float(findings.score[subject]))
        ranked = sorted(range(len(rows)), key=lambda r: -nan_to(float(share[r]), -1.0))
        contributors = tuple(
            Contributor(tag=lay.tags[rows[r]], score=float(share[r]), residual_z=float(u[r]))
            for r in ranked[: lay.max_contributors]
        )
        magnitude = float(np.nanmax(np.abs(u))) if np.isfinite(u).any() else math.nan
        return Explanation(tag=lay.tags[row], obs=obs, contributors=contributors, magnitude=magnitude)

    def state(self) -> bytes:
        arrays: dict[str, np.ndarray] = {}
        warm: list[bool] = []
        for k, m in enumerate(self.models):
            for a in _T2Q_ARRAYS + _SLOW_ARRAYS:
                arrays[f"{k}.{a}"] = np.asarray(getattr(m, a))
            arrays[f"{k}.scalars"] = np.array([float(getattr(m, a)) for a in _T2Q_SCALARS])
            arrays[f"{k}.floor"] = m.floor
            arrays[f"{k}.slow_state"] = np.array([m.slow_phase, m.slow_run, int(m.slow_counts)])
            arrays[f"{k}.mewma"] = np.array([m.mewma_limit, m.last_mewma])
            warm.append(m._warmup is not None)
            if m._warmup is not None:
                arrays[f"{k}.warmup"] = m._warmup
            lik = self.likelihoods[k]
            if lik is not None:
                arrays[f"{k}.lik_history"] = lik._history
                arrays[f"{k}.lik_short"] = np.array(list(lik._short), dtype=np.float64)
                arrays[f"{k}.lik_scalars"] = np.array([lik._filled, lik._pos, float(lik.seeded), lik.last_z])
        arrays["settle"] = np.stack([self._closed_run, self._episode, self._settle_left])
        arrays["since_open"] = self._since_open
        return pack(self.name, _VERSION, arrays, {"tags": list(self.layout.tags), "warm_up": warm})

    def restore(self, blob: bytes) -> None:
        arrays, meta = unpack(blob, self.name, _VERSION)
        check_tags(meta, self.layout, self.name)
        if "settle" in arrays:  # (absent from a snapshot taken before settling existed: no episode running)
            self._closed_run, self._episode, self._settle_left = (a.astype(np.int64) for a in arrays["settle"])
        if "since_open" in arrays:  # (absent from a snapshot taken before the slow chart: no alert open recently)
            self._since_open = arrays["since_open"].astype(np.int64)
        for k, m in enumerate(self.models):
            for a in _T2Q_ARRAYS:
                setattr(m, a, arrays[f"{k}.{a}"])
            for a in _SLOW_ARRAYS:
                if f"{k}.{a}" in arrays:
                    setattr(m, a, arrays[f"{k}.{a}"])
            if f"{k}.slow_state" in arrays:
                phase, since, counts = arrays[f"{k}.slow_state"].tolist()
                m.slow_phase, m.slow_run, m.slow_counts = int(phase), int(since), bool(counts)
            if f"{k}.mewma" in arrays:
                m.mewma_limit, m.last_mewma = (float(v) for v in arrays[f"{k}.mewma"])
            values = arrays[f"{k}.scalars"].tolist()
            for a, v in zip(_T2Q_SCALARS, values, strict=True):
                setattr(m, a, int(v) if a in ("count", "components", "_since_refresh") else float(v))
            if f"{k}.floor" in arrays:  # widened by a compressed history's deadband (absent: as configured)
                m.floor = arrays[f"{k}.floor"]
            m._warmup = arrays[f"{k}.warmup"] if meta["warm_up"][k] else None
            m._pending = None
            lik = self.likelihoods[k]
            if lik is not None:
                lik._history = arrays[f"{k}.lik_history"]
                lik._short = deque(arrays[f"{k}.lik_short"].tolist(), maxlen=lik.short_steps)
                filled, pos, seeded, last_z = arrays[f"{k}.lik_scalars"].tolist()
                lik._filled, lik._pos, lik.seeded, lik.last_z = int(filled), int(pos), bool(seeded), last_z


def _index(rows: list[int]) -> slice | IntArray:
    """Rows as a slice when they are consecutive, else an index array."""
    if rows == list(range(rows[0], rows[0] + len(rows))):
        return slice(rows[0], rows[0] + len(rows))
    return np.array(rows, dtype=np.intp)


def build(ctx: BuildContext) -> list[AssetDetector]:
    return [AssetDetector(ctx)] if ctx.settings.asset_enabled else []
