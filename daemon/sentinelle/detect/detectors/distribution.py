"""Distribution change: a tag whose recent values stopped looking like its past, one-step residuals or not.

The numerics are :class:`~sentinelle.detect.distribution.DistributionShift` (binned recent
window against a forgetting reference, the G statistic calibrated against the tag's own
usual G, the same 0 … 1 score scale as the residual surprise).  One subject per tag;
flagged when the calibrated score reaches ``detect.score_threshold`` (after
``detect.distribution_warmup_steps`` values in the reference, and not before
``detect.grace_period_steps`` values, as every per-tag score), k of n to open.

**How it combines with the residual detector.**  Both scores are ``S/(S+10)`` of a
tail probability's decades, each calibrated on its own tag, so they are comparable; a
tag's combined score is their maximum — the smaller of the two tail probabilities — and
that is what the stage reports per tag (``TickNumbers.score``, ``tag_score`` in
:class:`~.base.Findings`) and what evaluations record.  Alerts follow the same rule: a
tag is anomalous when either detector's score reaches the one threshold, i.e. when the
combined score does, each detector opening its own kind.

Two series per tag are measured, each on its own: the values, and (``detect.distribution_differences``)
their tick-to-tick differences — a change of dynamics (noise that grows, an oscillation that
speeds up) whose values stay in their usual range; the tag's score is the larger.  The values
seen are the gated ones (``tick.clean``): a gated tick moves nothing, and a difference across it
is none.  State: each series' arrays (value scale, ring, histograms, G scale, peaks) and the
previous values, saved by name.
"""

from __future__ import annotations

import numpy as np

from ...errors import ConfigError
from ...records import FloatArray
from ..distribution import DistributionShift
from .base import BuildContext, Explanation, Findings, Spec, Tick, check_tags, findings, pack, unpack

RANK = 16
_VERSION = 1


class DistributionDetector:
    name = "distribution_change"

    def __init__(self, ctx: BuildContext) -> None:
        lay = ctx.layout
        s = ctx.settings
        self.layout = lay
        self.threshold = s.score_threshold
        self.grace = s.grace_period_steps
        min_spread = np.array([t.min_spread for t in lay.tag_settings])

        def shift() -> DistributionShift:
            return DistributionShift(
                lay.n,
                window_steps=s.distribution_window_steps,
                bins=s.distribution_bins,
                reference_steps=s.distribution_reference_steps,
                memory_steps=s.score_memory_steps,
                warmup_steps=s.distribution_warmup_steps,
                min_spread=min_spread,
                refractory_steps=s.score_refractory_steps,
            )

        self.shifts = {"values": shift()}
        if s.distribution_differences:
            self.shifts["differences"] = shift()
        self.previous: FloatArray = np.full(lay.n, np.nan)
        """Each row's value at the previous tick (NaN: none): the differences' other end."""
        self.r: FloatArray = np.full(lay.n, np.nan)
        self.spec = Spec.per_tag("distribution_change", ctx)

    def observe(self, tick: Tick) -> Findings:
        # The stream moves with every value; the calibration learns only ungated rows (gated rows are NaN here).
        x = tick.clean
        series = {"values": x, "differences": x - self.previous}
        self.previous = x.copy()
        onset = surprise = r = np.full(self.layout.n, np.nan)
        for name, sh in self.shifts.items():
            onset = np.fmax(onset, sh.step(series[name], ~tick.gate))
            surprise = np.fmax(surprise, sh.surprise)
            r = np.fmax(r, sh.r)
        self.r = r
        # detect.grace_period_steps holds for every per-tag score: nothing flags or scores before it.
        young = next(iter(self.shifts.values())).filled < self.grace
        onset = np.where(young & np.isfinite(onset), 0.0, onset)
        surprise = np.where(young & np.isfinite(surprise), 0.0, surprise)
        measured = np.isfinite(surprise)
        flagged = measured & (surprise >= self.threshold)
        return findings(flagged, measured & ~flagged, surprise, tag_score=onset, tag_surprise=surprise)

    def learn(self, tick: Tick, findings: Findings) -> None:
        """Nothing more to learn: the calibration learned while observing (winsorised, as the residual scorer)."""

    def explain(self, tick: Tick, findings: Findings, subject: int, tag: str | None) -> Explanation:
        window = next(iter(self.shifts.values())).window
        return tick.explain_tag(subject, float(self.r[subject]), float(window))

    def state(self) -> bytes:
        arrays: dict[str, np.ndarray] = {"previous": self.previous}
        for name, sh in self.shifts.items():
            arrays |= {f"{name}.{k}": v for k, v in vars(sh).items() if isinstance(v, np.ndarray) and k != "cuts"}
            arrays |= {f"{name}.g_scale.{k}": v for k, v in vars(sh.g_scale).items() if isinstance(v, np.ndarray)}
        return pack(self.name, _VERSION, arrays, {"tags": list(self.layout.tags), "series": list(self.shifts)})

    def restore(self, blob: bytes) -> None:
        arrays, meta = unpack(blob, self.name, _VERSION)
        check_tags(meta, self.layout, self.name)
        if meta.get("series") != list(self.shifts):
            raise ConfigError(f"{self.name}: the saved state measured {meta.get('series')}, not {list(self.shifts)}")
        self.previous = arrays.pop("previous")
        for key, value in arrays.items():
            name, _, rest = key.partition(".")
            owner, _, attr = rest.rpartition(".")
            sh = self.shifts[name]
            setattr(sh.g_scale if owner else sh, attr, value)


def build(ctx: BuildContext) -> list[DistributionDetector]:
    return [DistributionDetector(ctx)] if ctx.settings.distribution_enabled else []
