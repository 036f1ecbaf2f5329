"""Learned relations (virtual sensors): a target tag against what other tags of its asset imply.

The numerics are :class:`~sentinelle.detect.relations.RelationCheck` (an online
least-squares fit, forgotten over ``memory_s``).  One subject per configured relation
(its target tag); the alert names the inputs as members and ranks them by how far each
moved the expectation.  A relation learns only while nothing is wrong with its asset —
no alert of any kind open on it (``tick.alerts.busy_assets()``, read after the detectors
before this one advanced) — and skips ticks of a paused asset entirely.  Findings'
``score``: the residual z.  State: each fit's sums, weights and counters.  After the replay of a
compressed export (``detect.history_held``) a fit learned on held slots gives way to live data
within ``detect.history_held_weight_steps`` ticks, and with a finite
``detect.history_held_relation_drop_after_steps`` its spread is replaced by the live ticks' own after that
many (:meth:`RelationDetector.history_replayed`).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from ...records import Contributor
from ..alerts import Observation
from ..relations import RelationCheck
from .base import BuildContext, Explanation, Findings, Spec, Tick, check_tags, findings, nan_to, pack, unpack_versions

log = logging.getLogger(__name__)

RANK = 60
_VERSION = 2
"""v2: a replay's spread hand-over in flight (``_HANDOVER``); v1 restores with none pending."""
_ARRAYS = ("_gram", "_moment", "weights", "_input_sum")
_SCALARS = ("_weight_sum", "_square_sum", "_square_weight", "count", "skipped")
_HANDOVER = ("handover_steps", "_live_square_sum", "_live_square_weight", "live_learned")


@dataclass(frozen=True, slots=True)
class Relation:
    """One configured relation, resolved to rows of its tag group."""

    asset: str
    target: int
    inputs: tuple[int, ...]
    check: RelationCheck


