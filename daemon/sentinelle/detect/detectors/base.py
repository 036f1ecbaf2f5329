"""The one contract every detector keeps, and the records it reads and writes.

A detector turns a :class:`Tick` — one tag group at one slot, already gated by
modes, maintenance and data quality — into :class:`Findings`: per *subject* (what
its alerts are about: a tag, an asset, a relation's target, a tag's data-quality
reason), whether the tick is anomalous, whether it counts as normal towards
clearing, and how large the anomaly is.  It never opens, updates or clears an
alert itself: the stage hands every detector's findings to the one life cycle
(:mod:`..alerting`: k of n to open, a run of normal ticks to clear, updates,
pauses), which asks the detector to :meth:`~Detector.explain` only the few
subjects whose alert changes — the numbers and contributors an event shows.

River's estimators split scoring from learning (``score_one`` / ``learn_one``) so
the caller decides what is learned; so do these: :meth:`~Detector.observe` judges
the tick, :meth:`~Detector.learn` then learns from what the caller's policy allows
(no gated tag, no alert open — read from ``tick.alerts``).  Stream state that is not
learned (a rate's recent values, an EWMA's running value) moves in ``observe``.

:meth:`~Detector.state` / :meth:`~Detector.restore` carry a detector's state as
versioned bytes: numpy arrays and a JSON header in one ``np.savez`` archive
(:func:`pack` / :func:`unpack`), never a pickle, so a blob from another process
(scale-out over Kafka partitions) cannot run code.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, overload, runtime_checkable

import numpy as np

from ...errors import ConfigError
from ...metrics import Metrics
from ...records import (
    AlertKind,
    BoolArray,
    Contributor,
    DataQualityReason,
    FloatArray,
    ForecastBatch,
    IntArray,
)
from ...settings import DetectSettings, TagSettings
from ..alerts import Observation
from ..quality import QualityTick

STATE_FORMAT = 1
"""Version of the archive layout :func:`pack` writes (each detector adds its own version)."""


@dataclass(frozen=True, slots=True)
class Layout:
    """One tag group's fixed structure: rows (tags) and the assets they belong to."""

    tags: tuple[str, ...]
    assets: tuple[str, ...]
    """Per row: the tag's asset."""
    units: tuple[str, ...]
    period_s: float
    tag_settings: tuple[TagSettings, ...]
    asset_names: tuple[str, ...]
    """The group's assets, in first-row order: the rows of every per-asset array."""
    asset_index: IntArray
    """Row → index into ``asset_names``."""
    asset_rows: dict[str, list[int]]
    subjects: tuple[str, ...]
    """Per asset: the subject of its per-asset alerts (the asset, or asset@period when it spans periods)."""
    row_of: dict[str, int]
    """Tag → row."""
    max_contributors: int
    """How many contributors an alert lists."""

    @property
    def n(self) -> int:
        return len(self.tags)


@dataclass(frozen=True, slots=True)
class RowNumbers:
    """Each tag against its forecast at this tick: the numbers every alert's event shows.

    ``expected``: the forecast quantiles made earlier for this slot (rows × levels; NaN: none);
    ``z``: the scaled residual, ``score``: the residual detector's score (with a refractory period, the
    onset's: what evaluations record; NaN: gated or not scored).
    """

    expected: FloatArray
    z: FloatArray
    score: FloatArray
    mid: int
    """Column of the median in ``expected``."""
    surprise: FloatArray
    """The score the flag compares (before any refractory period): what alerts report and rank by."""


class AlertView(Protocol):
    """What the life cycle holds open at the moment of the call (a detector's learning policy reads it)."""

    def open(self, detector: Detector) -> BoolArray:
        """Per subject of ``detector``: an alert is open."""
        ...

    def busy_assets(self) -> frozenset[str]:
        """Assets with an alert of any kind open (in any tag group)."""
        ...


