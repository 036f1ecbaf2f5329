"""Contextual novelty: a tag whose recent sequence of coarse values is one it has never made.

The numerics are :class:`~sentinelle.detect.novelty.ContextNovelty` (cells of an online
range, contexts of orders 1 … ``detect.novelty_orders``; the share of a value's contexts
that were unexpected or new).  One subject per tag; with ``detect.novelty_opens_alerts``
flagged when the score reaches ``detect.novelty_flag_score`` (after
``detect.novelty_warmup_steps`` values, and not before ``detect.grace_period_steps``), k of
n to open; without (the default), it never flags and only joins the per-tag score: on noisy
tags a transition between cells not yet seen is common for a long while, and each flags
(``bench/detect_speed.py``'s noisy walk: 8,465 alert events with it flagging against 3,364
without, at 10,000 tags over 150 ticks).

**How it joins the per-tag score.**  The score is a share (0 … 1), not a calibrated tail
probability like the residual's and the distribution change's; it joins the stage's
per-tag score by maximum all the same (``tag_score``), as chosen on NAB's tuning split
(``bench/nab/tune_novelty.py``), and is rested with it (``detect.score_rest_steps``).  It
does not join what the other detectors' flags compare (``tag_surprise``): its own flag
level is ``detect.novelty_flag_score``.  A tag's range is its configured ``eu_low``/``eu_high``, else the one
its source read (OPC-UA EURange, carried by the windows: ``WindowBatch.eu_low``), else learned online.
The values seen are the gated ones
(``tick.clean``): a gated tick moves nothing.  State: the ranges, counts, each tag's last
cells and its contexts (the remembered ones, as keys and masks), saved by name.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ...errors import ConfigError
from ...records import FloatArray
from ...settings import TagSettings
from ..novelty import ContextNovelty
from .base import BuildContext, Explanation, Findings, Spec, Tick, check_tags, findings, pack, unpack

RANK = 18
_VERSION = 1


class NoveltyDetector:
    name = "contextual_novelty"

    def __init__(self, ctx: BuildContext) -> None:
        lay = ctx.layout
        s = ctx.settings
        self.layout = lay
        self.flag_score = s.novelty_flag_score
        self.opens = s.novelty_opens_alerts
        self.grace = s.grace_period_steps
        try:
            self.novelty = ContextNovelty(
                lay.n,
                bins=s.novelty_bins,
                orders=s.novelty_orders,
                warmup_steps=s.novelty_warmup_steps,
                max_contexts=s.novelty_max_contexts,
                range_mode=s.novelty_range,
                range_step=s.novelty_range_step,
                outer_cells=s.novelty_outer_cells,
                requantise=s.novelty_requantise,
                **engineering_range(lay.tag_settings),
            )
        except ValueError as e:
            raise ConfigError(f"detect.novelty_*: {e}") from e
        self.score = np.full(lay.n, np.nan)
        self.spec = Spec.per_tag("contextual_novelty", ctx)
        self.configured = self.novelty.fixed.copy()
        """Rows whose range is configured (``eu_low``/``eu_high``): a range read from the source never replaces it."""
        self._read_low: FloatArray | None = None
        """The window's read ranges last taken (``WindowBatch.eu_low``, replaced as a whole when one changes)."""

    def take_read_ranges(self, low: FloatArray | None, high: FloatArray | None) -> None:
        """Fix the range of each row the source read one for (OPC-UA EURange), unless it is configured."""
        if low is None or high is None or low is self._read_low:
            return
        self._read_low = low
        nv = self.novelty
        usable = ~self.configured & np.isfinite(low) & np.isfinite(high) & (low < high)
        rows = np.flatnonzero(usable & ((nv.given_low != low) | (nv.given_high != high))).astype(np.int64)
        if rows.size:
            nv.give_range(rows, low[rows], high[rows])

    def observe(self, tick: Tick) -> Findings:
        w = tick.batch.window
        self.take_read_ranges(w.eu_low, w.eu_high)
        score = self.novelty.step(tick.clean, ~tick.gate)
        # detect.grace_period_steps holds for every per-tag score: nothing flags or scores before it.
        young = self.novelty.seen < self.grace
        score = np.where(young & np.isfinite(score), 0.0, score)
        self.score = score
        measured = np.isfinite(score)
        flagged = measured & (score >= self.flag_score) & self.opens
        return findings(flagged, measured & ~flagged, score, tag_score=score)

    def learn(self, tick: Tick, findings: Findings) -> None:
        """Nothing more to learn: every value's contexts were learned while observing (they are the history)."""

    def explain(self, tick: Tick, findings: Findings, subject: int, tag: str | None) -> Explanation:
        return tick.explain_tag(subject, float(self.score[subject]), float(self.novelty.orders))

    def state(self) -> bytes:
        # Saved as the per-row dicts of contexts were (version 1): each row's remembered contexts' keys and masks.
        nv = self.novelty
        held = nv.table != 0
        keys = np.broadcast_to(nv.slot_keys(), nv.table.shape)[held]
        arrays = {"low": nv.low, "high": nv.high, "seen": nv.seen, "history": nv.history}
        arrays |= {"sizes": held.sum(axis=1).astype(np.int64), "keys": keys, "masks": nv.table[held]}
        meta = {"tags": list(self.layout.tags), "orders": nv.orders, "cells": nv.cells}
        return pack(self.name, _VERSION, arrays, meta)

    def restore(self, blob: bytes) -> None:
        arrays, meta = unpack(blob, self.name, _VERSION)
        check_tags(meta, self.layout, self.name)
        nv = self.novelty
        if meta.get("orders") != nv.orders:
            raise ConfigError(f"{self.name}: saved with contexts of order {meta.get('orders')}, not {nv.orders}")
        if meta.get("cells", nv.bins + 2) != nv.cells:
            raise ConfigError(f"{self.name}: saved with {meta.get('cells')} cells a tag, not {nv.cells}")
        slot_of = {int(k): j for j, k in enumerate(nv.slot_keys())}
        keys = arrays["keys"].tolist()
        if any(k not in slot_of for k in keys):
            raise ConfigError(f"{self.name}: saved contexts that {nv.cells} cells of {nv.orders} orders cannot hold")
        rows = np.repeat(np.arange(nv.n), arrays["sizes"])
        table = np.zeros_like(nv.table)
        table[rows, [slot_of[k] for k in keys]] = arrays["masks"]
        # A configured range (the tag's eu_low / eu_high) is the configuration's, not the saved one; a range read
        # from the source is given again at the next tick (its contexts move from the saved range then).
        nv.fixed = self.configured.copy()
        nv.given_low = np.where(nv.fixed, nv.given_low, np.nan)
        nv.given_high = np.where(nv.fixed, nv.given_high, np.nan)
        self._read_low = None
        nv.low = np.where(nv.fixed, nv.given_low, arrays["low"])
        nv.high = np.where(nv.fixed, nv.given_high, arrays["high"])
        nv.seen = arrays["seen"]
        nv.history = np.asarray(arrays["history"], dtype=np.int64)
        nv.length = (nv.history >= 0).sum(axis=1).astype(np.int64)
        nv.table = table
        nv.count = (table != 0).sum(axis=1).astype(np.int64)


def engineering_range(tags: Sequence[TagSettings]) -> dict[str, FloatArray]:
    """``low``/``high`` per tag from its ``eu_low``/``eu_high`` (NaN: learned online); none if no tag has one."""
    if all(t.eu_low is None for t in tags):
        return {}
    low = np.array([np.nan if t.eu_low is None else t.eu_low for t in tags])
    high = np.array([np.nan if t.eu_high is None else t.eu_high for t in tags])
    return {"low": low, "high": high}


def build(ctx: BuildContext) -> list[NoveltyDetector]:
    return [NoveltyDetector(ctx)] if ctx.settings.novelty_enabled else []
