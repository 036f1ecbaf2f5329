"""The acceptance gate: keep a site adapter only if it beats the base model on the held-back slice.

Early stopping keeps the weights with the lowest validation pinball loss, a single
number that trades point error against interval width.  On a deadband-compressed
export it can fall while the adapter's 80 % interval moves *away* from its nominal
coverage (seeds 1500 and 1555 of docs/results/deadband/: 0.836 → 0.872 and 0.855 →
0.902 on read points), and a detector reads the interval, not the pinball loss.
A plant wants an adapter only where it is better on its own held-back history on
both counts, so :func:`judge` asks, of the kept adapter's validation scores
against the base model's (step 0) on the same held-back slice (read points only):

* **point error**: MASE strictly lower;
* **calibration**: the coverage error ``|coverage_80 − 0.80|`` no larger.

Both scores are of forecasts only, so the gate does not depend on the forecaster's
internals.  An adapter that fails is saved as a no-op (the base model's forecasts)
and the manifest says which test failed (``finetune.acceptance_gate``).

>>> base = {"mase": 8.1, "coverage_80": 0.855}
>>> judge(base, {"mase": 6.4, "coverage_80": 0.902}).failed
('calibration',)
>>> judge(base, {"mase": 7.0, "coverage_80": 0.83}).accepted
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["NOMINAL_COVERAGE", "Verdict", "judge"]

NOMINAL_COVERAGE = 0.80
"""What ``coverage_80`` (the share of targets inside the 0.1–0.9 quantile interval) should be."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether an adapter passed the gate, and the tests it failed (``point_error``, ``calibration``)."""

    failed: tuple[str, ...]

    @property
    def accepted(self) -> bool:
        """True when no test failed."""
        return not self.failed


def judge(base: Mapping[str, float], adapter: Mapping[str, float]) -> Verdict:
    """The gate's verdict on ``adapter``'s validation scores against ``base``'s (``mase``, ``coverage_80``).

    A score that is not a finite number (no read point in the held-back slice) fails its
    test: an adapter whose benefit cannot be shown is not kept.
    """
    failed: list[str] = []
    b_mase, a_mase = float(base["mase"]), float(adapter["mase"])
    if not (math.isfinite(b_mase) and math.isfinite(a_mase) and a_mase < b_mase):
        failed.append("point_error")
    b_cov, a_cov = float(base["coverage_80"]), float(adapter["coverage_80"])
    if not (
        math.isfinite(b_cov)
        and math.isfinite(a_cov)
        and abs(a_cov - NOMINAL_COVERAGE) <= abs(b_cov - NOMINAL_COVERAGE) + 1e-12
    ):
        failed.append("calibration")
    return Verdict(tuple(failed))
