"""Rules from the configuration: static limits, rate-of-change limits, the energy balance.

Rules are physics and contracts, not statistics: they alert even when the
forecaster has learnt to expect the violation.  Vectorised per tag group;
tags without a limit carry ±inf and never trip.  Each check returns, per row,
whether the rule is violated and whether the row counts towards clearing
(``inside``); NaN values do neither.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..records import BoolArray, FloatArray
from ..settings import EnergyBalanceSettings, TagSettings


@dataclass(frozen=True, slots=True)
class LimitCheck:
    """Violation flags and the rows allowed to count towards clearing, for one side."""

    violated: BoolArray
    inside: BoolArray
    """Back inside the limit by at least the deadband (hysteresis)."""


class Limits:
    def __init__(self, tags: Sequence[TagSettings]) -> None:
        self.high = np.array([t.high_limit if t.high_limit is not None else np.inf for t in tags])
        self.low = np.array([t.low_limit if t.low_limit is not None else -np.inf for t in tags])
        self.deadband = np.array([t.limit_deadband for t in tags])
        self.any = bool(np.isfinite(self.high).any() or np.isfinite(self.low).any())

    def check(self, values: FloatArray) -> tuple[LimitCheck, LimitCheck]:
        """(high, low) checks; NaN values neither violate nor count as inside."""
        finite = np.isfinite(values)
        with np.errstate(invalid="ignore"):
            high = LimitCheck(
                violated=finite & (values > self.high),
                inside=finite & (values <= self.high - self.deadband),
            )
            low = LimitCheck(
                violated=finite & (values < self.low),
                inside=finite & (values >= self.low + self.deadband),
            )
        return high, low


@dataclass(frozen=True, slots=True)
class RateCheck:
    rate: FloatArray
    """Tag units per second over each tag's rate window (NaN: unknown or not checked)."""
    violated: BoolArray
    inside: BoolArray


class RateOfChange:
    """Rate-of-change limits: ``|x(t) − x(t − span)| / span`` beyond ``rate_limit_per_s``.

    A rule on *process* speed (a temperature cannot climb faster than the plant's
    heat capacity allows): it alerts through the same k-of-n as the limits, so a
    single jump (a spike, a data-quality matter) does not open it, a sustained fast
    ramp does.  The stage passes values with gated ticks as NaN, so a rate is never
    measured across a spike or a gap.

    >>> from sentinelle.settings import TagSettings
    >>> r = RateOfChange([TagSettings(name="t", asset="a", node_id="n", rate_limit_per_s=0.5)], period_s=1.0)
    >>> [round(float(r.check(np.array([v])).rate[0]), 2) for v in (1.0, 1.2, 2.0)]
    [nan, 0.2, 0.8]
    """

    def __init__(self, tags: Sequence[TagSettings], period_s: float) -> None:
        limit = np.array([t.rate_limit_per_s if t.rate_limit_per_s is not None else np.inf for t in tags])
        self.rows = np.flatnonzero(np.isfinite(limit))
        self.any = bool(self.rows.size)
        self.n = len(tags)
        self.limit: FloatArray = limit
        spans = [max(1, round((t.rate_window_s or period_s) / period_s)) for t in tags]
        self.span = np.array([spans[i] for i in self.rows.tolist()], dtype=np.intp)
        self.span_s = self.span * period_s
        depth = int(self.span.max()) if self.any else 1
        # history[:, j]: the value j + 1 ticks ago, of the checked rows only.
        self.history: FloatArray = np.full((len(self.rows), depth), np.nan)

    def check(self, values: FloatArray) -> RateCheck:
        rate = np.full(self.n, np.nan)
        x = values[self.rows]
        past = self.history[np.arange(len(self.rows)), self.span - 1]
        with np.errstate(invalid="ignore"):
            rate[self.rows] = (x - past) / self.span_s
        self.history = np.roll(self.history, 1, axis=1)
        self.history[:, 0] = x
        finite = np.isfinite(rate)
        with np.errstate(invalid="ignore"):
            return RateCheck(
                rate=rate,
                violated=finite & (np.abs(rate) > self.limit),
                inside=finite & (np.abs(rate) <= self.limit),
            )


@dataclass(frozen=True, slots=True)
class BalanceRule:
    """One asset's energy balance, resolved to rows of its tag group."""

    asset: str
    flow: int
    hot: int
    cold: int
    power: int
    settings: EnergyBalanceSettings


@dataclass(frozen=True, slots=True)
class BalanceCheck:
    expected: FloatArray
    """factor · flow · (hot − cold), per rule (power tag units)."""
    relative_error: FloatArray
    """(power − expected) / expected, per rule; NaN where not checked."""
    violated: BoolArray
    inside: BoolArray


class EnergyBalance:
    """Measured power against ``factor · flow · (hot − cold)``, within a relative tolerance, per asset.

    The first law across an exchanger: when the heat meter, a temperature
    transmitter or the flow meter is wrong — or the exchanger loses heat somewhere —
    the three sides stop agreeing even while each tag looks ordinary.  Below
    ``min_expected_power`` (a stopped pump, a load near zero) the relative error is
    noise and the balance is not checked; the same holds for an expected power
    below zero (the hot and cold roles swapped in the configuration never alert).

    >>> from sentinelle.settings import EnergyBalanceSettings
    >>> s = EnergyBalanceSettings(flow_tag="f", hot_temp_tag="h", cold_temp_tag="c", power_tag="p")
    >>> b = EnergyBalance([BalanceRule("a", 0, 1, 2, 3, s)])
    >>> c = b.check(np.array([60.0, 12.0, 5.0, 420.0]))     # 1.163 · 60 · 7 = 488.5 kW expected
    >>> round(float(c.expected[0]), 1), round(float(c.relative_error[0]), 3), bool(c.violated[0])
    (488.5, -0.14, True)
    """

    def __init__(self, rules: Sequence[BalanceRule]) -> None:
        self.rules = tuple(rules)
        self.any = bool(self.rules)
        self.flow = np.array([r.flow for r in rules], dtype=np.intp)
        self.hot = np.array([r.hot for r in rules], dtype=np.intp)
        self.cold = np.array([r.cold for r in rules], dtype=np.intp)
        self.power = np.array([r.power for r in rules], dtype=np.intp)
        self.factor = np.array([r.settings.factor for r in rules])
        self.tolerance = np.array([r.settings.relative_tolerance for r in rules])
        self.min_expected = np.array([r.settings.min_expected_power for r in rules])

    def check(self, values: FloatArray) -> BalanceCheck:
        expected = self.factor * values[self.flow] * (values[self.hot] - values[self.cold])
        power = values[self.power]
        with np.errstate(invalid="ignore", divide="ignore"):
            checked = np.isfinite(expected) & np.isfinite(power) & (expected >= self.min_expected) & (expected > 0)
            relative = np.where(checked, (power - expected) / expected, np.nan)
            return BalanceCheck(
                expected=expected,
                relative_error=relative,
                violated=checked & (np.abs(relative) > self.tolerance),
                inside=checked & (np.abs(relative) <= self.tolerance),
            )
