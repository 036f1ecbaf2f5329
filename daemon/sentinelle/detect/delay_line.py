"""A delay line: each row's value, and whether it could be learned, handed back ``depth`` ticks later.

Why: a scale or a usual width that learns late (``detect.asset_estimate_learn_delay_steps`` and its kin) keeps, for
that long after a slow fault starts, the reference from before it; what it learns now is what arrived ``depth``
ticks ago.  One ring serves every such learner (:mod:`.held_spread`, :mod:`.averaged_residual`); each saves it under
its own key for the values, so their snapshots read as before.

>>> import numpy as np
>>> line = DelayLine(n_rows=1, depth=2)
>>> for v in (1.0, 2.0, 3.0):
...     old, ok = line.swap(np.array([v]), np.array([True]))
>>> old.tolist(), ok.tolist()  # 3.0 went in; 1.0, from two ticks before, came out
([1.0], [True])
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..records import BoolArray, FloatArray


class DelayLine:
    """A ring of ``depth`` ticks of per-row values and learnable flags (depth 0: no delay)."""

    def __init__(self, n_rows: int, depth: int) -> None:
        if depth < 0:
            raise ValueError(f"a delay line's depth must be ≥ 0, got {depth}")
        self.depth = depth
        self.values: FloatArray = np.full((depth, n_rows), np.nan)
        """Each row's value of the last ``depth`` ticks."""
        self.ok: FloatArray = np.zeros((depth, n_rows))
        """Whether each could be learned then (1.0) or not (0.0)."""
        self.pos: FloatArray = np.zeros(1)
        """The ring's oldest slot, where this tick's goes."""

    def swap(self, values: FloatArray, ok: BoolArray) -> tuple[FloatArray, BoolArray]:
        """Put this tick's ``values`` and ``ok`` in; the ones ``depth`` ticks old out (depth 0: this tick's own)."""
        if not self.depth:
            return values, ok
        p = int(self.pos[0])
        old, old_ok = self.values[p].copy(), self.ok[p] > 0
        self.values[p], self.ok[p] = values, ok
        self.pos[0] = (p + 1) % self.depth
        return old, old_ok

    def arrays(self, key: str) -> dict[str, FloatArray]:
        """The state, the values under ``key`` (the owner's name for them) with ``late_ok`` and ``late_pos``."""
        return {key: self.values, "late_ok": self.ok, "late_pos": self.pos}

    def restore(self, arrays: dict[str, Any], key: str) -> None:
        """Take back :meth:`arrays`' state; a line of another depth or row count (or none saved) starts afresh."""
        values = arrays.get(key)
        if values is not None and values.shape == self.values.shape:
            self.values, self.ok = values.copy(), arrays["late_ok"].copy()
            self.pos = arrays["late_pos"].copy() % max(self.depth, 1)
