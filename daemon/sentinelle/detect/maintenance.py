"""Maintenance windows: "is asset X in maintenance at ts?", for the detect stage.

An asset in maintenance is being worked on: its tags go flat, jump or are switched
off on purpose.  Alerting on that would teach operators to ignore sentinelle, and
learning from it would teach the detectors that a stopped machine is normal.  So
while an asset is in maintenance the detect stage opens no alert for it, clears
the ones that were open (``clear_reason = "maintenance"``) and its detectors do not
learn; ``sentinelle_asset_maintenance{asset}`` says so.

Windows come from two places and are treated alike:

* the configuration (``[[maintenance.windows]]``: planned work, survives restarts);
* operator commands on Kafka (``maintenance.start`` with an ``until``, and
  ``maintenance.end`` to finish early; ``sources/commands.py``).

A window covers ``[start_ts, end_ts)`` in the same clock as the tags' source
timestamps (UTC epoch seconds): the plant's clock decides, so a replay of history
or an evaluation sees the same windows the live daemon saw.  Overlapping windows
of one asset simply add up; ending the maintenance of an asset ends every window
that covers that moment (windows planned for later stay).

>>> cal = MaintenanceCalendar()
>>> cal.add(MaintenanceWindow("chiller1", 100.0, 200.0, origin="command", window_id="c-1", by="ana"))
>>> cal.in_maintenance("chiller1", 150.0), cal.in_maintenance("chiller1", 200.0), cal.in_maintenance("ahu1", 150.0)
(True, False, False)
>>> cal.end("chiller1", 160.0)
1
>>> cal.in_maintenance("chiller1", 170.0)
False
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from ..metrics import Metrics
from ..records import BoolArray, FloatArray, IntArray
from ..settings import MaintenanceSettings
from .lifecycle import KofN

WindowOrigin = Literal["config", "command"]


@dataclass(frozen=True, slots=True)
class MaintenanceWindow:
    """One period during which one asset is in maintenance: ``[start_ts, end_ts)``, epoch seconds."""

    asset: str
    start_ts: float
    end_ts: float
    origin: WindowOrigin
    window_id: str
    """``config:<index>`` for a configured window, the ``command_id`` for a command's."""
    by: str = ""
    reason: str = ""

    def covers(self, ts: float) -> bool:
        return self.start_ts <= ts < self.end_ts


class MaintenanceCalendar:
    """The maintenance windows of every asset; cheap to ask once per tick.

    Windows are few (a handful per asset at most), so each asset keeps a small list
    sorted by start.  :meth:`assets_at` caches its answer for the last ``ts`` asked,
    because every tag group of a tick asks with the same ``ts``.
    """

    def __init__(self, windows: Iterable[MaintenanceWindow] = ()) -> None:
        self._by_asset: dict[str, list[MaintenanceWindow]] = {}
        self._cached_ts: float | None = None
        self._cached: frozenset[str] = frozenset()
        for w in windows:
            self.add(w)

    def __len__(self) -> int:
        return sum(len(ws) for ws in self._by_asset.values())

    def windows(self, asset: str | None = None) -> list[MaintenanceWindow]:
        """Every window (of ``asset``, or of all assets), sorted by asset then start."""
        if asset is not None:
            return list(self._by_asset.get(asset, ()))
        return [w for a in sorted(self._by_asset) for w in self._by_asset[a]]

    def add(self, window: MaintenanceWindow) -> None:
        """Add a window; an empty one (``end_ts <= start_ts``) is ignored."""
        if not window.end_ts > window.start_ts:
            return
        ws = self._by_asset.setdefault(window.asset, [])
        bisect.insort(ws, window, key=lambda w: (w.start_ts, w.end_ts))
        self._cached_ts = None

    def end(self, asset: str, ts: float) -> int:
        """End at ``ts`` every window of ``asset`` that covers ``ts``; how many were ended.

        A window that starts exactly at ``ts`` covers it and becomes empty: it is removed.
        """
        ws = self._by_asset.get(asset)
        if not ws:
            return 0
        kept: list[MaintenanceWindow] = []
        ended = 0
        for w in ws:
            if w.covers(ts):
                ended += 1
                if ts > w.start_ts:
                    kept.append(replace(w, end_ts=ts))
            else:
                kept.append(w)
        if ended:
            self._by_asset[asset] = kept
            self._cached_ts = None
        return ended

    def active(self, asset: str, ts: float) -> MaintenanceWindow | None:
        """The window of ``asset`` covering ``ts`` that ends last, or None."""
        best: MaintenanceWindow | None = None
        for w in self._by_asset.get(asset, ()):
            if w.start_ts > ts:
                break
            if w.covers(ts) and (best is None or w.end_ts > best.end_ts):
                best = w
        return best

    def in_maintenance(self, asset: str, ts: float) -> bool:
        return self.active(asset, ts) is not None

    def assets_at(self, ts: float) -> frozenset[str]:
        """Every asset in maintenance at ``ts``."""
        if ts != self._cached_ts:
            self._cached = frozenset(a for a in self._by_asset if self.active(a, ts) is not None)
            self._cached_ts = ts
        return self._cached

    def row_mask(self, asset_rows: Mapping[str, Sequence[int]], n_rows: int, ts: float) -> BoolArray:
        """Rows of a tag group (``asset → rows``) whose asset is in maintenance at ``ts``.

        >>> cal = MaintenanceCalendar([MaintenanceWindow("b", 0.0, 10.0, "config", "config:0")])
        >>> cal.row_mask({"a": [0, 2], "b": [1]}, 3, 5.0).tolist()
        [False, True, False]
        """
        mask = np.zeros(n_rows, dtype=bool)
        for asset in self.assets_at(ts):
            rows = asset_rows.get(asset)
            if rows:
                mask[list(rows)] = True
        return mask

    def prune(self, before_ts: float) -> int:
        """Forget windows that ended before ``before_ts``; how many were forgotten."""
        removed = 0
        for asset in list(self._by_asset):
            ws = self._by_asset[asset]
            kept = [w for w in ws if w.end_ts >= before_ts]
            removed += len(ws) - len(kept)
            if kept:
                self._by_asset[asset] = kept
            else:
                del self._by_asset[asset]
        if removed:
            self._cached_ts = None
        return removed


