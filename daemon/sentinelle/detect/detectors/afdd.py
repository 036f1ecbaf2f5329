"""Air-handling-unit faults after ASHRAE Guideline 36: one subject per configured AHU and condition.

The numerics are :class:`~sentinelle.detect.afdd.Afdd` (``[detect.assets.afdd]``).  A
condition opens an ``ahu_fault`` alert once it held ``alarm_delay_s`` without a break (k = n
= that many ticks) and clears after ``detect.clear_normal_steps`` tested ticks without it; a
tick where it is not tested (another operating state, the state too recent, the asset
paused) counts neither way.  The alert is filed under the condition's point (the supply air
for FC5/7/8/12/13 and APAR 6/7, the mixed air for FC2/3/10, APAR 2 and OAL …) and shows the condition's
quantity against its threshold.  Findings' ``score``: quantity over threshold.

Learning: only the calibration of healthy offsets (:meth:`~sentinelle.detect.afdd.Afdd.learn`),
which ends with the start-up history replay or after ``calibration_s`` of tested operation.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from ...settings.afdd import AfddSettings
from ..afdd import CONDITIONS, NAMES, SUBJECT_OF, TEXT, Afdd, AfddCheck
from ..alerts import Observation
from .base import BuildContext, Explanation, Findings, Layout, Spec, Tick, check_tags, findings, pack, unpack

log = logging.getLogger(__name__)

RANK = 55
_UNITS = {"FC4": "changes/h", "APAR2": "fraction", "APAR2C": "fraction", "OAL": "fraction"}
"""Conditions whose quantity is not in its point's unit."""
_VERSION = 3
"""2: the APAR rules' minimum outdoor-air fraction (detect/apar.py); 3: the damper leak condition (OAL)."""


