"""Forecast residuals: each tag's value against the forecast made before it, scored by River.

The numerics are :class:`~sentinelle.detect.scoring.ResidualScorer`'s (scaled residual z,
its calibrated surprise).  Subjects: with ``detect.merge_by_asset`` (the default)
one per asset — anomalous while any of its tags is, normal when every scored tag is, its
flagged tags the alert's members ranked by score — otherwise one per tag.  Its per-tag
numbers (forecast, z, score) are the ones every alert's event shows, so its findings carry
them (``rows``).  The scorer learns every row that is not gated as it scores (winsorised:
a fault is not learned as normal in one tick, and a new normal is absorbed instead of
alarming for ever), so :meth:`~ResidualDetector.learn` has nothing left to do.  Held rows of
replayed history (``Tick.held``) are learned as ``detect.history_held`` says (``scoring.py``).
A flagged tick beyond ``detect.score_severe_sigmas`` of the tag's usual surprise is
``severe`` (``detect.severe_opens_at_once``): its alert opens at once.

State: the scorer's arrays (robust location and scale per tag, recent peaks, the
likelihood layer's rings, the band calibration's factors, the seasonal repeat's bins, the forecasts remembered for the
next ticks), saved by name.
"""

from __future__ import annotations

import math

import numpy as np

from ...metrics import levels_or_nan
from ...records import BoolArray, FloatArray
from ..scoring import ResidualScorer
from .base import (
    BuildContext,
    Explanation,
    Findings,
    RowNumbers,
    Spec,
    Tick,
    check_tags,
    findings,
    pack,
    unpack_versions,
)

RANK = 10
_VERSION = 2
"""v2: the cold scale of a replay's hand-over (``live.*``, ``scorer._handover_steps``); v1 restores without one."""