class RelationDetector:
    name = "relation"

    def __init__(self, ctx: BuildContext, relations: list[Relation]) -> None:
        lay = ctx.layout
        s = ctx.settings
        self.layout = lay
        self.relations = relations
        self.asset_of = np.array([lay.asset_names.index(r.asset) for r in relations], dtype=np.intp)
        self.spec = Spec(
            kind="relation",
            subjects=tuple(lay.tags[r.target] for r in relations),
            subject_assets=self.asset_of,
            open_k=s.open_k,
            open_n=s.open_n,
            clear_steps=s.clear_normal_steps,
        )
        self.max_contributors = lay.max_contributors
        self._assessed = np.zeros(len(relations), dtype=bool)
        self.history_held = s.history_held
        self.history_held_weight_steps = s.history_held_weight_steps
        self.history_held_drop_after_steps = s.history_held_relation_drop_after_steps
        # Replayed history (detect.history_held): ticks each relation was checked on, and how many had a held tag.
        self._replay_ticks = np.zeros(len(relations), dtype=np.int64)
        self._replay_held = np.zeros(len(relations), dtype=np.int64)

    def observe(self, tick: Tick) -> Findings:
        if tick.replay_ended:
            self.history_replayed()
        n = len(self.relations)
        flagged = np.zeros(n, dtype=bool)
        normal = np.zeros(n, dtype=bool)
        z = np.full(n, np.nan)
        self._assessed = ~tick.paused[self.asset_of]
        clean = tick.clean
        for j in np.flatnonzero(self._assessed).tolist():
            rel = self.relations[j]
            # Gated tags are NaN in ``clean``: the tick is skipped, and nothing is learned from it.
            z[j], flagged[j] = rel.check.assess(float(clean[rel.target]), clean[list(rel.inputs)])
            normal[j] = math.isfinite(z[j]) and not flagged[j]
            if tick.held is not None and self.history_held != "off":
                self._replay_ticks[j] += 1
                self._replay_held[j] += bool(tick.held[[rel.target, *rel.inputs]].any())
        return findings(flagged, normal, z)

    def history_replayed(self) -> None:
        """The replay of a compressed export ended (the first tick after it, ``Tick.replay_ended``): a fit learned
        on held values gives way to live data.

        A relation checked on held slots keeps its fit and spread, as a prior worth
        ``history_held_weight_steps / held share`` ticks (:meth:`RelationCheck.discount`) instead of
        ``memory_s`` (7 days): a held target against held inputs carries both deadbands' error, so the
        spread learned from it is wider than the live one (a pump degradation opened one period later).  With a
        finite ``history_held_relation_drop_after_steps`` that spread is replaced altogether by the live ticks'
        own once that many (/ held share) were learned (:meth:`RelationCheck.hand_over_spread`).
        """
        for j, rel in enumerate(self.relations):
            if self._replay_held[j] > 0:
                share = self._replay_held[j] / self._replay_ticks[j]
                rel.check.discount(self.history_held_weight_steps / share)
                if math.isfinite(self.history_held_drop_after_steps):
                    rel.check.hand_over_spread(self.history_held_drop_after_steps / share)
        self._replay_ticks[:] = 0
        self._replay_held[:] = 0

    def learn(self, tick: Tick, findings: Findings) -> None:
        busy = tick.alerts.busy_assets()
        for j in np.flatnonzero(self._assessed).tolist():
            rel = self.relations[j]
            rel.check.learn(rel.asset not in busy)

    def explain(self, tick: Tick, findings: Findings, subject: int, tag: str | None) -> Explanation:
        """The target against what its inputs imply (band: ± z_threshold spreads); contributors: the target
        (its z), then the inputs by how far each moved the expectation (in spreads)."""
        lay = self.layout
        rel = self.relations[subject]
        check = rel.check
        band = check.z_threshold * check.spread
        obs = Observation(
            ts=tick.ts,
            actual=float(tick.values[rel.target]),
            forecast=check.expected,
            lower=check.expected - band,
            upper=check.expected + band,
            z=check.z,
            score=abs(check.z),
            unit=lay.units[rel.target],
        )
        pushes = check.pushes(tick.clean[list(rel.inputs)])
        ranked = sorted(range(len(rel.inputs)), key=lambda i: -nan_to(abs(float(pushes[i])), -1.0))
        contributors = (
            Contributor(tag=lay.tags[rel.target], score=abs(check.z), residual_z=check.z),
            *(
                Contributor(tag=lay.tags[rel.inputs[i]], score=abs(float(pushes[i])), residual_z=float(pushes[i]))
                for i in ranked
            ),
        )
        return Explanation(
            tag=lay.tags[rel.target],
            obs=obs,
            contributors=contributors[: self.max_contributors],
            magnitude=abs(obs.z),
            limit=check.z_threshold,
            members=tuple(lay.tags[i] for i in rel.inputs),
        )

    def state(self) -> bytes:
        arrays: dict[str, np.ndarray] = {}
        for j, rel in enumerate(self.relations):
            for a in _ARRAYS:
                arrays[f"{j}{a}"] = getattr(rel.check, a)
            arrays[f"{j}_scalars"] = np.array([float(getattr(rel.check, a)) for a in _SCALARS])
            arrays[f"{j}_handover"] = np.array([float(getattr(rel.check, a)) for a in _HANDOVER])
            arrays[f"{j}_last"] = np.array([rel.check.expected, rel.check.z])
        return pack(self.name, _VERSION, arrays, {"tags": list(self.layout.tags), "relations": len(self.relations)})

    def restore(self, blob: bytes) -> None:
        version, arrays, meta = unpack_versions(blob, self.name, (1, _VERSION))
        check_tags(meta, self.layout, self.name)
        for j, rel in enumerate(self.relations):
            c = rel.check
            for a in _ARRAYS:
                setattr(c, a, arrays[f"{j}{a}"])
            ws, ss, sw, count, skipped = arrays[f"{j}_scalars"].tolist()
            c._weight_sum, c._square_sum, c._square_weight = ws, ss, sw
            c.count, c.skipped = int(count), int(skipped)
            c.expected, c.z = arrays[f"{j}_last"].tolist()
            # Saved before the hand-over existed (v1): none pending.
            steps, live_sum, live_weight, live_learned = arrays[f"{j}_handover"].tolist() if version > 1 else [0.0] * 4
            c.handover_steps, c._live_square_sum, c._live_square_weight = steps, live_sum, live_weight
            c.live_learned = int(live_learned)


def _relations(ctx: BuildContext) -> list[Relation]:
    lay = ctx.layout
    row = lay.row_of
    out = []
    for a in ctx.settings.assets:
        if a.name not in lay.asset_names:
            continue
        for r in a.relations:
            names = (r.target, *r.inputs)
            if all(name in row for name in names):
                target = row[r.target]
                spread = lay.tag_settings[target].min_spread
                check = RelationCheck.from_settings(r, lay.period_s, spread)
                out.append(Relation(a.name, target, tuple(row[name] for name in r.inputs), check))
            elif any(name in row for name in names):
                log.warning("asset %s: relation of %s: tags not in one tag group; not checked", a.name, r.target)
    return out


def build(ctx: BuildContext) -> list[RelationDetector]:
    relations = _relations(ctx)
    return [RelationDetector(ctx, relations)] if relations else []