class AfddDetector:
    """The AHUs of one tag group that share an alarm delay (their k = n); ``name`` is unique in the group."""

    def __init__(
        self, ctx: BuildContext, units: list[tuple[str, AfddSettings, dict[str, int]]], name: str = "afdd"
    ) -> None:
        lay = ctx.layout
        self.name = name
        self.layout = lay
        self.units = [Afdd(s, rows, lay.period_s) for _, s, rows in units]
        self.unit_assets = [lay.asset_names.index(a) for a, _, _ in units]
        self.spec = Spec(
            kind="ahu_fault",
            subjects=tuple(f"{a}#{name}" for a, _, _ in units for name in NAMES),
            subject_assets=np.repeat(np.array(self.unit_assets, dtype=np.intp), len(NAMES)),
            open_k=max(1, math.ceil(units[0][1].alarm_delay_s / lay.period_s)),
            open_n=max(1, math.ceil(units[0][1].alarm_delay_s / lay.period_s)),
            clear_steps=ctx.settings.clear_normal_steps,
        )
        self._checks: list[AfddCheck] = []

    def observe(self, tick: Tick) -> Findings:
        if tick.replay_ended:
            # The start-up history replay that just ended was the known-good operation the offsets calibrate on.
            for unit in self.units:
                unit.freeze()
        m = len(NAMES)
        flagged = np.zeros(len(self.units) * m, dtype=bool)
        normal = np.zeros_like(flagged)
        score = np.full(len(flagged), np.nan)
        self._checks = []
        for u, (unit, asset) in enumerate(zip(self.units, self.unit_assets, strict=True)):
            check = unit.check(tick.ts, tick.clean, bool(tick.paused[asset]))
            self._checks.append(check)
            sl = slice(u * m, (u + 1) * m)
            flagged[sl] = np.bincount(SUBJECT_OF, weights=check.violated, minlength=m) > 0
            tested = np.bincount(SUBJECT_OF, weights=check.evaluable, minlength=m) > 0
            normal[sl] = tested & ~flagged[sl]
            with np.errstate(invalid="ignore", divide="ignore"):
                ratio = np.where(check.evaluable, check.quantity / np.maximum(check.threshold, 1e-9), np.nan)
            per = np.full(m, -np.inf)
            np.maximum.at(per, SUBJECT_OF, np.nan_to_num(ratio, nan=-np.inf))
            score[sl] = np.where(np.isfinite(per), per, np.nan)
        return findings(flagged, normal, score)

    def learn(self, tick: Tick, findings: Findings) -> None:
        for unit, check in zip(self.units, self._checks, strict=True):
            unit.learn(check)

    def explain(self, tick: Tick, findings: Findings, subject: int, tag: str | None) -> Explanation:
        m = len(NAMES)
        u, c = divmod(subject, m)
        unit, check = self.units[u], self._checks[u]
        name = NAMES[c]
        idx = [i for i, cond in enumerate(CONDITIONS) if cond.name == name]
        i = max(idx, key=lambda j: float(np.nan_to_num(check.quantity[j] - check.threshold[j], nan=-np.inf)))
        row = unit.rows[CONDITIONS[i].role]
        q, thr = float(check.quantity[i]), float(check.threshold[i])
        obs = Observation(
            ts=tick.ts,
            actual=q,
            forecast=float(unit.offset[i]),
            lower=-thr,
            upper=thr,
            z=q / thr if thr > 0 else q,
            score=float(findings.score[subject]),
            unit=_UNITS.get(name, self.layout.units[row]),
        )
        return Explanation(
            tag=tag or self.layout.tags[row],
            obs=obs,
            contributors=(),
            magnitude=float(np.nan_to_num(findings.score[subject], nan=0.0)),
            limit=thr,
            members=(TEXT[name],),
        )

    def state(self) -> bytes:
        arrays: dict[str, np.ndarray] = {}
        for u, unit in enumerate(self.units):
            arrays[f"offset{u}"] = unit.offset
            arrays[f"buf{u}"] = unit.buf
            arrays[f"changes{u}"] = np.array(unit.changes, dtype=float)
            arrays[f"scalars{u}"] = np.array([unit.filled, unit.state, unit.since, float(unit.frozen), unit.cal_ticks])
            for i, b in enumerate(unit.cal):
                arrays[f"cal{u}_{i}"] = np.array(b, dtype=float)
            if unit.apar is not None:
                arrays[f"apar{u}"] = np.array([unit.apar.q_min, float(unit.apar.learning)])
                arrays[f"apar_ref{u}"] = np.array(unit.apar.reference, dtype=float)
        return pack(self.name, _VERSION, arrays, {"tags": list(self.layout.tags), "units": len(self.units)})

    def restore(self, blob: bytes) -> None:
        arrays, meta = unpack(blob, self.name, _VERSION)
        check_tags(meta, self.layout, self.name)
        for u, unit in enumerate(self.units):
            unit.offset = arrays[f"offset{u}"].astype(float)
            unit.buf = arrays[f"buf{u}"].astype(float)
            unit.changes.clear()
            unit.changes.extend(float(x) for x in arrays[f"changes{u}"])
            filled, state, since, frozen, cal_ticks = arrays[f"scalars{u}"].tolist()
            unit.filled, unit.state, unit.since, unit.frozen = int(filled), int(state), int(since), bool(frozen)
            unit.cal_ticks = int(cal_ticks)
            unit.cal = [arrays[f"cal{u}_{i}"].astype(float).tolist() for i in range(len(CONDITIONS))]
            if unit.apar is not None and f"apar{u}" in arrays:
                q_min, learning = arrays[f"apar{u}"].tolist()
                unit.apar.q_min, unit.apar.learning = float(q_min), bool(learning)
                unit.apar.reference = arrays[f"apar_ref{u}"].astype(float).tolist()


def _units(ctx: BuildContext) -> list[tuple[str, AfddSettings, dict[str, int]]]:
    lay: Layout = ctx.layout
    out = []
    for a in ctx.settings.assets:
        s = a.afdd
        if s is None or a.name not in lay.asset_names:
            continue
        roles = s.roles()
        if all(t in lay.row_of for t in roles.values()):
            out.append((a.name, s, {role: lay.row_of[t] for role, t in roles.items()}))
        elif any(t in lay.row_of for t in roles.values()):
            log.warning("asset %s: AHU fault-detection points are not all in one tag group; not checked", a.name)
    return out


def build(ctx: BuildContext) -> list[AfddDetector]:
    """One detector per alarm delay among the group's AHUs (the life cycle's k of n is per detector)."""
    by_delay: dict[float, list[tuple[str, AfddSettings, dict[str, int]]]] = {}
    for unit in _units(ctx):
        by_delay.setdefault(unit[1].alarm_delay_s, []).append(unit)
    if len(by_delay) == 1:
        return [AfddDetector(ctx, units) for units in by_delay.values()]
    return [AfddDetector(ctx, units, f"afdd@{delay:g}s") for delay, units in sorted(by_delay.items())]