@dataclass(frozen=True, slots=True)
class Tick:
    """One tag group at one slot, gated: what every detector sees."""

    layout: Layout
    ts: float
    batch: ForecastBatch
    values: FloatArray
    """As received (NaN: no usable value)."""
    clean: FloatArray
    """``values`` with gated rows NaN: what a detector may judge and learn from."""
    gate: BoolArray
    """Per row: gated (its asset paused, or a data-quality condition)."""
    paused: BoolArray
    """Per asset: detection paused (a mode, a hold-off after a mode change, or maintenance)."""
    maintenance: BoolArray
    """Per asset: in maintenance."""
    quality: QualityTick
    """This tick's data-quality verdict per row."""
    alerts: AlertView
    rows: RowNumbers | None = None
    """Filled by the stage after every detector observed (the residual detector reports them)."""
    replay: bool = False
    """History is being replayed (the start-up backfill, an evaluation's warm-up: ``DetectStage.replaying_history``):
    detectors learn as usual; the alerts it raises are forgotten at its end."""
    replay_ended: bool = False
    """The tag group's first tick after a history replay ended (live, or a next replay): a detector whose warm-up
    is the history ends it here (``detect.asset_warmup_ends_with_history``).  Both flags reach every detector the
    same way, in the tick, so no detector needs a hook of its own beside :class:`Detector`."""
    held: BoolArray | None = None
    """History replay of a compressed export: rows whose value was held, not read (``WindowBatch.held``); None:
    every value is a measurement (live)."""
    deadband: FloatArray | None = None
    """With ``held``: each row's deadband in tag units (0: none known), what ``detect.history_held`` widens by."""

    def numbers(self) -> RowNumbers:
        if self.rows is None:
            raise RuntimeError("the tick's residual numbers are read before the residual detector observed it")
        return self.rows

    def obs(self, row: int) -> Observation:
        """The row's value against its forecast: the numbers of an alert filed under that tag."""
        r = self.numbers()
        e = r.expected[row]
        return Observation(
            ts=self.ts,
            actual=float(self.values[row]),
            forecast=float(e[r.mid]),
            lower=float(e[0]),
            upper=float(e[-1]),
            z=float(r.z[row]),
            score=float(r.surprise[row]),
            unit=self.layout.units[row],
        )

    def contributors(self, row: int) -> tuple[Contributor, ...]:
        """The row's own tag first, then the rest of its asset ranked by anomaly score (then |z|) at this tick.

        Why the row first whatever its score: an alert filed under a tag is about that tag (a limit crossed, a
        rate, a stuck value), and its residual may be small (a forecaster follows a slow drift to the limit);
        ranked by score alone, a limit alert on the chilled-water temperature led with a pump speed's noise."""
        r = self.numbers()
        lay = self.layout
        rows = lay.asset_rows[lay.assets[row]]
        ranked = _by_score(r, rows, row)
        top = np.concatenate(([row], ranked[ranked != row]))[: lay.max_contributors]
        return tuple(
            Contributor(tag=lay.tags[i], score=s, residual_z=z)
            for i, s, z in zip(top, r.surprise[top].tolist(), r.z[top].tolist(), strict=True)
        )

    def explain_tag(self, row: int, magnitude: float, limit: float = math.nan) -> Explanation:
        """A per-tag alert's numbers: filed under the row's tag, with its observation and its asset's contributors."""
        return Explanation(
            tag=self.layout.tags[row],
            obs=self.obs(row),
            contributors=self.contributors(row),
            magnitude=magnitude,
            limit=limit,
        )

    def ranked(self, rows: Sequence[int]) -> list[int]:
        """Rows by anomaly score, then |z|, highest first (ties: row order)."""
        ranked: list[int] = _by_score(self.numbers(), rows).tolist()
        return ranked


def _by_score(r: RowNumbers, rows: Sequence[int], first: int = -1) -> IntArray:
    """``rows`` by anomaly score, then |z|, highest first (a non-finite number below every finite one); ties:
    ``first``, then row order.  One stable ``np.lexsort`` instead of a Python key per row: an asset's 50 tags
    are ranked for every event of its alerts.

    >>> n = RowNumbers(np.zeros((3, 1)), np.array([1.0, -3.0, np.nan]), np.array([0.5, 0.5, 0.9]), 0,
    ...                np.array([0.5, 0.5, np.nan]))
    >>> _by_score(n, [0, 1, 2]).tolist(), _by_score(n, [0, 1, 2], first=2).tolist()
    ([1, 0, 2], [1, 0, 2])
    """
    idx = np.asarray(rows, dtype=np.intp)
    surprise = r.surprise[idx]
    z = np.abs(r.z[idx])
    by_surprise = -np.where(np.isfinite(surprise), surprise, -1.0)
    by_z = -np.where(np.isfinite(z), z, -1.0)
    ranked: IntArray = idx[np.lexsort((idx, idx != first, by_z, by_surprise))]
    return ranked


