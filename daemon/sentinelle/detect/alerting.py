"""The one alert life cycle every detector's findings go through.

Per tag group, one :class:`~.lifecycle.KofN` per detector (its subjects as rows, its
``Spec``'s k of n and clearing run) turns findings into openings and clearings; the
:class:`~.alerts.AlertBook` makes the events.  Written once for every kind:

* **open** — k of n flagged ticks; the detector explains the subject (the tag it files the
  alert under, the numbers, contributors, magnitude for severity, limit, members);
* **clear** — a run of normal ticks; explained with the alert's own tag;
* **update** — an open alert flagged again (when the kind sends updates): the book decides
  whether it escalated, grew or gained a member;
* **pause** — a subject whose asset's detection pauses (a mode, a hold-off, maintenance;
  only maintenance for kinds with ``paused_by_modes`` false) is cleared at once, with
  ``clear_reason`` and the reason as its message, and its history forgotten; so are the
  asset's alerts waiting out their re-arm time, and its flood.

Within one detector, the events of a tick come opened, cleared, updated (each in subject
order).  A detector with nothing flagged now, nothing open and no flag in its last ``n``
ticks is not stepped at all: nothing could change (the k-of-n ring is all false already).

* **severe** — a flagged subject the detector marks ``severe`` opens at once, without
  waiting for k of n (the residual detector marks ticks beyond ``detect.score_severe_sigmas``).

What an operator is told beyond that — a normal clearing held for the re-arm time, a
return within it continuing the alert, an asset's openings grouped into a flood — is the
book's (``alerts.py``, ``chatter.py``, ``flood.py``); a subject whose opening joined a
flood has no alert of its own, and its clearing only tells the book so (``forget``).

The life cycle is also the :class:`~.detectors.base.AlertView` detectors read to decide
what to learn.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from ..metrics import Metrics
from ..records import AlertEvent, BoolArray, ClearReason, IntArray
from .alerts import AlertBook, AlertKey
from .detectors.base import Detector, Findings, Layout, Tick
from .lifecycle import KofN


class AlertCycle:
    """Open/clear state of every detector of one tag group, and the events it makes."""

    def __init__(
        self, layout: Layout, detectors: Sequence[Detector], book: Callable[[], AlertBook], metrics: Metrics
    ) -> None:
        self.layout = layout
        self.book = book
        self.metrics = metrics
        self.trackers: dict[str, KofN] = {}
        self._quiet: dict[str, int] = {}
        """Per detector: ticks since it last flagged anything (capped at its n)."""
        for d in detectors:
            s = d.spec
            if d.name in self.trackers:
                raise ValueError(f"two detectors named {d.name!r} in one tag group")
            self.trackers[d.name] = KofN(len(s.subjects), s.open_k, s.open_n, s.clear_steps)
            self._quiet[d.name] = s.open_n

    # -- AlertView -------------------------------------------------------------------

    def open(self, detector: Detector) -> BoolArray:
        return self.trackers[detector.name].open

    def busy_assets(self) -> frozenset[str]:
        return frozenset(alert.asset for alert in self.book().open.values())

    # -- the life cycle --------------------------------------------------------------

    def advance(self, detector: Detector, tick: Tick, found: Findings) -> list[AlertEvent]:
        """One tick of one detector: count, open, clear, update."""
        spec = detector.spec
        if found.count:
            self.metrics.ticks_anomalous.labels(spec.kind).inc(found.count)
        tracker = self.trackers[detector.name]
        if found.flagged.any():
            self._quiet[detector.name] = 0
        elif self._quiet[detector.name] >= spec.open_n and not tracker.open.any():
            return []
        else:
            self._quiet[detector.name] += 1
        opened, cleared = tracker.step(found.flagged, found.normal, found.severe if found.severe.any() else None)
        book = self.book()
        names = self.layout.asset_names
        events: list[AlertEvent] = []
        for j in opened.tolist():
            # A return within the re-arm time continues the alert filed under its first tag: its numbers
            # must be that tag's, not those of whichever tag leads the asset now.
            held = book.open.get((spec.kind, spec.subjects[j]))
            ex = detector.explain(tick, found, j, held.tag if held is not None else None)
            events.append(
                book.open_alert(
                    (spec.kind, spec.subjects[j]),
                    asset=names[spec.subject_assets[j]],
                    tag=ex.tag,
                    obs=ex.obs,
                    magnitude=ex.magnitude,
                    contributors=ex.contributors,
                    limit=ex.limit,
                    reason=ex.reason if ex.reason is not None else spec.reason,
                    members=ex.members,
                )
            )
        for j in cleared.tolist():
            key: AlertKey = (spec.kind, spec.subjects[j])
            alert = book.open.get(key)
            if alert is None:
                book.forget(key)  # its opening had joined a flood: the condition ended
                continue
            ex = detector.explain(tick, found, j, alert.tag)
            ev = book.clear(key, ex.obs, ex.contributors, ex.limit)
            if ev is not None:
                events.append(ev)
        if spec.updates:
            just_opened = set(opened.tolist())
            for j in np.flatnonzero(tracker.open & found.flagged).tolist():
                if j in just_opened:
                    continue
                key = (spec.kind, spec.subjects[j])
                alert = book.open.get(key)
                if alert is None:
                    continue
                ex = detector.explain(tick, found, j, alert.tag)
                ev = book.maybe_update(key, ex.obs, ex.magnitude, ex.contributors, ex.limit, members=ex.members)
                if ev is not None:
                    events.append(ev)
        return events

    def pause(
        self,
        detectors: Sequence[Detector],
        tick: Tick,
        why: Mapping[int, str],
        cause: Mapping[int, ClearReason],
    ) -> list[AlertEvent]:
        """Clear the open alerts of subjects whose asset's detection waits (``why``/``cause`` per asset index).

        Events show the numbers of the tag each alert is filed under.  Every paused subject's
        history is forgotten, open or not.
        """
        book = self.book()
        events: list[AlertEvent] = []
        for d in detectors:
            spec = d.spec
            paused = tick.paused if spec.paused_by_modes else tick.maintenance
            if not paused.any() or not len(spec.subjects):
                continue
            for j in self.trackers[d.name].force_clear(paused[spec.subject_assets]).tolist():
                key: AlertKey = (spec.kind, spec.subjects[j])
                alert = book.open.get(key)
                if alert is None:
                    book.forget(key)
                    continue
                k = int(spec.subject_assets[j])
                row = self.layout.row_of[alert.tag]
                ev = book.clear(key, tick.obs(row), tick.contributors(row), why=why[k], clear_reason=cause[k])
                if ev is not None:
                    events.append(ev)
        # Alerts no detector tracks any more (waiting out their re-arm time, floods) clear now too.
        names = self.layout.asset_names
        return events + book.clear_waiting(tick.ts, {names[k]: (why[k], cause[k]) for k in why})

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, int]]:
        """Every tracker's k-of-n ring and clearing run, and the quiet counts (a scale-out snapshot)."""
        arrays: dict[str, np.ndarray] = {}
        for name, t in self.trackers.items():
            arrays |= {f"{name}~ring": t.ring, f"{name}~open": t.open, f"{name}~run": t.normal_run}
            arrays[f"{name}~pos"] = np.array([t.pos])
        return arrays, dict(self._quiet)

    def restore(
        self, arrays: Mapping[str, np.ndarray], quiet: Mapping[str, int], moved: Mapping[str, IntArray] | None = None
    ) -> None:
        """What :meth:`state` saved for the same detectors and subjects; ``ValueError`` when it does not fit.

        ``moved``: per detector whose saved state was of an older version (``MovesSubjects``), the subject
        each saved row is now; the rows of subjects it did not have start fresh (no alert open).
        """
        for name, t in self.trackers.items():
            ring, is_open, run = arrays[f"{name}~ring"], arrays[f"{name}~open"], arrays[f"{name}~run"]
            if moved is not None and name in moved:
                ring, is_open, run = _moved(moved[name], t, ring, is_open, run)
            if ring.shape != t.ring.shape or is_open.shape != t.open.shape or run.shape != t.normal_run.shape:
                raise ValueError(f"alert life-cycle state of {name!r} has another shape")
            t.ring, t.open, t.normal_run = ring.astype(bool), is_open.astype(bool), run.astype(np.int64)
            t.pos = int(arrays[f"{name}~pos"][0]) % t.n
        self._quiet = {name: int(quiet[name]) for name in self.trackers}

    def reset(self) -> None:
        """Forget every open alert and the recent ticks (after a replay of history)."""
        for tracker in self.trackers.values():
            tracker.reset()


def _moved(
    to: IntArray, t: KofN, ring: np.ndarray, is_open: np.ndarray, run: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A saved tracker's rows put where their subjects are now; the others as a new tracker has them."""
    if len(to) != len(is_open) or ring.shape[1:] != t.ring.shape[1:] or (len(to) and to.max() >= len(t.open)):
        raise ValueError("the saved alert life cycle does not fit the subjects it moved to")
    new_ring, new_open, new_run = np.zeros_like(t.ring), np.zeros_like(t.open), np.zeros_like(t.normal_run)
    new_ring[to], new_open[to], new_run[to] = ring, is_open, run
    return new_ring, new_open, new_run
