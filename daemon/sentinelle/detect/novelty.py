"""Contextual novelty: has the tag's recent *sequence* of coarse values been seen before?

The idea of the contextual anomaly detector of Smirnov (2016, "CAD OSE", NAB's
published 69.9), written here from the idea, not from its code: a tag that repeats
itself — a daily profile, a sawtooth, a control cycle — keeps producing sequences of
coarse values it has produced before, and an anomaly is a sequence it has not.

1. **Coarse values.**  Each value is placed in one of ``bins`` equal cells of the
   tag's range.  The daemon cannot know a file's or a tag's range in advance, so the
   range is learned online (``range_mode``): ``"expanding"``: the smallest and largest
   value seen so far (a new extreme moves the cells); ``"frozen"``: the range of the
   first ``warmup_steps`` values, fixed afterwards, with ``outer_cells`` cells of the
   same width below and above it, the last one open (a new extreme lands in an outer cell
   and the learned contexts keep their meaning; what was learned while the range grew is
   forgotten when it freezes); ``"stepped"``: expanding during the warm-up, then a new
   extreme moves the range's end ``range_step`` of its width beyond the value, so the
   cells move rarely; or a given range (``low``/``high``: a configured engineering range,
   as OPC-UA's EURange, per row — NaN where a row has none and learns its own; evaluations
   that hand each series its own min and max — which peeks at the future — may only report
   it as such; a range read from the source later is given by :meth:`ContextNovelty.give_range`).
   ``requantise`` (expanding and
   stepped ranges): when the range moves, what was learned moves with it — each old cell
   becomes the new cell of its centre, in the contexts and in the cells they predicted —
   instead of keeping cell numbers that now mean other values (CAD OSE re-learns).
2. **Contexts.**  For each order ``k = 1 … orders`` the last ``k`` cells before a value
   are a *left context* and the value's cell its *right* one; memory holds, per left
   context, the set of right cells that followed it (a bit mask).
3. **Score.**  A value is novel when contexts that were *expected* (left contexts
   seen before) did not predict it, and when it *creates* new (left → right) contexts:
   ``score = (unconfirmed share + new share) / 2`` over the orders, 0 for a sequence the
   tag has made before, 1 for a cell never seen after any of its recent contexts.
   Every value is learned (the memory is the tag's history), up to ``max_contexts`` left
   contexts per tag (then only known contexts learn new right cells).

A score is raw (not a calibrated tail probability); the detector rests after a firing
(``detect/rest.py``) so one novel stretch scores once.

**State in arrays, numpy over the rows.**  Every possible left context of every order
has a slot in one ``(rows, contexts)`` table of bit masks (0: never seen), so a tick is
``orders`` gathers and scatters over all rows at once (no per-row Python loop: a few ms
for 10,000 tags, ``bench/detect_speed.py``).  The table has ``cells + cells² + … +
cells^orders`` slots per row, so it is refused above :data:`MAX_SLOTS` (8 cells and 3
orders: 1,110).

>>> n = ContextNovelty(1, bins=4, orders=3, warmup_steps=8, max_contexts=1000, range_mode="frozen")
>>> saw = [0.0, 1.0, 2.0, 3.0] * 20
>>> s = [float(n.step(np.array([v]), np.ones(1, bool))[0]) for v in saw]
>>> max(s[40:])   # the repeating pattern: nothing new
0.0
>>> float(n.step(np.array([3.0]), np.ones(1, bool))[0])   # 3 after 3: never seen
1.0
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ..records import BoolArray, FloatArray

RANGE_MODES = ("expanding", "frozen", "stepped")
MAX_SLOTS = 4096
"""Left contexts per row the table may hold (32 KiB of masks per tag)."""
MAX_CELLS = 62
"""Cells a bit mask of 64 bits holds (signed)."""

I64 = npt.NDArray[np.int64]


class ContextNovelty:
    """Per row: the share of a value's contexts that were unexpected or new (0 … 1), NaN while warming up."""

    def __init__(
        self,
        n_rows: int,
        *,
        bins: int,
        orders: int,
        warmup_steps: int,
        max_contexts: int,
        range_mode: str = "expanding",
        range_step: float = 0.5,
        outer_cells: int = 1,
        requantise: bool = False,
        low: FloatArray | None = None,
        high: FloatArray | None = None,
    ) -> None:
        if bins < 2 or bins > 60:
            raise ValueError("contextual novelty needs 2 … 60 cells")
        if orders < 1:
            raise ValueError("contextual novelty needs at least one order")
        if range_mode not in RANGE_MODES:
            raise ValueError(f"range_mode: one of {RANGE_MODES}, not {range_mode!r}")
        if (low is None) != (high is None):
            raise ValueError("a given range needs both low and high")
        lo_given = np.full(n_rows, np.nan) if low is None else np.asarray(low, dtype=np.float64)
        hi_given = np.full(n_rows, np.nan) if high is None else np.asarray(high, dtype=np.float64)
        fixed = np.isfinite(lo_given) & np.isfinite(hi_given)
        if np.any(np.isfinite(lo_given) != np.isfinite(hi_given)) or np.any(lo_given[fixed] > hi_given[fixed]):
            raise ValueError("a given range needs both low and high, low not above high")
        if outer_cells < 1 or bins + 2 * outer_cells > MAX_CELLS:
            raise ValueError(f"bins + 2 outer_cells: at most {MAX_CELLS} cells, and at least one outer cell a side")
        self.n = n_rows
        self.bins = bins
        self.orders = orders
        self.warmup = warmup_steps
        self.max_contexts = max_contexts
        self.range_mode = range_mode
        self.range_step = range_step
        self.outer = outer_cells
        self.fixed: BoolArray = fixed
        """Rows with a given range (it never moves)."""
        self.given_low, self.given_high = lo_given, hi_given
        """The given ranges (NaN: none)."""
        self.requantise = requantise and range_mode != "frozen"
        self.low: FloatArray = np.where(fixed, lo_given, np.inf)
        self.high: FloatArray = np.where(fixed, hi_given, -np.inf)
        self.seen: I64 = np.zeros(n_rows, dtype=np.int64)
        """Values each row has had."""
        self.cells = bins + 2 * outer_cells
        """Cell values: ``0 … bins − 1`` inside the range; below and above it, by distance, ``bins + 2j`` and
        ``bins + 2j + 1`` for the ``j``-th outer cell (``j = 0 …``), the last one open."""
        sizes = [self.cells**k for k in range(1, orders + 1)]
        if sum(sizes) > MAX_SLOTS:
            raise ValueError(
                f"contextual novelty: {self.cells} cells and {orders} orders make {sum(sizes)} contexts per tag, "
                f"more than {MAX_SLOTS}: fewer bins or orders"
            )
        self.offsets = np.cumsum([0, *sizes])[:-1].astype(np.int64)
        """Where each order's slots start in a row of the table."""
        self.table: I64 = np.zeros((n_rows, sum(sizes)), dtype=np.int64)
        """Per row and left context: the bit mask of the right cells seen after it (0: never seen)."""
        self.count: I64 = np.zeros(n_rows, dtype=np.int64)
        """Left contexts each row remembers."""
        self.history: I64 = np.full((n_rows, orders), -1, dtype=np.int64)
        """Each row's last ``orders`` cells, oldest first, right-aligned (−1: none yet)."""
        self.length: I64 = np.zeros(n_rows, dtype=np.int64)
        """Cells in each row's history."""

    # --- cells and ranges -------------------------------------------------------------------------

    def cells_of(self, low: FloatArray, high: FloatArray, x: FloatArray) -> I64:
        """The cell of each ``x`` on its range (arrays broadcast; the range is not moved)."""
        width = high - low
        with np.errstate(divide="ignore", invalid="ignore"):
            inside = np.floor((x - low) / width * self.bins)
            step = width / self.bins
            below = np.where(step > 0, np.ceil((low - x) / step), 1.0)
            above = np.where(step > 0, np.ceil((x - high) / step), 1.0)
        c = np.where(width > 0, np.minimum(np.nan_to_num(inside), self.bins - 1), 0.0)
        c = np.where(x < low, self.bins + 2 * (np.clip(below, 1, self.outer) - 1), c)
        c = np.where(x > high, self.bins + 2 * (np.clip(above, 1, self.outer) - 1) + 1, c)
        return np.asarray(c, dtype=np.int64)

    def cell(self, row: int, x: float) -> int:
        """The cell of ``x`` on ``row``'s range as it stands."""
        return int(self.cells_of(self.low[row : row + 1], self.high[row : row + 1], np.array([x]))[0])

    def give_range(self, rows: I64, low: FloatArray, high: FloatArray) -> None:
        """Fix ``rows``' ranges to ``low``/``high`` from now on (a range read from the source: OPC-UA EURange).

        What a row learned on its earlier range moves with it (each old cell becomes its centre's
        new cell, as ``requantise`` does), so a range that arrives after a warm-up (history
        backfill, restored state) keeps the row's memory; a row with no range yet has nothing to move.
        """
        if np.any(~np.isfinite(low) | ~np.isfinite(high) | (low >= high)):
            raise ValueError("a given range needs finite ends, low below high")
        old_low, old_high = self.low[rows].copy(), self.high[rows].copy()
        self.given_low[rows], self.given_high[rows] = low, high
        self.fixed[rows] = True
        self.low[rows], self.high[rows] = low, high
        moved = (self.seen[rows] > 0) & np.isfinite(old_low) & np.isfinite(old_high)
        moved &= (old_low != low) | (old_high != high)
        if moved.any():
            self._requantise(rows[moved], old_low[moved], old_high[moved])

    def _learn_range(self, rows: I64, x: FloatArray) -> None:
        rows, x = rows[~self.fixed[rows]], x[~self.fixed[rows]]
        lo, hi = self.low[rows], self.high[rows]
        warming = self.seen[rows] < self.warmup
        if self.range_mode == "stepped":
            # Past the warm-up a new extreme moves its end beyond it by range_step of the range: rarely again.
            width = hi - lo
            new_lo = np.where(~warming & (x < lo), x - self.range_step * width, lo)
            new_hi = np.where(~warming & (x > hi), x + self.range_step * width, hi)
            lo = np.where(warming, np.minimum(lo, x), new_lo)
            hi = np.where(warming, np.maximum(hi, x), new_hi)
        elif self.range_mode == "expanding":
            lo, hi = np.minimum(lo, x), np.maximum(hi, x)
        else:
            lo, hi = np.where(warming, np.minimum(lo, x), lo), np.where(warming, np.maximum(hi, x), hi)
        self.low[rows], self.high[rows] = lo, hi

    def _requantise(self, rows: I64, old_low: FloatArray, old_high: FloatArray) -> None:
        """Move what ``rows`` learned to their new ranges: each old cell becomes its centre's new cell."""
        b, c = self.bins, self.cells
        centres = old_low[:, None] + (np.arange(b) + 0.5)[None, :] * ((old_high - old_low) / b)[:, None]
        to = np.tile(np.arange(c, dtype=np.int64), (len(rows), 1))
        to[:, :b] = self.cells_of(self.low[rows][:, None], self.high[rows][:, None], centres)
        old = self.table[rows]
        new = np.zeros_like(old)
        at = np.arange(len(rows))[:, None]
        for k, offset in enumerate(self.offsets.tolist(), 1):
            size = c**k
            digits = np.arange(size)[:, None] // c ** np.arange(k - 1, -1, -1)[None, :] % c
            slot = np.zeros((len(rows), size), dtype=np.int64)
            for j in range(k):
                slot = slot * c + to[:, digits[:, j]]
            masks = old[:, offset : offset + size]
            moved = np.zeros_like(masks)
            for cell in range(c):
                moved |= ((masks >> cell) & 1) << to[:, cell : cell + 1]
            np.bitwise_or.at(new, (np.broadcast_to(at, slot.shape), offset + slot), moved)
        self.table[rows] = new
        self.count[rows] = (new != 0).sum(axis=1)
        h = self.history[rows]
        self.history[rows] = np.where(h >= 0, np.take_along_axis(to, np.maximum(h, 0), axis=1), -1)

    # --- one tick -------------------------------------------------------------------------------

    def step(self, x: FloatArray, learn: BoolArray) -> FloatArray:
        """Score each finite ``x`` of a row that may learn (others: NaN, nothing moves); NaN while warming up."""
        out = np.full(self.n, np.nan)
        rows = np.flatnonzero(np.isfinite(x) & learn).astype(np.int64)
        if rows.size == 0:
            return out
        xs = np.asarray(x[rows], dtype=np.float64)
        if self.requantise:
            old_lo, old_hi = self.low[rows].copy(), self.high[rows].copy()
        self._learn_range(rows, xs)
        if self.requantise:
            moved = (self.seen[rows] > 0) & ((self.low[rows] != old_lo) | (self.high[rows] != old_hi))
            if moved.any():
                self._requantise(rows[moved], old_lo[moved], old_hi[moved])
        c = self.cells_of(self.low[rows], self.high[rows], xs)
        bit = np.left_shift(np.int64(1), c)
        hist = self.history[rows]
        length = self.length[rows]
        count = self.count[rows]
        expected = np.zeros(rows.size, dtype=np.int64)
        unconfirmed = np.zeros(rows.size, dtype=np.int64)
        new = np.zeros(rows.size, dtype=np.int64)
        index = np.zeros(rows.size, dtype=np.int64)
        for k in range(1, self.orders + 1):
            # The left context of order k: the last k cells, newest first, as digits of base `cells`.
            valid = length >= k
            index = index * self.cells + np.maximum(hist[:, self.orders - k], 0)
            slot = np.where(valid, self.offsets[k - 1] + index, 0)
            mask = self.table[rows, slot]
            absent = valid & (mask == 0)
            stored = absent & (count < self.max_contexts)
            missed = valid & (mask != 0) & ((mask & bit) == 0)
            expected += valid & (mask != 0)
            unconfirmed += missed
            new += absent | missed
            count += stored
            write = stored | missed
            self.table[rows[write], slot[write]] = mask[write] | bit[write]
        used = length
        if self.range_mode == "frozen":
            # The range froze with this value: contexts learned on a growing range meant other cells.
            froze = (self.seen[rows] == self.warmup) & ~self.fixed[rows]
            if froze.any():
                self.table[rows[froze]] = 0
                count[froze] = 0
                hist[froze] = -1
                used = np.where(froze, 0, length)
        hist = np.concatenate([hist[:, 1:], c[:, None]], axis=1)
        self.history[rows] = hist
        self.length[rows] = np.minimum(used + 1, self.orders)
        self.count[rows] = count
        self.seen[rows] += 1
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(expected > 0, unconfirmed / expected, 1.0)
            score = 0.5 * share + 0.5 * new / used
        out[rows] = np.where((self.seen[rows] <= self.warmup) | (used == 0), np.nan, score)
        return out

    # --- state -------------------------------------------------------------------------------------

    def slot_keys(self) -> I64:
        """Each table slot's key as the dict-of-contexts state (version 1) wrote it: cells + 1, newest first."""
        keys = []
        for k in range(1, self.orders + 1):
            digits = np.arange(self.cells**k)[:, None] // self.cells ** np.arange(k - 1, -1, -1)[None, :] % self.cells
            key = np.zeros(len(digits), dtype=np.int64)
            for j in range(k):
                key = key * (self.cells + 1) + digits[:, j] + 1
            keys.append(key)
        return np.concatenate(keys)
