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

**Saved state.**  Version 2 added the APAR conditions after the guideline's and APAR's learned
minimum outdoor-air fraction, version 3 the damper leak condition (OAL) after those.  An older
state (a daemon upgraded in place) is migrated: every condition it had keeps its offset and
calibration, the later ones start as a new detector has them (an older daemon never tested them),
and the saved alert life cycle moves with the subjects
(:meth:`AfddDetector.moved_subjects`), so an open ``ahu_fault`` alert stays open.  A state that
cannot be read or does not fit is logged and counted and this detector starts fresh; it never stops
the other detectors' states from restoring.  Both outcomes count in
``sentinelle_detector_state_upgrades_total{detector, outcome}``.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from ...errors import ConfigError
from ...records import IntArray
from ...settings.afdd import AfddSettings
from ..afdd import CONDITIONS, NAMES, SUBJECT_OF, TEXT, Afdd, AfddCheck
from ..alerts import Observation
from .base import BuildContext, Explanation, Findings, Layout, Spec, Tick, check_tags, findings, pack, unpack_versions

log = logging.getLogger(__name__)

RANK = 55
_UNITS = {"FC4": "changes/h", "APAR2": "fraction", "APAR2C": "fraction", "OAL": "fraction"}
"""Conditions whose quantity is not in its point's unit."""
_VERSION = 3
"""2: the APAR conditions after the guideline's, and the APAR rules' minimum outdoor-air fraction
(detect/apar.py); 3: the damper leak condition (OAL) after them."""
_GUIDELINE = ("FC2", "FC3", "FC4", "FC5", "FC7", "FC8", "FC8", "FC9", "FC10", "FC11", "FC12", "FC13")
SAVED_CONDITIONS: dict[int, tuple[str, ...]] = {
    1: _GUIDELINE,
    2: (*_GUIDELINE, "APAR2", "APAR2C", "APAR6", "APAR7", "APAR7"),
}
"""The conditions of each older version's state, in its order (per-condition arrays: offsets, calibration);
its subjects per AHU are their names in that order (FC8 and APAR7 once)."""


def _conditions_now(saved: tuple[str, ...]) -> IntArray:
    """Where each saved condition is in :data:`CONDITIONS` (a two-sided one's halves in their order)."""
    taken: set[int] = set()
    out = []
    for name in saved:
        i = next(i for i, c in enumerate(CONDITIONS) if c.name == name and i not in taken)
        taken.add(i)
        out.append(i)
    return np.array(out, dtype=np.intp)


