"""Windows of values ↔ token ids: per-window scaling, then uniform quantisation.

The model reads token ids (its "prompt") and answers in the same scaled space;
this module is the only place that knows how a value becomes a token and back.
It is numpy only, so the trainer, the evaluation and the engine share it
without importing torch.

Scaling is standardisation per window (instance normalisation, as Chronos-Bolt
and TimesFM do) rather than Chronos's mean-absolute scaling: a signal riding on
a large offset (a national load of ~3e6 MW varying by ±10 %, a temperature near
280 K) keeps its shape at full resolution instead of being squeezed into a few
bins around 1, and negative or zero-mean signals need no special case.

* ``loc`` = mean of the observed (finite) values of the whole context: the
  longest window gives the steadiest estimate, so a tag's scale does not jump
  from one tick to the next.
* ``scale`` = max(std, 1e-4·|loc|, 1e-8).  Industrial signals are often flat
  (a setpoint, a stuck sensor, a closed valve): std is then 0 and would blow any
  later wiggle up to infinity.  The relative floor treats changes below 0.01 %
  of the level as noise (a flat 3e6 MW line becomes ±300 MW per unit; float32
  rounding noise of such a signal stays below one bin), and the absolute floor
  keeps a flat zero line finite.
* Scaled values are clipped to ±``limit`` and quantised uniformly into ids
  1..vocab_size-1; id 0 means "missing" (NaN or ±inf).  With an even
  ``vocab_size`` the middle bin is centred on exactly 0, so a flat window
  decodes to its own value.

A window without any observed value gets loc 0, scale 1 and only id 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ..records import FloatArray

IntArray = npt.NDArray[np.int64]

MISSING_ID = 0
"""Token id of a missing value (a gap, NaN or ±inf)."""


@dataclass(frozen=True, slots=True)
class Encoded:
    """Token ids of a batch of windows and the scaling that produced them."""

    ids: IntArray
    """Shape (B, L), int64, 0 for missing values."""
    loc: FloatArray
    """Shape (B,): subtracted before scaling, in the series' units."""
    scale: FloatArray
    """Shape (B,): divided by after subtracting ``loc``, in the series' units (> 0)."""


class TSTokenizer:
    """Scale each window, clip to ±``limit`` (in units of ``scale``), quantise into ``vocab_size`` ids.

    >>> tok = TSTokenizer(vocab_size=1024, limit=15.0)
    >>> enc = tok.encode(np.array([[10.0, 11.0, np.nan, 13.0], [5.0, 5.0, 5.0, 5.0]]))
    >>> enc.ids[:, 2].tolist()    # a gap is id 0; a flat window sits on the middle bin
    [0, 512]
    >>> back = tok.unscale(tok.decode_ids(enc.ids), enc.loc, enc.scale)
    >>> np.round(back, 1).tolist()   # within half a bin (0.015 × scale) of the input
    [[10.0, 11.0, 11.3, 13.0], [5.0, 5.0, 5.0, 5.0]]

    (A gap decodes to ``loc``: id 0's centre is 0; the model sees the gap through its mask.)
    """

    def __init__(self, vocab_size: int = 4096, limit: float = 15.0) -> None:
        if vocab_size < 3:
            raise ValueError(f"vocab_size must be at least 3, got {vocab_size}")
        if not (np.isfinite(limit) and limit > 0):
            raise ValueError(f"limit must be a positive number, got {limit}")
        self.vocab_size = vocab_size
        self.limit = float(limit)
        self.bin_width = 2.0 * self.limit / (vocab_size - 1)
        """Width of one bin in scaled units: the largest round-trip error is half of it × scale."""
        centers = -self.limit + (np.arange(vocab_size, dtype=np.float64) - 0.5) * self.bin_width
        centers[MISSING_ID] = 0.0
        centers.setflags(write=False)
        self.centers: FloatArray = centers
        """Dequantisation codebook, shape (vocab_size,): id → scaled value (id 0 → 0)."""

    def scaling(self, contexts: FloatArray) -> tuple[FloatArray, FloatArray]:
        """``(loc, scale)`` of each row of ``contexts`` (B, L), from its finite values only."""
        x = _as_2d(contexts)
        observed = np.isfinite(x)
        count = observed.sum(axis=1)
        filled = np.where(observed, x, 0.0)
        loc = filled.sum(axis=1) / np.maximum(count, 1)
        dev = np.where(observed, x - loc[:, None], 0.0)
        std = np.sqrt((dev * dev).sum(axis=1) / np.maximum(count, 1))
        scale = np.maximum(np.maximum(std, 1e-4 * np.abs(loc)), 1e-8)
        empty = count == 0
        loc = np.where(empty, 0.0, loc)
        scale = np.where(empty, 1.0, scale)
        return loc.astype(np.float64), scale.astype(np.float64)

    def encode(self, contexts: FloatArray) -> Encoded:
        """Windows (B, L), oldest first, NaN for gaps → token ids (B, L) with their loc and scale."""
        x = _as_2d(contexts)
        loc, scale = self.scaling(x)
        observed = np.isfinite(x)
        with np.errstate(invalid="ignore"):
            z = (x - loc[:, None]) / scale[:, None]
            bins = np.floor((np.clip(z, -self.limit, self.limit) + self.limit) / self.bin_width)
        bins = np.clip(np.nan_to_num(bins, nan=0.0), 0, self.vocab_size - 2)
        ids = np.where(observed, bins.astype(np.int64) + 1, MISSING_ID).astype(np.int64)
        return Encoded(ids=ids, loc=loc, scale=scale)

    def decode_ids(self, ids: npt.ArrayLike) -> FloatArray:
        """Token ids (any shape) → scaled values (bin centres; id 0 → 0)."""
        return np.asarray(self.centers[np.asarray(ids, dtype=np.int64)], dtype=np.float64)

    @staticmethod
    def scale_values(values: FloatArray, loc: FloatArray, scale: FloatArray) -> FloatArray:
        """Values (B, …) → scaled space with each row's loc/scale; not quantised, NaN kept.

        This is how training targets are made: scale the future with the
        context's loc and scale, so labels and forecasts share one space.
        """
        v = np.asarray(values, dtype=np.float64)
        shape = (-1,) + (1,) * (v.ndim - 1)
        return np.asarray((v - np.reshape(loc, shape)) / np.reshape(scale, shape), dtype=np.float64)

    @staticmethod
    def unscale(scaled: FloatArray, loc: FloatArray, scale: FloatArray) -> FloatArray:
        """Scaled values (B, …), e.g. quantiles (B, Q, H) → the series' units."""
        s = np.asarray(scaled, dtype=np.float64)
        shape = (-1,) + (1,) * (s.ndim - 1)
        return np.asarray(s * np.reshape(scale, shape) + np.reshape(loc, shape), dtype=np.float64)


def _as_2d(contexts: FloatArray) -> FloatArray:
    x = np.asarray(contexts, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"expected windows of shape (batch, length), got shape {x.shape}")
    return x