@dataclass(frozen=True, slots=True)
class Findings:
    """One detector's verdict on one tick, per subject (arrays in the detector's subject order)."""

    flagged: BoolArray
    """Anomalous at this tick (counts towards opening)."""
    normal: BoolArray
    """Counts towards clearing (flagged and normal both false: the tick does not count)."""
    score: FloatArray
    """The detector's own number per subject, what it flags on (River score, T² over its limit, rate over its
    limit, relation z, seconds flat …; each module says which).  Severity and peak come from :class:`Explanation`."""
    severe: BoolArray
    """Opens an alert at once where flagged, without waiting for k of n (all false unless a detector says so)."""
    count: int = 0
    """Anomalous ticks to add to ``sentinelle_ticks_anomalous_total{kind}`` (rows, not subjects)."""
    rows: RowNumbers | None = None
    """The per-tag numbers every alert shows (the residual detector's)."""
    withheld: BoolArray | None = None
    """Per row: what would have been flagged on an asset in maintenance (counted as suppressed alerts)."""
    tag_score: FloatArray | None = None
    """Per row, from a detector whose score is a calibrated per-tag score on the residual scorer's scale
    (``S/(S+10)`` of a tail probability's decades; the onset's with a refractory period): the stage's per-tag
    score is the maximum of the residual's and these (:mod:`.distribution`)."""
    tag_surprise: FloatArray | None = None
    """Per row: the same before the refractory period (what its flag compares)."""


def findings(
    flagged: BoolArray,
    normal: BoolArray,
    score: FloatArray,
    *,
    count: int | None = None,
    rows: RowNumbers | None = None,
    withheld: BoolArray | None = None,
    severe: BoolArray | None = None,
    tag_score: FloatArray | None = None,
    tag_surprise: FloatArray | None = None,
) -> Findings:
    """Findings with ``severe`` all false and ``count`` the flagged subjects unless given."""
    return Findings(
        flagged=flagged,
        normal=normal,
        score=score,
        severe=np.zeros(len(flagged), dtype=bool) if severe is None else severe,
        count=int(flagged.sum()) if count is None else count,
        rows=rows,
        withheld=withheld,
        tag_score=tag_score,
        tag_surprise=tag_surprise,
    )


@dataclass(frozen=True, slots=True)
class Explanation:
    """What an event of one subject's alert shows."""

    tag: str
    """The tag the alert is filed under (at opening: the detector's choice; later: the alert's)."""
    obs: Observation
    contributors: tuple[Contributor, ...]
    magnitude: float
    limit: float = math.nan
    members: tuple[str, ...] = ()
    reason: DataQualityReason | None = None
    """The data-quality reason of an opening, when the detector's :class:`Spec` leaves it open to the tick."""


@dataclass(frozen=True, slots=True)
class Spec:
    """What the life cycle needs to know about a detector's alerts; fixed for the detector's life."""

    kind: AlertKind
    subjects: Sequence[str]
    """Per subject: the second part of its alert key ``(kind, subject)``."""
    subject_assets: IntArray
    """Per subject: index into the layout's ``asset_names``."""
    open_k: int
    open_n: int
    clear_steps: int
    reason: DataQualityReason | None = None
    updates: bool = True
    """Whether an open alert sends ``updated`` events (escalation, growth, a new member)."""
    paused_by_modes: bool = True
    """Whether a paused mode clears its alerts (maintenance always does)."""

    @classmethod
    def per_tag(cls, kind: AlertKind, ctx: BuildContext, *, updates: bool = True) -> Spec:
        """One subject per tag of the group, opening and clearing by the shared ``open_k`` of ``open_n`` and
        ``clear_normal_steps``: the spec of every per-tag detector (limits, rate, distribution, drift, novelty)."""
        s = ctx.settings
        return cls(
            kind=kind,
            subjects=ctx.layout.tags,
            subject_assets=ctx.layout.asset_index,
            open_k=s.open_k,
            open_n=s.open_n,
            clear_steps=s.clear_normal_steps,
            updates=updates,
        )