def calendar_from_settings(settings: MaintenanceSettings) -> MaintenanceCalendar:
    """The configured windows (``[[maintenance.windows]]``) as a calendar."""
    return MaintenanceCalendar(
        MaintenanceWindow(
            asset=w.asset,
            start_ts=w.start.timestamp(),
            end_ts=w.end.timestamp(),
            origin="config",
            window_id=f"config:{i}",
            reason=w.reason,
        )
        for i, w in enumerate(settings.windows)
    )


class MaintenanceGate:
    """The detect stage's use of the calendar: which assets of a tag group wait, and what it suppressed.

    * :meth:`assets` answers per tick and keeps ``sentinelle_asset_maintenance{asset}``
      in step (set on every change, so the gauge follows data time, not command time).
    * :meth:`count_suppressed` runs the open rule (``open_k`` of ``open_n``) on the rows
      of assets in maintenance — anomalous when the residual detector flagged one of its
      tags or a limit was crossed — and counts each time it is met in
      ``sentinelle_alerts_suppressed_total{asset, reason="maintenance"}``: the alerts
      maintenance kept from opening.  It never opens anything; rows leave it clean.
    """

    def __init__(
        self,
        calendar: MaintenanceCalendar,
        metrics: Metrics,
        assets: Iterable[str],
        *,
        open_k: int,
        open_n: int,
        clear_steps: int,
    ) -> None:
        self.calendar = calendar
        self.metrics = metrics
        self._open_k = open_k
        self._open_n = open_n
        self._clear_steps = clear_steps
        self._in: set[str] = set()
        """Assets whose gauge says 1."""
        self._shadow: dict[tuple[str, ...], KofN] = {}
        for asset in sorted(set(assets)):
            metrics.asset_maintenance.labels(asset).set(0.0)

    def assets(self, asset_names: Sequence[str], ts: float) -> BoolArray:
        """Per asset of a group: in maintenance at ``ts``."""
        now_in = self.calendar.assets_at(ts)
        if not now_in and not self._in:
            return np.zeros(len(asset_names), dtype=bool)  # the usual tick: nothing to look up
        flags = np.array([a in now_in for a in asset_names], dtype=bool)
        for asset, flag in zip(asset_names, flags.tolist(), strict=True):
            if flag and asset not in self._in:
                self._in.add(asset)
                self.metrics.asset_maintenance.labels(asset).set(1.0)
            elif not flag and asset in self._in:
                self._in.discard(asset)
                self.metrics.asset_maintenance.labels(asset).set(0.0)
        return flags

    def describe(self, asset: str, ts: float) -> str:
        """Why the asset's alerts cleared, for the event's message."""
        window = self.calendar.active(asset, ts)
        if window is None:
            return f"{asset}: in maintenance"
        until = dt.datetime.fromtimestamp(window.end_ts, tz=dt.UTC).isoformat(timespec="seconds")
        who = f" by {window.by}" if window.by else ""
        why = f": {window.reason}" if window.reason else ""
        return f"{asset}: in maintenance until {until.replace('+00:00', 'Z')}{who}{why}"

    def count_suppressed(
        self,
        group: tuple[str, ...],
        asset_names: Sequence[str],
        asset_index: IntArray,
        in_maintenance: BoolArray,
        anomalous: BoolArray,
        values: FloatArray,
    ) -> None:
        """Advance the shadow open rule of one tag group (``group``: its tag names) by one tick.

        Per asset, as an incident: anomalous when any of its tags is, normal when all have
        a value and none is.
        """
        if not in_maintenance.any():
            self._shadow.pop(group, None)  # out of maintenance: the next window starts clean
            return
        n = len(asset_names)
        shadow = self._shadow.get(group)
        if shadow is None:
            shadow = self._shadow[group] = KofN(n, self._open_k, self._open_n, self._clear_steps)
        any_anomalous = np.bincount(asset_index, weights=anomalous, minlength=n) > 0
        gaps = np.bincount(asset_index, weights=~np.isfinite(values), minlength=n) > 0
        shadow.force_clear(~in_maintenance)
        flagged = any_anomalous & in_maintenance
        opened, _ = shadow.step(flagged, in_maintenance & ~gaps & ~flagged)
        for k in opened.tolist():
            self.metrics.alerts_suppressed.labels(asset_names[k], "maintenance").inc()
