"""Energy balance: an asset's measured power against ``factor · flow · (hot − cold)``.

The numerics are :class:`~sentinelle.detect.rules.EnergyBalance`.  One subject per
configured balance (its asset); the alert is filed under the power tag and shows the power
the flow and temperatures imply as its forecast, the tolerance as its band.  Findings'
``score``: the relative error over the tolerance.  Nothing is learned.
"""

from __future__ import annotations

import logging

import numpy as np

from ..alerts import Observation
from ..rules import BalanceCheck, BalanceRule, EnergyBalance
from .base import BuildContext, Explanation, Findings, Layout, Spec, Tick, findings, pack, unpack

log = logging.getLogger(__name__)

RANK = 50
_VERSION = 1


class BalanceDetector:
    name = "energy_balance"

    def __init__(self, ctx: BuildContext, rules: list[BalanceRule]) -> None:
        lay = ctx.layout
        s = ctx.settings
        self.layout = lay
        self.balance = EnergyBalance(rules)
        self.spec = Spec(
            kind="energy_balance",
            subjects=tuple(r.asset for r in rules),
            subject_assets=np.array([lay.asset_names.index(r.asset) for r in rules], dtype=np.intp),
            open_k=s.open_k,
            open_n=s.open_n,
            clear_steps=s.clear_normal_steps,
        )
        self._check: BalanceCheck | None = None

    def observe(self, tick: Tick) -> Findings:
        check = self._check = self.balance.check(tick.clean)
        return findings(check.violated, check.inside, np.abs(check.relative_error) / self.balance.tolerance)

    def learn(self, tick: Tick, findings: Findings) -> None:
        """Nothing to learn: the balance is physics."""

    def explain(self, tick: Tick, findings: Findings, subject: int, tag: str | None) -> Explanation:
        assert self._check is not None
        rule = self.balance.rules[subject]
        tol = rule.settings.relative_tolerance
        expected = float(self._check.expected[subject])
        rel = float(self._check.relative_error[subject])
        obs = Observation(
            ts=tick.ts,
            actual=float(tick.values[rule.power]),
            forecast=expected,
            lower=expected * (1 - tol),
            upper=expected * (1 + tol),
            z=rel,
            score=abs(rel) / tol,
            unit=self.layout.units[rule.power],
        )
        return Explanation(
            tag=self.layout.tags[rule.power],
            obs=obs,
            contributors=tick.contributors(rule.power),
            magnitude=abs(rel) / tol,
            limit=tol,
        )

    def state(self) -> bytes:
        return pack(self.name, _VERSION, {})

    def restore(self, blob: bytes) -> None:
        unpack(blob, self.name, _VERSION)


def _rules(ctx: BuildContext) -> list[BalanceRule]:
    lay: Layout = ctx.layout
    row = lay.row_of
    rules = []
    for a in ctx.settings.assets:
        e = a.energy_balance
        if e is None or a.name not in lay.asset_names:
            continue
        names = (e.flow_tag, e.hot_temp_tag, e.cold_temp_tag, e.power_tag)
        if all(name in row for name in names):
            flow, hot, cold, power = (row[name] for name in names)
            rules.append(BalanceRule(a.name, flow, hot, cold, power, e))
        elif any(name in row for name in names):
            # Settings validation rejects this for configured tags; a replay's own tag list may lack some.
            log.warning("asset %s: energy balance tags are not all in one tag group; not checked", a.name)
    return rules


def build(ctx: BuildContext) -> list[BalanceDetector]:
    rules = _rules(ctx)
    return [BalanceDetector(ctx, rules)] if rules else []
