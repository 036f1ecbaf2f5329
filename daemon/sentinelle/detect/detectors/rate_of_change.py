"""Rate of change: a tag moving faster than its configured ``rate_limit_per_s``.

The numerics are :class:`~sentinelle.detect.rules.RateOfChange` (the rate over each tag's
``rate_window_s``, gated values NaN so a rate is never measured across a spike or a gap).
One subject per tag; k of n to open, so a single jump does not.  Findings' ``score``: the
rate over its limit.  State: the recent values the rates are measured against (not learned,
but a restored detector needs them to measure its next tick).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ...records import FloatArray
from ..rules import RateOfChange
from .base import BuildContext, Explanation, Findings, Spec, Tick, check_tags, findings, pack, unpack

RANK = 40
_VERSION = 1


class RateDetector:
    name = "rate_of_change"

    def __init__(self, ctx: BuildContext, rate: RateOfChange) -> None:
        lay = ctx.layout
        self.layout = lay
        self.rate = rate
        self.spec = Spec.per_tag("rate_of_change", ctx)
        self._rate: FloatArray = np.full(lay.n, np.nan)

    def observe(self, tick: Tick) -> Findings:
        check = self.rate.check(tick.clean)
        with np.errstate(invalid="ignore"):
            ratio = np.abs(check.rate) / self.rate.limit
        self._rate = check.rate
        return findings(check.violated, check.inside, ratio)

    def learn(self, tick: Tick, findings: Findings) -> None:
        """Nothing to learn: the limit is configured."""

    def explain(self, tick: Tick, findings: Findings, subject: int, tag: str | None) -> Explanation:
        return Explanation(
            tag=self.layout.tags[subject],
            obs=dataclasses.replace(tick.obs(subject), z=float(self._rate[subject])),
            contributors=tick.contributors(subject),
            magnitude=float(findings.score[subject]),
            limit=float(self.rate.limit[subject]),
        )

    def state(self) -> bytes:
        return pack(self.name, _VERSION, {"history": self.rate.history}, {"tags": list(self.layout.tags)})

    def restore(self, blob: bytes) -> None:
        arrays, meta = unpack(blob, self.name, _VERSION)
        check_tags(meta, self.layout, self.name)
        self.rate.history = arrays["history"]


def build(ctx: BuildContext) -> list[RateDetector]:
    rate = RateOfChange(ctx.layout.tag_settings, ctx.layout.period_s)
    return [RateDetector(ctx, rate)] if rate.any else []
