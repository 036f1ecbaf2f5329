"""Per-tag rolling windows: samples in, resampled fixed-period windows out.

Tags that share a sampling period form a *group*; a group keeps one numpy ring
buffer of shape (tags, context_steps), so closing a slot for 10,000 tags is one
column write, not 10,000 Python operations.

The resampling rule (documented for users in README.md, "Data rules"):

* Time is cut into slots of ``period_s``; slot ``k`` covers ``((k-1)·p, k·p]``
  and is labelled by its end ``k·p``.  Its value is the **last** accepted sample
  at or before ``k·p`` — OPC-UA reports values only when they change, so a tag's
  value holds until the next change (sample-and-hold, as historians do).
* A held value older than ``max_hold_s`` is no longer trusted: the slot is a
  *gap* (NaN), counted in ``sentinelle_window_gap_slots_total``.  Gaps are never
  forecast against or scored.
* While a tag's source is disconnected (:meth:`Windows.set_source_down`), its
  value is not held at all: every slot is a gap, flagged in ``source_down``.
* Slots close by *event time*: a group's watermark is the newest source timestamp
  seen (of any tag) minus its ``allowed_lateness_s``; every slot ending before the
  watermark closes.  When nothing arrives for ``idle_close_s`` of wall time, the
  watermark moves with the wall clock instead, so a silent plant still produces
  (gap) slots.
* Each of these three constants is per group: the seconds configured, or by
  default a number of the group's periods (:mod:`sentinelle.timing`), so the same
  settings hold a jittered hourly sample and notice a silent 1 s tag.
* A sample is skipped and counted, by reason, when its quality is Bad or
  Uncertain, its value is not a number (strings, None) or not finite, its
  timestamp equals the tag's previous one (``duplicate``: the first wins), is
  older than it (``out_of_order``), or falls in a slot that already closed
  (``late``).  Booleans are accepted as 0/1.
* **Held slots** (compressed history, issue 17): while the backfill replays a
  plant's export it passes each sample's *held* flag (a forward-filled cell, or a
  value carried to the read's start: :func:`~sentinelle.sources.history.held_mask`)
  with :meth:`Windows.ingest`.  A closed slot is then *changed* when at least one
  sample **read** (not held) fell into it, and *held* otherwise — a wide export's
  filled cells and the windows' own sample-and-hold between an event log's rows
  count alike — and the batch carries the mask (``WindowBatch.held``), so the
  detectors do not take a value known only to within the export's deadband for a
  measurement (``detect.history_held``).  Live batches carry no mask.
* **Engineering ranges** a source read (OPC-UA EURange: :meth:`Windows.set_engineering_ranges`)
  go with every batch of the tags' group from the next slot on (``WindowBatch.eu_low`` /
  ``eu_high``, replaced as a whole when one changes), so the detectors get them through the
  same records as the values.
* **Coarse contexts** (``coarse_stride_steps`` S > 1, the asset model's long reference:
  ``forecast.asset_context_stride_steps``): each group also keeps a ring of ``context_steps`` means
  of S slots (NaN-aware; a slot whose every value is a gap is a gap).  A coarse slot closes with
  every slot whose index is a multiple of S, from the S newest slots of the ring, so it costs one
  column of means per S slots and the same memory as the ring; every batch carries the coarse
  contexts as of the newest such slot (``WindowBatch.coarse_contexts``, one array shared between
  the batches in between).  A jump past the window (:meth:`TagGroup.close_due`) leaves gap coarse
  slots for the coarse slots it skipped.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from .metrics import Metrics
from .records import EngineeringRange, FloatArray, Quality, Sample, WindowBatch
from .settings import TagSettings, WindowSettings
from .timing import WindowTiming, window_timing

log = logging.getLogger(__name__)

_EPS = 1e-9


def slot_of(ts: float, period_s: float) -> int:
    """Index ``k`` of the slot ``((k-1)·p, k·p]`` holding ``ts``.

    >>> slot_of(100.0, 1.0), slot_of(100.2, 1.0), slot_of(99.9, 0.5)
    (100, 101, 200)
    """
    return math.ceil(ts / period_s - _EPS)


def _oldest_first(ring: FloatArray, pos: int) -> FloatArray:
    """A ring's columns oldest first (``pos``: its oldest column, the next to be written)."""
    return np.concatenate((ring[:, pos:], ring[:, :pos]), axis=1)


