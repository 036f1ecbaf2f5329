"""Static limit rules from the configuration (e.g. chilled water 5 ± 0.2 °C).

Limits are physics and contracts, not statistics: they alert even when the
forecaster has learnt to expect the violation.  Vectorised per tag group;
tags without a limit carry ±inf and never trip.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..records import BoolArray, FloatArray
from ..settings import TagSettings


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