class ResidualDetector:
    """Residual z and River score per tag; alerts per asset incident or per tag."""

    name = "forecast_residual"

    def __init__(self, ctx: BuildContext) -> None:
        lay = ctx.layout
        s = ctx.settings
        self.layout = lay
        self.metrics = ctx.metrics
        self.levels = ctx.levels
        self.merged = s.merge_by_asset
        self.severe_opens_at_once = s.severe_opens_at_once
        self.scorer = ResidualScorer.from_settings(
            lay.n, ctx.levels, np.array([t.min_spread for t in lay.tag_settings]), s
        )
        self.spec = Spec(
            kind="forecast_residual",
            subjects=lay.subjects if self.merged else lay.tags,
            subject_assets=np.arange(len(lay.asset_names)) if self.merged else lay.asset_index,
            open_k=s.open_k,
            open_n=s.open_n,
            clear_steps=s.clear_normal_steps,
        )
        self._flagged: BoolArray = np.zeros(lay.n, dtype=bool)
        self._z: FloatArray = np.full(lay.n, np.nan)

    def observe(self, tick: Tick) -> Findings:
        lay = self.layout
        gate = tick.gate
        if tick.replay_ended:
            # The first tick after a history replay: what held history taught the scale gives way to live data.
            self.scorer.history_replayed()
        # Scoring learns as it goes: every row not gated, an open alert's rows too (winsorised,
        # scoring.py), so a new normal is absorbed instead of alarming for ever.
        exp, z, score, flagged = self.scorer.score(tick.batch, ~gate, tick.deadband)
        surprise = self.scorer.surprise  # the score before any refractory period: ranks and reports tags
        if exp is None:
            exp = levels_or_nan(self.levels, lay.n)
        withheld = flagged & tick.maintenance[lay.asset_index] if tick.maintenance.any() else None
        # Gated rows neither flag nor show a score.
        z[gate] = np.nan
        score[gate] = np.nan
        surprise[gate] = np.nan
        flagged &= ~gate
        scored = np.isfinite(z)
        n_scored = int(scored.sum())
        if n_scored:
            self.metrics.ticks_scored.inc(n_scored)
        self._flagged, self._z = flagged, z
        rows = RowNumbers(expected=exp, z=z, score=score, mid=self.scorer.mid, surprise=surprise)
        count = int(flagged.sum())
        # alarms (issue 13.5): a tick beyond detect.score_severe_sigmas calibrated σ opens at once
        severe = flagged & self.scorer.severe & self.severe_opens_at_once
        if not self.merged:
            return findings(flagged, scored & ~flagged, score, count=count, rows=rows, withheld=withheld, severe=severe)
        n_assets = len(lay.asset_names)
        any_flagged = np.bincount(lay.asset_index, weights=flagged, minlength=n_assets) > 0
        any_scored = np.bincount(lay.asset_index, weights=scored, minlength=n_assets) > 0
        worst = np.zeros(n_assets)
        if count:
            np.maximum.at(worst, lay.asset_index[flagged], surprise[flagged])
        any_severe = np.bincount(lay.asset_index, weights=severe, minlength=n_assets) > 0
        return findings(
            any_flagged, any_scored & ~any_flagged, worst, count=count, rows=rows, withheld=withheld, severe=any_severe
        )

    def learn(self, tick: Tick, findings: Findings) -> None:
        """Nothing more to learn: the scorer learned every row not gated while scoring (see :meth:`observe`)."""

    def explain(self, tick: Tick, findings: Findings, subject: int, tag: str | None) -> Explanation:
        lay = self.layout
        if not self.merged:
            return tick.explain_tag(subject, abs(float(self._z[subject])))
        rows = [r for r in lay.asset_rows[lay.asset_names[subject]] if self._flagged[r]]
        ranked = tick.ranked(rows)
        row = ranked[0] if tag is None else lay.row_of[tag]
        return Explanation(
            tag=lay.tags[row],
            obs=tick.obs(row),
            contributors=tick.contributors(row),
            magnitude=max((abs(float(self._z[r])) for r in rows), default=math.nan),
            members=tuple(lay.tags[r] for r in ranked),
        )

    def state(self) -> bytes:
        sc = self.scorer
        arrays: dict[str, np.ndarray] = {f"scorer.{k}": v for k, v in _arrays(sc).items()}
        arrays |= {f"scale.{k}": v for k, v in _arrays(sc.scale).items()}
        arrays |= {f"live.{k}": v for k, v in _arrays(sc.live).items()}
        if sc.likelihood is not None:
            arrays |= {f"likelihood.{k}": v for k, v in _arrays(sc.likelihood).items()}
            arrays |= {f"likelihood.long.{k}": v for k, v in _arrays(sc.likelihood.long).items()}
        if sc.tail is not None:
            arrays |= {f"tail.{k}": v for k, v in _arrays(sc.tail).items()}
        if sc.band is not None:
            arrays |= {f"band.{k}": v for k, v in _arrays(sc.band).items()}
        if sc.repeat is not None:
            arrays |= {f"repeat.{k}": v for k, v in _arrays(sc.repeat).items()}
        meta = {"has_prev": sc._prev is not None, "tags": list(self.layout.tags)}
        return pack(self.name, _VERSION, arrays, meta)

    def restore(self, blob: bytes) -> None:
        version, arrays, meta = unpack_versions(blob, self.name, (1, _VERSION))
        check_tags(meta, self.layout, self.name)
        sc = self.scorer
        if version == 1:  # saved before the hand-over's end existed: none pending
            sc._handover_steps[:] = 0.0
        targets: dict[str, object] = {"scorer": sc, "scale": sc.scale, "live": sc.live}
        if sc.likelihood is not None:
            targets |= {"likelihood": sc.likelihood, "likelihood.long": sc.likelihood.long}
        if sc.tail is not None:
            targets["tail"] = sc.tail
        if sc.band is not None:
            targets["band"] = sc.band
        if sc.repeat is not None:
            targets["repeat"] = sc.repeat
        for key, value in arrays.items():
            owner, _, attr = key.rpartition(".")
            if owner == "tail" and sc.tail is None:
                continue  # saved with a tail bound on (detect.score_tail_calibration, score_published_tail), now off
            if owner == "band" and (sc.band is None or getattr(sc.band, attr).shape != value.shape):
                continue  # saved with the band calibration off, or per tag vs per width class: it relearns
            if owner == "repeat" and (sc.repeat is None or getattr(sc.repeat, attr).shape != value.shape):
                continue  # saved with the seasonal repeat off, or another period or tolerance: it relearns
            setattr(targets[owner], attr, value)
        if not meta["has_prev"]:
            sc._prev = None


def _arrays(obj: object) -> dict[str, np.ndarray]:
    """The numpy arrays an object holds (its learned and stream state; settings are scalars, rebuilt)."""
    return {k: v for k, v in vars(obj).items() if isinstance(v, np.ndarray)}


def build(ctx: BuildContext) -> list[ResidualDetector]:
    return [ResidualDetector(ctx)]
