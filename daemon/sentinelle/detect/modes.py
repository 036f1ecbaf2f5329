"""Operating modes: detection on an asset pauses while it is stopped or starting, and after any change.

A pump that stops, a chiller that starts, a load step: each moves every tag of
the asset far from its forecast and its learned normal state, and none is a
fault.  Each asset with ``[[detect.assets.modes]]`` rules gets a mode per tick
— the first rule that matches (``tag`` below / above / equal to a value), else
``running`` — and detection on it (scoring, learning, every alert kind except
missing data) is paused

* while the mode has ``detect = false`` (stopped, start-up), and
* for ``mode_holdoff_s`` of data time after every mode change (at least
  ``mode_holdoff_min_periods`` periods of the asset's slowest tag).

The first mode seen after the daemon starts is not a change.  While a rule's tag
has no value the asset keeps its mode: a gap is not a stop.  The mode is the
gauge ``sentinelle_asset_mode{asset, mode}``; ``sentinelle_asset_detection_gated{asset}``
is 1 while detection waits.

>>> from prometheus_client import CollectorRegistry
>>> from sentinelle.metrics import Metrics
>>> from sentinelle.settings import AssetDetectSettings, ModeRuleSettings
>>> stopped = ModeRuleSettings(mode="stopped", tag="a.pump_pct", below=5.0)
>>> modes = AssetModes([AssetDetectSettings(name="a", modes=(stopped,), mode_holdoff_s=10.0)],
...                    Metrics(CollectorRegistry()), {"a": 1.0})
>>> ticks = [(0, 50.0), (1, 2.0), (5, 60.0), (16, 60.0)]
>>> [(modes.update(ts, {"a.pump_pct": v}), modes.gate("a", ts)) for ts, v in ticks]
[([], None), (['a'], 'mode'), (['a'], 'mode_holdoff'), ([], None)]
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ..metrics import Metrics
from ..settings import AssetDetectSettings, ModeRuleSettings
from ..timing import mode_holdoff_s

log = logging.getLogger(__name__)

RUNNING = "running"
GateReason = Literal["mode", "mode_holdoff"]


@dataclass(slots=True)
class _AssetMode:
    settings: AssetDetectSettings
    detecting: dict[str, bool]
    holdoff_s: float
    mode: str | None = None
    changed_at: float = -math.inf
    gated: bool | None = None


class AssetModes:
    """The mode of every asset that has mode rules."""

    def __init__(
        self, assets: Sequence[AssetDetectSettings], metrics: Metrics, periods: Mapping[str, float] | None = None
    ) -> None:
        """``periods``: each asset's slowest tag period (for the hold-off's floor; absent: no floor)."""
        self.metrics = metrics
        self._assets: dict[str, _AssetMode] = {}
        for a in assets:
            if not a.modes:
                continue
            detecting = {RUNNING: True}
            for rule in a.modes:
                # A mode named by several rules detects only if all of them say so.
                detecting[rule.mode] = detecting.get(rule.mode, True) and rule.detect
            holdoff = mode_holdoff_s(a, periods[a.name]) if periods and a.name in periods else a.mode_holdoff_s
            self._assets[a.name] = _AssetMode(a, detecting, holdoff)
        self.tags = frozenset(rule.tag for a in self._assets.values() for rule in a.settings.modes)
        """The tags any rule reads."""

    def mode(self, asset: str) -> str | None:
        """The asset's current mode; None before its first evaluation or without rules."""
        state = self._assets.get(asset)
        return state.mode if state is not None else None

    def state(self) -> dict[str, dict[str, Any]]:
        """Each asset's mode and last change (data time; None: none yet), JSON-ready, for scale-out snapshots.

        A worker that takes an asset over mid-hold-off must go on waiting: without this its first
        mode would not be a change, and detection would resume at once after a start-up.
        """
        return {
            a: {"mode": st.mode, "changed_at": st.changed_at if math.isfinite(st.changed_at) else None}
            for a, st in self._assets.items()
            if st.mode is not None
        }

    def restore(self, saved: Mapping[str, Mapping[str, Any]]) -> None:
        """Take over :meth:`state` of another process; assets or modes no rule names any more are ignored."""
        for asset, m in saved.items():
            st = self._assets.get(asset)
            if st is None or m.get("mode") not in st.detecting:
                log.info("asset %s: saved mode %r not restored (its rules changed)", asset, m.get("mode"))
                continue
            st.mode = str(m["mode"])
            changed = m.get("changed_at")
            st.changed_at = -math.inf if changed is None else float(changed)
            st.gated = None  # the next gate() sets the gauge
            for name in st.detecting:
                self.metrics.asset_mode.labels(asset, name).set(1.0 if name == st.mode else 0.0)

    def update(self, ts: float, latest: Mapping[str, float]) -> list[str]:
        """Evaluate every asset's rules on the latest values of their tags; return the assets whose mode changed."""
        changed: list[str] = []
        for asset, state in self._assets.items():
            mode = _evaluate(state.settings.modes, latest)
            if mode is None or mode == state.mode:
                continue
            first = state.mode is None
            log.info("asset %s: mode %s -> %s", asset, state.mode, mode)
            state.mode = mode
            for name in state.detecting:
                self.metrics.asset_mode.labels(asset, name).set(1.0 if name == mode else 0.0)
            if not first:
                state.changed_at = ts
                changed.append(asset)
        return changed

    def gate(self, asset: str, ts: float) -> GateReason | None:
        """Why detection on ``asset`` waits at ``ts`` (None: it does not)."""
        state = self._assets.get(asset)
        if state is None or state.mode is None:
            return None
        reason: GateReason | None = None
        if not state.detecting[state.mode]:
            reason = "mode"
        elif ts - state.changed_at < state.holdoff_s:
            reason = "mode_holdoff"
        gated = reason is not None
        if gated != state.gated:
            state.gated = gated
            self.metrics.asset_detection_gated.labels(asset).set(1.0 if gated else 0.0)
        return reason


def _evaluate(rules: Sequence[ModeRuleSettings], latest: Mapping[str, float]) -> str | None:
    """The first matching rule's mode, ``running`` when none matches, None when a rule cannot be read."""
    for rule in rules:
        v = latest.get(rule.tag, math.nan)
        if not math.isfinite(v):
            return None
        if (
            (rule.below is not None and v < rule.below)
            or (rule.above is not None and v > rule.above)
            or (rule.equals is not None and abs(v - rule.equals) <= 1e-6)
        ):
            return rule.mode
    return RUNNING
