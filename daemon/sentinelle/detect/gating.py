"""Which assets' detection waits at a tick, and why: operating modes and maintenance, for the detect stage.

Modes (``modes.py``): detection on an asset waits while it is stopped or starting and
for a hold-off after any change.  Maintenance (``maintenance.py``: configured windows
and operator commands) pauses an asset the same way and wins over modes — the asset is
being worked on, whatever its tags say.  A paused asset's rows are gated (no detector
judges or learns them) and its alerts are cleared by the life cycle, with the words this
module gives (:meth:`AssetGate.reasons`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..metrics import Metrics
from ..records import BoolArray, ClearReason, FloatArray
from .detectors.base import Layout
from .maintenance import MaintenanceGate
from .modes import AssetModes
from .quality import QualityTick


@dataclass(frozen=True, slots=True)
class AssetGates:
    """Per asset of a tag group at one tick."""

    reason: tuple[str | None, ...]
    """Why detection waits (``mode``, ``mode_holdoff``, ``maintenance``), None: it does not."""
    paused: BoolArray
    maintenance: BoolArray


class AssetGate:
    """Modes and maintenance, asked once per tag group and tick."""

    def __init__(self, modes: AssetModes, maintenance: MaintenanceGate, metrics: Metrics) -> None:
        self.modes = modes
        self.maintenance = maintenance
        self.metrics = metrics
        self._latest_mode_values: dict[str, float] = {}

    def mode_rows(self, layout: Layout) -> dict[str, int]:
        """Tags read by mode rules → their row in ``layout``."""
        return {tag: layout.row_of[tag] for tag in self.modes.tags if tag in layout.row_of}

    def assets(self, layout: Layout, mode_rows: dict[str, int], ts: float, values: FloatArray) -> AssetGates:
        if mode_rows:
            for tag, r in mode_rows.items():
                self._latest_mode_values[tag] = float(values[r])
            self.modes.update(ts, self._latest_mode_values)
        reason: list[str | None] = [self.modes.gate(a, ts) for a in layout.asset_names]
        in_maintenance = self.maintenance.assets(layout.asset_names, ts)
        if in_maintenance.any():
            reason = ["maintenance" if m else r for m, r in zip(in_maintenance.tolist(), reason, strict=True)]
        paused = np.array([r is not None for r in reason], dtype=bool)
        return AssetGates(tuple(reason), paused, in_maintenance)

    def count_gated(self, layout: Layout, gates: AssetGates, dq: QualityTick) -> None:
        """``sentinelle_ticks_gated_total{reason}``: rows of paused assets, then data-quality reasons elsewhere."""
        gated = self.metrics.ticks_gated
        for k, reason in enumerate(gates.reason):
            if reason is not None:
                gated.labels(reason).inc(len(layout.asset_rows[layout.asset_names[k]]))
        free = ~gates.paused[layout.asset_index]
        for reason, rows in (
            ("missing", dq.missing),
            ("stuck", dq.stuck),
            ("spike", dq.spike | dq.spike_confirmed),
            ("recovery", dq.recovery),
        ):
            count = int((rows & free).sum())
            if count:
                gated.labels(reason).inc(count)

    def count_suppressed(
        self, layout: Layout, gates: AssetGates, withheld: Sequence[BoolArray], values: FloatArray
    ) -> None:
        """Count the alerts maintenance keeps from opening: what detectors flagged on its assets' rows."""
        anomalous = np.zeros(len(values), dtype=bool)
        for rows in withheld:
            anomalous |= rows
        self.maintenance.count_suppressed(
            layout.tags, layout.asset_names, layout.asset_index, gates.maintenance, anomalous, values
        )

    def reasons(self, layout: Layout, gates: AssetGates, ts: float) -> tuple[dict[int, str], dict[int, ClearReason]]:
        """Per paused asset (index): the message of its alerts' clearing, and the clear reason."""
        why: dict[int, str] = {}
        cause: dict[int, ClearReason] = {}
        for k, (a, reason) in enumerate(zip(layout.asset_names, gates.reason, strict=True)):
            if reason == "maintenance":
                why[k], cause[k] = self.maintenance.describe(a, ts), "maintenance"
            elif reason is not None:
                why[k], cause[k] = f"{a}: detection paused ({_words(reason, self.modes.mode(a))})", "detection_paused"
        return why, cause


def _words(reason: str, mode: str | None) -> str:
    if reason == "mode":
        return f"mode {mode}"
    return f"hold-off after a change to mode {mode}"
