"""Contextual novelty: a tag whose recent sequence of coarse values is one it has never made.

The numerics are :class:`~sentinelle.detect.novelty.ContextNovelty` (cells of an online
range, contexts of orders 1 … ``detect.novelty_orders``; the share of a value's contexts
that were unexpected or new).  One subject per tag; flagged when the score reaches
``detect.novelty_flag_score`` (after ``detect.novelty_warmup_steps`` values, and not
before ``detect.grace_period_steps``), k of n to open.

**How it joins the per-tag score.**  The score is a share (0 … 1), not a calibrated tail
probability like the residual's and the distribution change's; it joins the stage's
per-tag score by maximum all the same (``tag_score``), as chosen on NAB's tuning split
(``bench/nab/tune_novelty.py``), and is rested with it (``detect.score_rest_steps``).  It
does not join what the other detectors' flags compare (``tag_surprise``): its own flag
level is ``detect.novelty_flag_score``.  The values seen are the gated ones
(``tick.clean``): a gated tick moves nothing.  State: the ranges, counts, each tag's last
cells and its contexts (flattened), saved by name.
"""

from __future__ import annotations

import numpy as np

from ...errors import ConfigError
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
        self.grace = s.grace_period_steps
        self.novelty = ContextNovelty(
            lay.n,
            bins=s.novelty_bins,
            orders=s.novelty_orders,
            warmup_steps=s.novelty_warmup_steps,
            max_contexts=s.novelty_max_contexts,
            range_mode=s.novelty_range,
            range_step=s.novelty_range_step,
        )
        self.score = np.full(lay.n, np.nan)
        self.spec = Spec.per_tag("contextual_novelty", ctx)

    def observe(self, tick: Tick) -> Findings:
        score = self.novelty.step(tick.clean, ~tick.gate)
        # detect.grace_period_steps holds for every per-tag score: nothing flags or scores before it.
        young = self.novelty.seen < self.grace
        score = np.where(young & np.isfinite(score), 0.0, score)
        self.score = score
        measured = np.isfinite(score)
        flagged = measured & (score >= self.flag_score)
        return findings(flagged, measured & ~flagged, score, tag_score=score)

    def learn(self, tick: Tick, findings: Findings) -> None:
        """Nothing more to learn: every value's contexts were learned while observing (they are the history)."""

    def explain(self, tick: Tick, findings: Findings, subject: int, tag: str | None) -> Explanation:
        return Explanation(
            tag=self.layout.tags[subject],
            obs=tick.obs(subject),
            contributors=tick.contributors(subject),
            magnitude=float(self.score[subject]),
            limit=float(self.novelty.orders),
        )

    def state(self) -> bytes:
        nv = self.novelty
        history = np.full((nv.n, nv.orders), -1, dtype=np.int64)
        for row, h in enumerate(nv.history):
            history[row, nv.orders - len(h) :] = h
        sizes = np.array([len(m) for m in nv.memory], dtype=np.int64)
        keys = np.array([k for m in nv.memory for k in m], dtype=np.int64)
        masks = np.array([v for m in nv.memory for v in m.values()], dtype=np.int64)
        arrays = {"low": nv.low, "high": nv.high, "seen": nv.seen, "history": history}
        arrays |= {"sizes": sizes, "keys": keys, "masks": masks}
        return pack(self.name, _VERSION, arrays, {"tags": list(self.layout.tags), "orders": nv.orders})

    def restore(self, blob: bytes) -> None:
        arrays, meta = unpack(blob, self.name, _VERSION)
        check_tags(meta, self.layout, self.name)
        nv = self.novelty
        if meta.get("orders") != nv.orders:
            raise ConfigError(f"{self.name}: saved with contexts of order {meta.get('orders')}, not {nv.orders}")
        nv.low, nv.high, nv.seen = arrays["low"], arrays["high"], arrays["seen"]
        nv.history = [[int(c) for c in row if c >= 0] for row in arrays["history"]]
        ends = np.cumsum(arrays["sizes"])
        starts = ends - arrays["sizes"]
        keys, masks = arrays["keys"], arrays["masks"]
        nv.memory = [
            dict(zip(keys[a:b].tolist(), masks[a:b].tolist(), strict=True)) for a, b in zip(starts, ends, strict=True)
        ]


def build(ctx: BuildContext) -> list[NoveltyDetector]:
    return [NoveltyDetector(ctx)] if ctx.settings.novelty_enabled else []