def _fill_newest(ring: FloatArray, saved: FloatArray) -> None:
    """``ring`` (written from column 0 on) takes the newest columns of ``saved`` (oldest first) at its end, NaN
    before them: the context length may have changed between the two processes."""
    keep = min(saved.shape[1], ring.shape[1])
    ring[:] = np.nan
    ring[:, ring.shape[1] - keep :] = saved[:, saved.shape[1] - keep :]


class TagGroup:
    """Ring buffer and slot clock of all tags sharing one period."""

    def __init__(
        self,
        period_s: float,
        tags: Sequence[TagSettings],
        context_steps: int,
        timing: WindowTiming,
        coarse_stride_steps: int = 1,
    ) -> None:
        if not 1 <= coarse_stride_steps <= context_steps:
            raise ValueError(
                f"coarse_stride_steps must be in 1..{context_steps} (the context), got {coarse_stride_steps}"
            )
        self.period_s = period_s
        self.timing = timing
        """Lateness, hold and idle close of this group (seconds)."""
        self.tags = tuple(t.name for t in tags)
        self.assets = tuple(t.asset for t in tags)
        self.row = {name: i for i, name in enumerate(self.tags)}
        n = len(self.tags)
        self.context_steps = context_steps
        self.ring: FloatArray = np.full((n, context_steps), np.nan)
        self.pos = 0
        self.coarse_stride = coarse_stride_steps
        self.coarse: FloatArray | None = np.full((n, context_steps), np.nan) if coarse_stride_steps > 1 else None
        """Means of ``coarse_stride`` slots, a ring as ``ring`` (module docstring); None with stride 1."""
        self.coarse_pos = 0
        self._closed_since_jump = 0
        """Slots closed since the last jump past the window: older columns of ``ring`` are not the slots
        before them, so a coarse slot takes only these."""
        self._coarse_ctx: FloatArray | None = None
        self._order_coarse()
        self.last_ts: FloatArray = np.full(n, -np.inf)
        """Newest accepted source timestamp per tag (duplicate / out-of-order checks)."""
        self.value: FloatArray = np.full(n, np.nan)
        self.value_ts: FloatArray = np.full(n, -np.inf)
        """Each tag's value (and its timestamp) as of the end of the last closed slot."""
        # Samples accepted but newer than the last closed slot: with allowed_lateness_s of a
        # period or more, samples of later slots arrive before a slot closes, and must not
        # leak into it.  Applied in arrival order (per tag, time order) when slots close.
        self._pend_rows: list[int] = []
        self._pend_ts: list[float] = []
        self._pend_values: list[float] = []
        self._pend_read: list[bool] = []
        self.changed = np.zeros(n, dtype=bool)
        """Tags with a read (not held) sample in the slot being filled (reset at every close)."""
        self.marking_held = False
        """Whether closed slots carry the held mask (set while history with held flags is replayed)."""
        self.next_slot: int | None = None
        """Index of the next slot to close; None until the first watermark."""
        self.down = np.zeros(n, dtype=bool)
        """Tags whose source is disconnected: their held values are not trusted."""
        self.eu_low: FloatArray | None = None
        self.eu_high: FloatArray | None = None
        """Engineering ranges read from the sources (NaN: none), replaced (never changed in place) when one
        changes, so a detector sees a new range as a new array; None: no tag of the group has one."""

    def start_at(self, watermark: float) -> None:
        self.next_slot = slot_of(watermark, self.period_s)

    def due(self, watermark: float) -> bool:
        return self.next_slot is not None and self.next_slot * self.period_s < watermark - _EPS

    def close_due(self, watermark: float, max_hold_s: float, metrics: Metrics, received_at: float) -> list[WindowBatch]:
        """Close every slot that ends before the watermark, oldest first."""
        assert self.next_slot is not None
        last_due = slot_of(watermark, self.period_s) - 1
        if last_due * self.period_s >= watermark - _EPS:
            last_due -= 1
        n_due = last_due - self.next_slot + 1
        if n_due <= 0:
            return []
        if n_due > self.context_steps:
            # A jump longer than the window (the plant or the daemon was away): every
            # slot in between would be a gap anyway; keep only the last window's worth.
            skipped = n_due - self.context_steps
            metrics.slots_gap.inc(skipped * len(self.tags))
            if self.coarse is not None:  # coarse slots closing in the skipped span are gaps
                s = self.coarse_stride
                first, last = self.next_slot, self.next_slot + skipped - 1
                for _ in range(min(last // s - (first - 1) // s, self.context_steps)):
                    self._push_coarse(np.full(len(self.tags), np.nan))
                self._order_coarse()
                self._closed_since_jump = 0
            self.next_slot += skipped
            self._commit_until((self.next_slot - 1) * self.period_s)
            self.changed[:] = False
        out = []
        now = time.monotonic()
        while self.next_slot <= last_due:
            out.append(self._close_one(self.next_slot, max_hold_s, metrics, now, received_at))
            self.next_slot += 1
        return out

    def add(self, row: int, ts: float, value: float, read: bool = True) -> None:
        """Accept one checked sample; it counts for the slot holding ``ts`` and after.

        ``read``: the sample was measured, not a held (forward-filled) repeat of an earlier one.
        """
        self.last_ts[row] = ts
        self._pend_rows.append(row)
        self._pend_ts.append(ts)
        self._pend_values.append(value)
        self._pend_read.append(read)

    def _commit_until(self, end: float) -> None:
        """Apply the pending samples with ``ts <= end`` to each tag's current value."""
        if not self._pend_rows:
            return
        rows = np.array(self._pend_rows, dtype=np.intp)
        ts = np.array(self._pend_ts)
        values = np.array(self._pend_values)
        read = np.array(self._pend_read, dtype=bool)
        due = ts <= end + _EPS
        if due.any():
            self.changed[rows[due & read]] = True
            r, t, v = rows[due], ts[due], values[due]
            # The last due sample of each tag wins (arrival order is time order per tag).
            uniq, first_from_end = np.unique(r[::-1], return_index=True)
            last = len(r) - 1 - first_from_end
            self.value[uniq] = v[last]
            self.value_ts[uniq] = t[last]
        keep = ~due
        self._pend_rows = rows[keep].tolist()
        self._pend_ts = ts[keep].tolist()
        self._pend_values = values[keep].tolist()
        self._pend_read = read[keep].tolist()

    def _close_one(self, k: int, max_hold_s: float, metrics: Metrics, now: float, received_at: float) -> WindowBatch:
        end = k * self.period_s
        self._commit_until(end)
        fresh = (self.value_ts >= end - max_hold_s - _EPS) & ~self.down
        col = np.where(fresh, self.value, np.nan)
        gaps = int(len(col) - np.count_nonzero(fresh & np.isfinite(self.value)))
        if gaps:
            metrics.slots_gap.inc(gaps)
        held = (np.isfinite(col) & ~self.changed) if self.marking_held else None
        self.changed[:] = False
        self.ring[:, self.pos] = col
        self.pos = (self.pos + 1) % self.context_steps
        self._closed_since_jump += 1
        if self.coarse is not None and k % self.coarse_stride == 0:
            take = min(self.coarse_stride, self._closed_since_jump)
            newest = np.take(self.ring, range(self.pos - take, self.pos), axis=1, mode="wrap")
            seen = np.isfinite(newest)
            count = seen.sum(axis=1)
            total = np.where(seen, newest, 0.0).sum(axis=1)
            self._push_coarse(np.where(count > 0, total / np.maximum(count, 1), np.nan))
            self._order_coarse()
        ctx = _oldest_first(self.ring, self.pos)
        ctx.flags.writeable = False
        col.flags.writeable = False
        return WindowBatch(
            ts=end,
            period_s=self.period_s,
            tags=self.tags,
            assets=self.assets,
            values=col,
            contexts=ctx,
            closed_at=now,
            arrived_at=received_at,
            source_down=self.down.copy() if self.down.any() else None,
            held=held,
            eu_low=self.eu_low,
            eu_high=self.eu_high,
            coarse_contexts=self._coarse_ctx,
            coarse_stride_steps=self.coarse_stride,
        )

    def _push_coarse(self, col: FloatArray) -> None:
        assert self.coarse is not None
        self.coarse[:, self.coarse_pos] = col
        self.coarse_pos = (self.coarse_pos + 1) % self.context_steps

    def _order_coarse(self) -> None:
        """The coarse ring oldest first, read-only: what every batch carries until the next coarse slot."""
        if self.coarse is None:
            return
        ctx = _oldest_first(self.coarse, self.coarse_pos)
        ctx.flags.writeable = False
        self._coarse_ctx = ctx


class Windows:
    """All tag groups, the watermark, and the sample checks."""

    def __init__(
        self,
        tags: Sequence[TagSettings],
        settings: WindowSettings,
        metrics: Metrics,
        coarse_stride_steps: int = 1,
    ) -> None:
        """``coarse_stride_steps`` > 1: keep coarse contexts too (module docstring)."""
        self.settings = settings
        self.metrics = metrics
        by_period: dict[float, list[TagSettings]] = {}
        for t in tags:
            by_period.setdefault(t.period_s, []).append(t)
        self.groups = [
            TagGroup(p, ts, settings.context_steps, window_timing(p, settings), coarse_stride_steps)
            for p, ts in sorted(by_period.items())
        ]
        self._where: dict[str, tuple[TagGroup, int]] = {}
        for g in self.groups:
            for name, i in g.row.items():
                self._where[name] = (g, i)
        self.event_time = -math.inf
        """Newest source timestamp seen (of any tag): each group's watermark is this minus its lateness."""
        self._last_event_ts = -math.inf
        self._last_arrival_wall = time.monotonic()
        self._accepted = 0

    def ingest(
        self, samples: Iterable[Sample], received_at: float | None = None, held: Sequence[int] | None = None
    ) -> list[WindowBatch]:
        """Check and store samples; return the windows of every slot that closed.

        ``received_at`` (monotonic) is when the daemon received these samples: the start
        of the sample-to-detection latency of the slots they close.  ``held`` (history
        replay only: a byte or bool per sample, 1 = a held repeat, not a measurement)
        makes the slots closed from now on carry ``WindowBatch.held`` (module docstring).
        """
        if held is not None:
            for g in self.groups:
                g.marking_held = True
        out: list[WindowBatch] = []
        drop = self.metrics.drop
        now = time.monotonic()
        received = now if received_at is None else received_at
        accepted = 0
        for k, s in enumerate(samples):
            where = self._where.get(s.tag)
            if where is None:
                drop("unknown_tag")
                continue
            if s.quality is not Quality.GOOD:
                drop("bad_quality" if s.quality is Quality.BAD else "uncertain_quality")
                continue
            v = s.value
            if isinstance(v, bool):
                value = 1.0 if v else 0.0
            elif isinstance(v, (int, float)):
                value = float(v)
            else:
                drop("non_numeric")
                continue
            if not math.isfinite(value):
                drop("non_finite")
                continue
            ts = s.source_ts
            if not math.isfinite(ts):
                drop("non_finite")
                continue
            g, i = where
            last = g.last_ts[i]
            if ts == last:
                drop("duplicate")
                continue
            if ts < last:
                drop("out_of_order")
                continue
            # Advance event time first: a sample may close earlier slots, never its own.
            if ts > self.event_time:
                out.extend(self._advance(ts, received))
            if g.next_slot is not None and slot_of(ts, g.period_s) < g.next_slot:
                drop("late")
                continue
            g.add(i, ts, value, held is None or not held[k])
            accepted += 1
            if ts > self._last_event_ts:
                self._last_event_ts = ts
        if accepted:
            self._accepted += accepted
            self.metrics.samples_accepted.inc(accepted)
            self._last_arrival_wall = now
        return out

    def stop_marking_held(self) -> None:
        """History replay is over: closed slots carry no held mask any more (live data is not compressed)."""
        for g in self.groups:
            g.marking_held = False

    @property
    def idle_poll_s(self) -> float:
        """How long the caller may wait for samples before :meth:`tick_idle` has work: the shortest idle close."""
        return min((g.timing.idle_close_s for g in self.groups), default=window_timing(1.0, self.settings).idle_close_s)

    def set_source_down(self, tags: Iterable[str], down: bool) -> None:
        """Mark the tags of a source that disconnected (``down``) or came back.

        A disconnected source's last values are not held for ``max_hold_s`` as if live:
        its tags are gaps from the next slot to close on, until it reconnects and sends
        new values (the ones from before the outage are forgotten).
        """
        for name in tags:
            where = self._where.get(name)
            if where is not None:
                g, row = where
                g.down[row] = down
                if down:
                    g.value_ts[row] = -np.inf

    def set_engineering_ranges(self, ranges: Iterable[EngineeringRange]) -> None:
        """Carry the ranges a source read (OPC-UA EURange) in every window from the next slot on.

        A tag not in ``ranges`` keeps the range it had; an unknown tag is ignored.
        """
        changed: dict[int, tuple[TagGroup, FloatArray, FloatArray]] = {}
        for r in ranges:
            where = self._where.get(r.tag)
            if where is None:
                continue
            g, row = where
            if id(g) not in changed:
                n = len(g.tags)
                low = np.full(n, np.nan) if g.eu_low is None else g.eu_low.copy()
                high = np.full(n, np.nan) if g.eu_high is None else g.eu_high.copy()
                changed[id(g)] = (g, low, high)
            _, low, high = changed[id(g)]
            low[row], high[row] = r.low, r.high
        for g, low, high in changed.values():
            same_low = g.eu_low is not None and np.array_equal(low, g.eu_low, equal_nan=True)
            if same_low and g.eu_high is not None and np.array_equal(high, g.eu_high, equal_nan=True):
                continue
            low.flags.writeable = high.flags.writeable = False
            g.eu_low, g.eu_high = low, high

    def state(self) -> tuple[dict[str, FloatArray], dict[str, Any]]:
        """Each group's recent values (oldest first), held values, slot clock and the engineering ranges read from
        the sources: a scale-out snapshot's part."""
        arrays: dict[str, FloatArray] = {}
        groups = []
        for gi, g in enumerate(self.groups):
            p = f"w{gi}~"
            arrays[p + "ring"] = _oldest_first(g.ring, g.pos)
            if g._coarse_ctx is not None:
                arrays[p + "coarse"] = g._coarse_ctx
            arrays |= {p + "last_ts": g.last_ts, p + "value": g.value, p + "value_ts": g.value_ts}
            arrays[p + "down"] = g.down.astype(np.float64)
            arrays[p + "pend_rows"] = np.array(g._pend_rows, dtype=np.float64)
            arrays[p + "pend_ts"] = np.array(g._pend_ts, dtype=np.float64)
            arrays[p + "pend_values"] = np.array(g._pend_values, dtype=np.float64)
            if g.eu_low is not None and g.eu_high is not None:
                arrays |= {p + "eu_low": g.eu_low, p + "eu_high": g.eu_high}
            groups.append(
                {
                    "tags": list(g.tags),
                    "period_s": g.period_s,
                    "next_slot": g.next_slot,
                    "coarse_stride": g.coarse_stride,
                }
            )
        meta = {"groups": groups, "event_time": self.event_time, "last_event_ts": self._last_event_ts}
        return arrays, meta

    def restore(self, arrays: dict[str, FloatArray], meta: dict[str, Any]) -> None:
        """Take over :meth:`state` of the same tags (another process); ``ValueError`` when it does not fit."""
        saved = meta["groups"]
        if [(m["tags"], m["period_s"]) for m in saved] != [(list(g.tags), g.period_s) for g in self.groups]:
            raise ValueError("the saved windows are of other tags or periods")
        for gi, (g, m) in enumerate(zip(self.groups, saved, strict=True)):
            p = f"w{gi}~"
            ring = arrays[p + "ring"]
            if ring.shape[0] != len(g.tags) or arrays[p + "last_ts"].shape != g.last_ts.shape:
                raise ValueError("the saved windows have another number of tags")
            _fill_newest(g.ring, ring)
            g.pos = 0
            if g.coarse is not None:  # another stride or none saved: the coarse contexts start empty
                coarse = arrays.get(p + "coarse")
                g.coarse[:] = np.nan
                if coarse is not None and coarse.shape[0] == len(g.tags) and m.get("coarse_stride") == g.coarse_stride:
                    _fill_newest(g.coarse, coarse)
                g.coarse_pos = 0
                g._order_coarse()
            g.last_ts, g.value, g.value_ts = (
                arrays[p + k].astype(np.float64) for k in ("last_ts", "value", "value_ts")
            )
            g.down = arrays[p + "down"] != 0
            g._pend_rows = arrays[p + "pend_rows"].astype(np.intp).tolist()
            g._pend_ts = arrays[p + "pend_ts"].tolist()
            g._pend_values = arrays[p + "pend_values"].tolist()
            # Snapshots are of live windows (no history replay in worker mode): every pending sample was read.
            g._pend_read = [True] * len(g._pend_rows)
            g.changed[:] = False
            g.next_slot = None if m["next_slot"] is None else int(m["next_slot"])
            g.eu_low = g.eu_high = None  # absent in snapshots written before ranges were read, or with none
            if p + "eu_low" in arrays:
                low, high = arrays[p + "eu_low"].astype(np.float64), arrays[p + "eu_high"].astype(np.float64)
                if low.shape != g.last_ts.shape or high.shape != g.last_ts.shape:
                    raise ValueError("the saved engineering ranges have another number of tags")
                low.flags.writeable = high.flags.writeable = False
                g.eu_low, g.eu_high = low, high
        self.event_time = float(meta["event_time"])
        self._last_event_ts = float(meta["last_event_ts"])
        self._last_arrival_wall = time.monotonic()

    def tick_idle(self) -> list[WindowBatch]:
        """Let the wall clock move the watermarks when no sample has arrived for a while."""
        now = time.monotonic()
        idle = now - self._last_arrival_wall
        if not math.isfinite(self._last_event_ts):
            return []
        # Event time continues from the last sample as if the plant were still talking.
        event_time = self._last_event_ts + idle
        out: list[WindowBatch] = []
        for g in self.groups:
            if idle >= g.timing.idle_close_s:
                out.extend(self._advance_group(g, event_time, now))
        return out

    def _advance(self, event_time: float, received_at: float) -> list[WindowBatch]:
        self.event_time = event_time
        out: list[WindowBatch] = []
        for g in self.groups:
            out.extend(self._advance_group(g, event_time, received_at))
        return out

    def _advance_group(self, g: TagGroup, event_time: float, received_at: float) -> list[WindowBatch]:
        watermark = event_time - g.timing.allowed_lateness_s
        if g.next_slot is None:
            g.start_at(watermark)
            return []
        if g.due(watermark):
            return g.close_due(watermark, g.timing.max_hold_s, self.metrics, received_at)
        return []
