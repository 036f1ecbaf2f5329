"""The LBNL report's views of one replay (evaluation/lbnl.py VIEWS) and the rules-with-the-rest day counts."""

from __future__ import annotations

import pytest

from sentinelle.evaluation.lbnl import VIEWS, DayResult, with_the_rest
from sentinelle.records import AlertEvent

from .event_helpers import alert_event


def _ev(kind: str, subject: str) -> AlertEvent:
    return alert_event(kind=kind, asset="a", tag="a.sat", subject=subject)


def test_views_split_one_replays_alerts_by_what_raised_them() -> None:
    events = [
        _ev("ahu_fault", "a#FC8"),
        _ev("ahu_fault", "a#APAR2C"),
        _ev("ahu_fault", "a#OAL"),
        _ev("forecast_residual", "a.sat"),
        _ev("asset_state", "a"),
    ]
    kept = {name: [e.subject for e in events if keep(e)] for name, keep in VIEWS.items()}
    assert kept["guideline36"] == ["a#FC8"]
    assert kept["guideline36_leak"] == ["a#FC8", "a#OAL"]
    assert kept["ahu_fault"] == ["a#FC8", "a#APAR2C", "a#OAL"]
    assert kept["residual"] == ["a.sat"]
    assert kept["asset"] == ["a"]
    assert kept["statistical"] == ["a.sat", "a"]
    assert len(kept["all"]) == 5


def test_with_the_rest_flags_a_day_either_replay_flagged() -> None:
    def day(date: str, faulted: bool, alerts: int) -> DayResult:
        return DayResult("f", date, faulted, "x" if faulted else None, alerts, 0 if alerts else -1)

    rules = [day("d1", True, 1), day("d2", True, 0), day("d3", False, 0), day("d4", False, 0)]
    rest = [day("d1", True, 0), day("d2", True, 2), day("d3", False, 1), day("d4", False, 0)]
    sc = with_the_rest(rules, rest)
    assert (sc.tp, sc.fn, sc.fp, sc.tn) == (2, 0, 1, 1)
    with pytest.raises(ValueError, match="different days"):
        with_the_rest(rules, rest[::-1])
