"""The maintenance calendar: which asset is in maintenance at which data time."""

from __future__ import annotations

from sentinelle.detect.maintenance import MaintenanceCalendar, MaintenanceWindow


def _w(asset: str, start: float, end: float, wid: str = "w", origin: str = "command") -> MaintenanceWindow:
    return MaintenanceWindow(asset, start, end, origin, wid)  # type: ignore[arg-type]


def test_windows_are_half_open_and_per_asset() -> None:
    cal = MaintenanceCalendar([_w("a", 10, 20), _w("b", 15, 30)])
    assert [cal.in_maintenance("a", t) for t in (9.99, 10, 19.99, 20)] == [False, True, True, False]
    assert cal.assets_at(16) == {"a", "b"}
    assert cal.assets_at(25) == {"b"}
    assert cal.assets_at(5) == frozenset()


def test_overlapping_windows_add_up_and_active_is_the_longest() -> None:
    cal = MaintenanceCalendar([_w("a", 10, 20, "w1"), _w("a", 15, 40, "w2"), _w("a", 50, 60, "w3")])
    assert cal.in_maintenance("a", 30)
    active = cal.active("a", 17)
    assert active is not None and active.window_id == "w2"
    assert not cal.in_maintenance("a", 45)
    assert cal.in_maintenance("a", 55)


def test_end_cuts_covering_windows_and_keeps_later_ones() -> None:
    cal = MaintenanceCalendar([_w("a", 10, 20, "w1"), _w("a", 12, 40, "w2"), _w("a", 50, 60, "w3"), _w("b", 0, 99)])
    assert cal.end("a", 15) == 2
    assert not cal.in_maintenance("a", 15)
    assert cal.in_maintenance("a", 14.5)
    assert cal.in_maintenance("a", 55)  # planned later: untouched
    assert cal.in_maintenance("b", 15)
    assert cal.end("a", 45) == 0


def test_end_at_the_start_removes_the_window() -> None:
    cal = MaintenanceCalendar([_w("a", 10, 20)])
    assert cal.end("a", 10) == 1
    assert len(cal) == 0


def test_empty_windows_are_ignored_and_prune_forgets_old_ones() -> None:
    cal = MaintenanceCalendar([_w("a", 10, 10), _w("a", 20, 15)])
    assert len(cal) == 0
    cal.add(_w("a", 0, 10))
    cal.add(_w("a", 100, 200))
    assert cal.prune(50) == 1
    assert [w.start_ts for w in cal.windows()] == [100]


def test_row_mask_follows_the_assets_and_the_cache_sees_changes() -> None:
    cal = MaintenanceCalendar()
    rows = {"a": [0, 2], "b": [1, 3]}
    assert cal.row_mask(rows, 4, 5).tolist() == [False] * 4
    cal.add(_w("b", 0, 10))  # the same ts asked again must see the new window
    assert cal.row_mask(rows, 4, 5).tolist() == [False, True, False, True]
    cal.end("b", 5)
    assert cal.row_mask(rows, 4, 5).tolist() == [False] * 4
