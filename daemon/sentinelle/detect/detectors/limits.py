"""Static limits: a configured high or low limit crossed (``limit_high`` / ``limit_low``).

The numerics are :class:`~sentinelle.detect.rules.Limits` (a deadband for clearing).  One
detector per side, one subject per tag; k of n to open like every process alarm.  Nothing is
learned.  Findings' ``score``: the exceedance in tag units (``|value − limit|``, of the raw value).
Crossings on an asset in maintenance are reported as ``withheld`` (suppressed alerts).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from ...records import BoolArray
from ..rules import LimitCheck, Limits
from .base import BuildContext, Explanation, Findings, Spec, Tick, findings, pack, unpack

RANK = 30
_VERSION = 1


class LimitDetector:
    """One side of every tag's static limits."""

    def __init__(self, ctx: BuildContext, limits: Limits, side: Literal["high", "low"]) -> None:
        lay = ctx.layout
        self.name = f"limit_{side}"
        self.layout = lay
        self.limits = limits
        self.side = side
        self.bound = limits.high if side == "high" else limits.low
        self.spec = Spec.per_tag("limit_high" if side == "high" else "limit_low", ctx, updates=False)

    def _side(self, checks: tuple[LimitCheck, LimitCheck]) -> LimitCheck:
        return checks[0] if self.side == "high" else checks[1]

    def observe(self, tick: Tick) -> Findings:
        check = self._side(self.limits.check(tick.clean))
        withheld: BoolArray | None = None
        if tick.maintenance.any():
            withheld = self._side(self.limits.check(tick.values)).violated & tick.maintenance[self.layout.asset_index]
        return findings(check.violated, check.inside, np.abs(tick.values - self.bound), withheld=withheld)

    def learn(self, tick: Tick, findings: Findings) -> None:
        """Nothing to learn: a limit is configured."""

    def explain(self, tick: Tick, findings: Findings, subject: int, tag: str | None) -> Explanation:
        return tick.explain_tag(subject, float(findings.score[subject]), float(self.bound[subject]))

    def state(self) -> bytes:
        return pack(self.name, _VERSION, {})

    def restore(self, blob: bytes) -> None:
        unpack(blob, self.name, _VERSION)


def build(ctx: BuildContext) -> list[LimitDetector]:
    limits = Limits(ctx.layout.tag_settings)
    if not limits.any:
        return []
    return [LimitDetector(ctx, limits, "high"), LimitDetector(ctx, limits, "low")]