class AfddDetector:
    """The AHUs of one tag group that share an alarm delay (their k = n); ``name`` is unique in the group."""

    def __init__(
        self, ctx: BuildContext, units: list[tuple[str, AfddSettings, dict[str, int]]], name: str = "afdd"
    ) -> None:
        lay = ctx.layout
        self.name = name
        self.layout = lay
        self._unit_settings = units
        self.units = [Afdd(s, rows, lay.period_s) for _, s, rows in units]
        self._upgrades = ctx.metrics.detector_state_upgrades
        self._moved: IntArray | None = None
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
        """Take over a saved state: this version's as it is, an older one migrated; one that does not fit: fresh."""
        self._moved = None
        version: int | None = None
        try:
            version, arrays, meta = unpack_versions(blob, self.name, (*SAVED_CONDITIONS, _VERSION))
            check_tags(meta, self.layout, self.name)
            if meta.get("units") != len(self.units):
                raise ConfigError(f"saved for {meta.get('units')} AHUs, configured now {len(self.units)}")
            if version != _VERSION:
                # The life cycle's saved rows are the old version's subjects, whatever becomes of the state itself.
                self._moved = _subjects_now(len(self.units), SAVED_CONDITIONS[version])
                arrays = _migrated(arrays, len(self.units), SAVED_CONDITIONS[version])
            self._restore_now(arrays)
        except (ConfigError, KeyError, ValueError, TypeError, IndexError) as e:
            self.units = [Afdd(s, rows, self.layout.period_s) for _, s, rows in self._unit_settings]
            self._upgrades.labels(self.name, "discarded").inc()
            log.warning(
                "%s: saved state (v%s) not used, this detector starts fresh (calibrating its offsets again): %s",
                self.name,
                "?" if version is None else version,
                e,
            )
            return
        if version != _VERSION:
            self._upgrades.labels(self.name, "migrated").inc()
            added = [n for n in NAMES if n not in SAVED_CONDITIONS[version]]
            log.info(
                "%s: saved state v%d migrated to v%d (%d AHUs: offsets and calibration kept; %s start as new)",
                self.name,
                version,
                _VERSION,
                len(self.units),
                ", ".join(added),
            )

    def moved_subjects(self) -> IntArray | None:
        """After restoring an older version's state: the subject each saved one is now (``MovesSubjects``)."""
        return self._moved

    def _restore_now(self, arrays: dict[str, np.ndarray]) -> None:
        n = len(CONDITIONS)
        restored = []
        for u, (_, settings, rows) in enumerate(self._unit_settings):
            unit = Afdd(settings, rows, self.layout.period_s)
            offset, buf = arrays[f"offset{u}"].astype(float), arrays[f"buf{u}"].astype(float)
            if offset.shape != unit.offset.shape or buf.shape != unit.buf.shape:
                raise ValueError(f"AHU {u}: saved arrays of shapes {offset.shape}, {buf.shape}")
            unit.offset, unit.buf = offset, buf
            unit.changes.extend(float(x) for x in arrays[f"changes{u}"])
            filled, state, since, frozen, cal_ticks = arrays[f"scalars{u}"].tolist()
            unit.filled, unit.state, unit.since, unit.frozen = int(filled), int(state), int(since), bool(frozen)
            unit.cal_ticks = int(cal_ticks)
            unit.cal = [arrays[f"cal{u}_{i}"].astype(float).tolist() for i in range(n)]
            if unit.apar is not None and f"apar{u}" in arrays:
                q_min, learning = arrays[f"apar{u}"].tolist()
                unit.apar.q_min, unit.apar.learning = float(q_min), bool(learning)
                unit.apar.reference = arrays[f"apar_ref{u}"].astype(float).tolist()
            restored.append(unit)
        self.units = restored  # all or nothing: a state that fails halfway leaves no AHU half restored


def _migrated(arrays: dict[str, np.ndarray], units: int, saved: tuple[str, ...]) -> dict[str, np.ndarray]:
    """An older state's arrays as this version has them: per-condition arrays in today's places, the others empty.

    Lossless: every array of the older version keeps its values; what later versions added (the APAR
    and OAL conditions' offsets and calibration, APAR's learned minimum) is what a new detector starts with.
    """
    now = _conditions_now(saved)
    out = dict(arrays)
    for u in range(units):
        old = arrays[f"offset{u}"]
        if old.shape != (len(saved),):
            raise ValueError(f"AHU {u}: that version's state has {len(saved)} offsets, this one {old.shape}")
        offset = np.zeros(len(CONDITIONS))
        offset[now] = old
        out[f"offset{u}"] = offset
        cal = {int(i): arrays[f"cal{u}_{j}"] for j, i in enumerate(now)}
        for i in range(len(CONDITIONS)):
            out[f"cal{u}_{i}"] = cal.get(i, np.zeros(0))
    return out


def _subjects_now(units: int, saved: tuple[str, ...]) -> IntArray:
    """Per subject of an older version's detector of ``units`` AHUs: its subject now."""
    per_unit = np.array([NAMES.index(n) for n in dict.fromkeys(saved)], dtype=np.intp)
    return (np.arange(units, dtype=np.intp)[:, None] * len(NAMES) + per_unit[None, :]).ravel()


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
