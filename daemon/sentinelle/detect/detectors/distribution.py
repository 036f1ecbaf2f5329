"""Distribution change: a tag whose recent values stopped looking like its past, one-step residuals or not.

The numerics are :class:`~sentinelle.detect.distribution.DistributionShift` (binned recent
window against a forgetting reference, the G statistic calibrated against the tag's own
usual G, the same 0 … 1 score scale as the residual surprise).  One subject per tag;
flagged when the calibrated score reaches ``detect.score_threshold`` (after
``detect.distribution_warmup_steps`` values in the reference), k of n to open.

**How it combines with the residual detector.**  Both scores are ``S/(S+10)`` of a
tail probability's decades, each calibrated on its own tag, so they are comparable; a
tag's combined score is their maximum — the smaller of the two tail probabilities — and
that is what the stage reports per tag (``TickNumbers.score``, ``tag_score`` in
:class:`~.base.Findings`) and what evaluations record.  Alerts follow the same rule: a
tag is anomalous when either detector's score reaches the one threshold, i.e. when the
combined score does, each detector opening its own kind.

The values seen are the gated ones (``tick.clean``): a gated tick moves nothing.  State:
the detector's arrays (value scale, ring, histograms, G scale, peaks), saved by name.
"""

from __future__ import annotations

import numpy as np

from ..distribution import DistributionShift
from .base import BuildContext, Explanation, Findings, Spec, Tick, check_tags, findings, pack, unpack

RANK = 15
_VERSION = 1


class DistributionDetector:
    name = "distribution_change"

    def __init__(self, ctx: BuildContext) -> None:
        lay = ctx.layout
        s = ctx.settings
        self.layout = lay
        self.threshold = s.score_threshold
        self.shift = DistributionShift(
            lay.n,
            window_steps=s.distribution_window_steps,
            bins=s.distribution_bins,
            reference_steps=s.distribution_reference_steps,
            memory_steps=s.score_memory_steps,
            warmup_steps=s.distribution_warmup_steps,
            min_spread=np.array([t.min_spread for t in lay.tag_settings]),
            refractory_steps=s.score_refractory_steps,
        )
        self.spec = Spec(
            kind="distribution_change",
            subjects=lay.tags,
            subject_assets=lay.asset_index,
            open_k=s.open_k,
            open_n=s.open_n,
            clear_steps=s.clear_normal_steps,
        )

    def observe(self, tick: Tick) -> Findings:
        # The stream moves with every value; the calibration learns only ungated rows (gated rows are NaN here).
        onset = self.shift.step(tick.clean, ~tick.gate)
        surprise = self.shift.surprise
        measured = np.isfinite(surprise)
        flagged = measured & (surprise >= self.threshold)
        return findings(flagged, measured & ~flagged, surprise, tag_score=onset, tag_surprise=surprise)

    def learn(self, tick: Tick, findings: Findings) -> None:
        """Nothing more to learn: the calibration learned while observing (winsorised, as the residual scorer)."""

    def explain(self, tick: Tick, findings: Findings, subject: int, tag: str | None) -> Explanation:
        return Explanation(
            tag=self.layout.tags[subject],
            obs=tick.obs(subject),
            contributors=tick.contributors(subject),
            magnitude=float(self.shift.r[subject]),
            limit=float(self.shift.window),
        )

    def state(self) -> bytes:
        arrays = {k: v for k, v in vars(self.shift).items() if isinstance(v, np.ndarray) and k != "cuts"}
        arrays |= {f"g_scale.{k}": v for k, v in vars(self.shift.g_scale).items() if isinstance(v, np.ndarray)}
        return pack(self.name, _VERSION, arrays, {"tags": list(self.layout.tags)})

    def restore(self, blob: bytes) -> None:
        arrays, meta = unpack(blob, self.name, _VERSION)
        check_tags(meta, self.layout, self.name)
        for key, value in arrays.items():
            owner, _, attr = key.rpartition(".")
            setattr(self.shift.g_scale if owner else self.shift, attr, value)


def build(ctx: BuildContext) -> list[DistributionDetector]:
    return [DistributionDetector(ctx)] if ctx.settings.distribution_enabled else []