@dataclass(frozen=True, slots=True)
class BuildContext:
    """What a detector module's ``build`` gets for one tag group."""

    layout: Layout
    settings: DetectSettings
    levels: tuple[float, ...]
    """The forecast's quantile levels (from the group's first batch)."""
    metrics: Metrics
    refresh_every_steps: int = 1
    """``forecast.refresh_every_steps``: each tag's forecast is refreshed once in this many ticks (a partial
    refresh's ``ForecastBatch.rows``), its multi-step forecast standing for the ticks between."""
    estimate_groups: tuple[tuple[str, ...], ...] = ()
    """``forecast.asset_mask_groups``: tags the asset model estimates without the group's values now (the
    estimate's detectors may treat their rows apart: ``detect.asset_estimate_group_*``)."""


class Detector(Protocol):
    """Observe a tick, learn from it, explain a subject, save and restore what was learned."""

    name: str
    spec: Spec

    def observe(self, tick: Tick) -> Findings: ...

    def learn(self, tick: Tick, findings: Findings) -> None: ...

    def explain(self, tick: Tick, findings: Findings, subject: int, tag: str | None) -> Explanation:
        """The numbers of ``subject``'s event at this tick (after :meth:`learn`); ``tag``: the alert's, or None
        when it opens now (the detector chooses)."""
        ...

    def state(self) -> bytes: ...

    def restore(self, blob: bytes) -> None: ...


def pack(kind: str, version: int, arrays: dict[str, np.ndarray], meta: dict[str, Any] | None = None) -> bytes:
    """Arrays and a JSON header in one ``.npz`` archive (no pickle)."""
    header = {"format": STATE_FORMAT, "detector": kind, "version": version, "meta": meta or {}}
    payload: dict[str, Any] = {"__header__": np.frombuffer(json.dumps(header).encode(), dtype=np.uint8), **arrays}
    buf = io.BytesIO()
    np.savez(buf, allow_pickle=False, **payload)
    return buf.getvalue()


def unpack(blob: bytes, kind: str, version: int) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The arrays and meta :func:`pack` stored; a blob of another detector or version is a clear error."""
    _, arrays, meta = unpack_versions(blob, kind, (version,))
    return arrays, meta


def unpack_versions(
    blob: bytes, kind: str, versions: Collection[int]
) -> tuple[int, dict[str, np.ndarray], dict[str, Any]]:
    """:func:`unpack` for a detector that still reads older versions of its state: also which version it is.

    A blob that is not an archive :func:`pack` wrote is a :class:`ConfigError` too, never another exception.
    """
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files}
        header = json.loads(arrays.pop("__header__").tobytes().decode())
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        raise ConfigError(f"detector state of {kind!r} is not a saved state: {e}") from None
    version = header.get("version")
    if header.get("format") != STATE_FORMAT or header.get("detector") != kind or version not in versions:
        readable = "/".join(f"v{v}" for v in sorted(versions))
        raise ConfigError(
            f"detector state of {header.get('detector')!r} v{version} "
            f"(format {header.get('format')}) cannot restore {kind!r} {readable}"
        )
    return int(version), arrays, dict(header["meta"])


@runtime_checkable
class MovesSubjects(Protocol):
    """A detector whose restored state was of an older version with its subjects elsewhere.

    The stage moves the saved alert life cycle (:meth:`~..alerting.AlertCycle.restore`) with them, so
    alerts open in the saved state stay open and the subjects the new version added start fresh.
    """

    def moved_subjects(self) -> IntArray | None:
        """Per saved subject: its subject now (None: the restored state had them where they are)."""
        ...


class Suffixed(Sequence[str]):
    """``f"{name}{suffix}"`` for each name, made when asked: a subject per tag without a string per tag held.

    >>> s = Suffixed(("a.t", "a.p"), "#stuck")
    >>> len(s), s[1], list(s)
    (2, 'a.p#stuck', ['a.t#stuck', 'a.p#stuck'])
    """

    def __init__(self, names: tuple[str, ...], suffix: str) -> None:
        self.names = names
        self.suffix = suffix

    def __len__(self) -> int:
        return len(self.names)

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...

    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        if isinstance(index, slice):
            return [n + self.suffix for n in self.names[index]]
        return self.names[index] + self.suffix


def check_tags(meta: dict[str, Any], layout: Layout, name: str) -> None:
    """A blob saved for another tag group (other tags, another order) is a clear error, not a silent mix-up."""
    if meta.get("tags") != list(layout.tags):
        raise ConfigError(f"{name}: the saved state is of another tag group")


def nan_to(x: float, default: float) -> float:
    x = float(x)
    return x if math.isfinite(x) else default
