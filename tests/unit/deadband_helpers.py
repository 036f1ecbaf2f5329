"""A historian's deadband-compressed export of a series, for the tests of held points (issue 17)."""

from __future__ import annotations

import numpy as np

from sentinelle.records import BoolArray, FloatArray


def compress(x: FloatArray, deadband: float) -> tuple[FloatArray, BoolArray]:
    """The exported series on the same grid and its held mask: a value is written once it moved more than
    ``deadband`` from the last written one, else the last written value is held.

    >>> out, held = compress(np.array([1.0, 1.1, 1.5, 1.45]), 0.25)
    >>> out.tolist(), held.tolist()
    ([1.0, 1.0, 1.5, 1.5], [False, True, False, True])
    """
    out = np.empty_like(x)
    held = np.zeros(len(x), dtype=bool)
    last = float(x[0])
    for i, v in enumerate(x.tolist()):
        if i and abs(v - last) <= deadband:
            held[i] = True
        else:
            last = v
        out[i] = last
    return out, held
