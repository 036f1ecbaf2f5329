"""Effective time constants per tag: the seconds an operator set, or a number of the tag's periods.

A detection constant written in seconds only fits one sampling rate: 60 s without a
value is a long outage for a 1 s tag and an ordinary wait for an hourly one.  So
every time constant of windows and data quality defaults to ``None``, meaning
"``N`` periods of the tag" with ``N`` its own ``*_periods`` setting, and an explicit
seconds value still wins.  Two constants describe the process rather than the
sampling (a mode change's transient, a relation's slow wear); they stay in seconds
and get a floor in periods instead.  The constants counted in ticks
(``grace_period_steps``, ``open_k``/``open_n``, ``clear_normal_steps``, the spike and
recovery steps) are periods of the tag already.

This module resolves them once, here, so windows, data quality, modes, relations
and ``check-config`` agree.

>>> from sentinelle.settings import DetectSettings, TagSettings, WindowSettings
>>> hourly = TagSettings(name="t", asset="a", node_id="n", period_s=3600.0, stuck_check=True)
>>> t = tag_timing(hourly, WindowSettings(), DetectSettings())
>>> t.max_hold_s / 3600, t.missing_after_s / 3600, t.stuck_after_s / 3600
(30.0, 60.0, 120.0)
>>> tag_timing(hourly, WindowSettings(max_hold_s=7200.0), DetectSettings()).max_hold_s
7200.0
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from .settings import AssetDetectSettings, DetectSettings, RelationSettings, Settings, TagSettings, WindowSettings


@dataclass(frozen=True, slots=True)
class WindowTiming:
    """The window constants of one tag group (seconds)."""

    allowed_lateness_s: float
    max_hold_s: float
    idle_close_s: float


@dataclass(frozen=True, slots=True)
class TagTiming:
    """Every effective time constant of one tag (seconds); ``stuck_after_s`` is inf when not checked."""

    period_s: float
    allowed_lateness_s: float
    max_hold_s: float
    idle_close_s: float
    missing_after_s: float
    stuck_after_s: float


def _or_periods(seconds: float | None, periods: float, period_s: float) -> float:
    return seconds if seconds is not None else periods * period_s


def window_timing(period_s: float, windows: WindowSettings) -> WindowTiming:
    """Lateness, hold and idle close for a group of tags sampled every ``period_s``.

    >>> window_timing(1.0, WindowSettings())
    WindowTiming(allowed_lateness_s=1.0, max_hold_s=30.0, idle_close_s=2.0)
    """
    return WindowTiming(
        allowed_lateness_s=_or_periods(windows.allowed_lateness_s, windows.allowed_lateness_periods, period_s),
        max_hold_s=_or_periods(windows.max_hold_s, windows.max_hold_periods, period_s),
        idle_close_s=_or_periods(windows.idle_close_s, windows.idle_close_periods, period_s),
    )


def missing_after_s(tag: TagSettings, detect: DetectSettings) -> float:
    """How long ``tag`` may lack a usable value before it is reported missing."""
    return _or_periods(detect.missing_after_s, detect.missing_after_periods, tag.period_s)


def stuck_after_s(tag: TagSettings, detect: DetectSettings) -> float:
    """How long ``tag`` may stay flat before it is stuck; inf when it is not checked."""
    if tag.stuck_after_s is not None:
        return tag.stuck_after_s
    if tag.stuck_check:
        return detect.stuck_after_periods * tag.period_s
    return math.inf


def tag_timing(tag: TagSettings, windows: WindowSettings, detect: DetectSettings) -> TagTiming:
    """Every effective time constant of ``tag``."""
    w = window_timing(tag.period_s, windows)
    return TagTiming(
        period_s=tag.period_s,
        allowed_lateness_s=w.allowed_lateness_s,
        max_hold_s=w.max_hold_s,
        idle_close_s=w.idle_close_s,
        missing_after_s=missing_after_s(tag, detect),
        stuck_after_s=stuck_after_s(tag, detect),
    )


def mode_holdoff_s(asset: AssetDetectSettings, period_s: float) -> float:
    """The asset's hold-off after a mode change: its seconds, at least ``mode_holdoff_min_periods`` periods.

    ``period_s`` is the asset's slowest tag period (the hold-off must cover whole ticks of every group).

    >>> a = AssetDetectSettings(name="a")
    >>> mode_holdoff_s(a, 1.0), mode_holdoff_s(a, 3600.0)
    (300.0, 18000.0)
    """
    return max(asset.mode_holdoff_s, asset.mode_holdoff_min_periods * period_s)


def relation_memory_s(relation: RelationSettings, period_s: float) -> float:
    """A relation's forgetting time constant: its seconds, at least ``memory_min_periods`` periods.

    >>> r = RelationSettings(target="y", inputs=("x",))
    >>> relation_memory_s(r, 1.0), relation_memory_s(r, 3600.0) / 3600
    (604800.0, 3000.0)
    """
    return max(relation.memory_s, relation.memory_min_periods * period_s)


def slowest_periods(tags: Iterable[TagSettings]) -> dict[str, float]:
    """Each asset's slowest tag period.

    >>> slowest_periods([TagSettings(name="x", asset="a", node_id="1", period_s=60.0),
    ...                  TagSettings(name="y", asset="a", node_id="2", period_s=1.0)])
    {'a': 60.0}
    """
    out: dict[str, float] = {}
    for t in tags:
        out[t.asset] = max(out.get(t.asset, 0.0), t.period_s)
    return out


def backfill_lookback_s(settings: Settings) -> float:
    """How far back the backfill reads: the setting, or enough to fill windows and pass the grace period.

    >>> from sentinelle.settings import Settings
    >>> backfill_lookback_s(Settings(tags=(TagSettings(name="t", asset="a", node_id="n", period_s=60.0),)))
    32520.0
    """
    configured = settings.history.backfill_lookback_s
    if configured is not None:
        return configured
    slowest = max((t.period_s for t in settings.tags), default=1.0)
    return (settings.windows.context_steps + settings.detect.grace_period_steps) * slowest


def period_warnings(settings: Settings) -> list[str]:
    """What ``check-config`` warns about: effective constants that make no sense against a tag's period.

    Each warning names the setting, its effective value, the period and the tags (the
    first three, and how many in all), and says what goes wrong.

    >>> from sentinelle.settings import Settings
    >>> tag = TagSettings(name="t", asset="a", node_id="n", period_s=60.0)
    >>> for w in period_warnings(Settings(tags=(tag,), windows=WindowSettings(max_hold_s=30.0))):
    ...     print(w)
    windows.max_hold_s = 30 s is not longer than the period (60 s) of t: a sample a little late makes a gap
    """
    found: dict[tuple[str, float, float, str], list[str]] = {}

    def check(bad: bool, field: str, value: float, t: TagSettings, why: str) -> None:
        if bad:
            found.setdefault((field, value, t.period_s, why), []).append(t.name)

    for t in settings.tags:
        e = tag_timing(t, settings.windows, settings.detect)
        p = t.period_s
        check(
            e.max_hold_s <= p,
            "windows.max_hold_s",
            e.max_hold_s,
            t,
            "is not longer than the period ({p}) of {tags}: a sample a little late makes a gap",
        )
        check(
            e.allowed_lateness_s < p,
            "windows.allowed_lateness_s",
            e.allowed_lateness_s,
            t,
            "is shorter than the period ({p}) of {tags}: a sample of a slot that arrives after another tag's "
            "sample of the next slot is dropped as late",
        )
        check(
            e.missing_after_s <= p,
            "detect.missing_after_s",
            e.missing_after_s,
            t,
            "is not longer than the period ({p}) of {tags}: the first gap slot reports the tag missing",
        )
        check(
            e.stuck_after_s <= 2 * p,
            "tags.stuck_after_s",
            e.stuck_after_s,
            t,
            "is not longer than two periods ({p}) of {tags}: one repeated value is stuck",
        )
        check(
            t.rate_window_s is not None and t.rate_window_s < p / 2,
            "tags.rate_window_s",
            t.rate_window_s or 0.0,
            t,
            "is under half the period ({p}) of {tags}: the rate is measured over one period instead",
        )
    out = []
    for (field, value, period, why), names in found.items():
        tags = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        out.append(f"{field} = {value:g} s " + why.format(p=f"{period:g} s", tags=tags))
    return out
