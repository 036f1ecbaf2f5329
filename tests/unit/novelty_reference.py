"""The contextual novelty as it was before it was vectorised (a per-row Python loop over dicts): the reference.

``tests/unit/test_novelty.py`` checks that :class:`sentinelle.detect.novelty.ContextNovelty`
(numpy over the rows, a table of every context) scores exactly as this on hand-made
sequences, for the range modes both have (expanding, frozen with one outer cell, stepped,
given).  Kept verbatim but for the class name; not used by the daemon.
"""

from __future__ import annotations

import math

import numpy as np

from sentinelle.records import BoolArray, FloatArray

RANGE_MODES = ("expanding", "frozen", "stepped")


class ScalarNovelty:
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
        self.n = n_rows
        self.bins = bins
        self.orders = orders
        self.warmup = warmup_steps
        self.max_contexts = max_contexts
        self.range_mode = range_mode
        self.range_step = range_step
        self.given = low is not None
        self.low: FloatArray = np.full(n_rows, np.inf) if low is None else np.asarray(low, dtype=np.float64).copy()
        self.high: FloatArray = np.full(n_rows, -np.inf) if high is None else np.asarray(high, dtype=np.float64).copy()
        self.seen = np.zeros(n_rows, dtype=np.int64)
        """Values each row has had."""
        self.cells = bins + 2
        """Cell values: ``0 … bins − 1`` inside the range, ``bins`` below it and ``bins + 1`` above it."""
        self.history: list[list[int]] = [[] for _ in range(n_rows)]
        """Each row's last ``orders`` cells, oldest first."""
        self.memory: list[dict[int, int]] = [{} for _ in range(n_rows)]
        """Each row's left contexts (encoded) → bit mask of the right cells seen after them."""

    def cell(self, row: int, x: float) -> int:
        """The cell of ``x`` on ``row``'s range (the range first learns ``x`` when it may)."""
        if self.given:
            pass
        elif self.range_mode == "stepped" and self.seen[row] >= self.warmup:
            # Past the warm-up a new extreme moves its end beyond it by range_step of the range: rarely again.
            width = float(self.high[row] - self.low[row])
            if x < self.low[row]:
                self.low[row] = x - self.range_step * width
            elif x > self.high[row]:
                self.high[row] = x + self.range_step * width
        elif self.range_mode != "frozen" or self.seen[row] < self.warmup:
            self.low[row] = min(self.low[row], x)
            self.high[row] = max(self.high[row], x)
        lo, hi = float(self.low[row]), float(self.high[row])
        if x < lo:
            return self.bins
        if x > hi:
            return self.bins + 1
        width = hi - lo
        if not width > 0.0:
            return 0
        return min(int((x - lo) / width * self.bins), self.bins - 1)

    def step(self, x: FloatArray, learn: BoolArray) -> FloatArray:
        """Score each finite ``x`` of a row that may learn (others: NaN, nothing moves); NaN while warming up."""
        out = np.full(self.n, np.nan)
        for row in np.flatnonzero(np.isfinite(x) & learn):
            out[row] = self._one(int(row), float(x[row]))
        return out

    def _one(self, row: int, x: float) -> float:
        c = self.cell(row, x)
        hist = self.history[row]
        mem = self.memory[row]
        bit = 1 << c
        expected = unconfirmed = new = 0
        key = 0
        for k in range(1, len(hist) + 1):
            # The left context of order k: the last k cells, encoded with its order (base cells + 1, no collisions).
            key = key * (self.cells + 1) + hist[-k] + 1
            mask = mem.get(key)
            if mask is None:
                new += 1
                if len(mem) < self.max_contexts:
                    mem[key] = bit
                continue
            expected += 1
            if not mask & bit:
                unconfirmed += 1
                new += 1
                mem[key] = mask | bit
        orders = len(hist)
        if self.range_mode == "frozen" and not self.given and self.seen[row] == self.warmup:
            # The range froze with this value: contexts learned on a growing range meant other cells.
            mem.clear()
            hist.clear()
            orders = 0
        hist.append(c)
        if len(hist) > self.orders:
            del hist[0]
        self.seen[row] += 1
        if self.seen[row] <= self.warmup or orders == 0:
            return math.nan
        return 0.5 * (unconfirmed / expected if expected else 1.0) + 0.5 * new / orders
