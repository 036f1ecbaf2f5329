"""detect/detectors/asset_estimate.py: ``detect.asset_estimate_group_flag_side`` lets the rows of
``forecast.asset_mask_groups`` flag on one side of their estimate only (the pump speeds: above, where a weakening
pump puts them); the other rows, and the group's rows on that side, as before."""

from __future__ import annotations

import numpy as np
import pytest

from sentinelle.settings import DetectSettings

from .test_asset_estimate_group_learn import first, run

KW: dict[str, object] = {"asset_estimate_learn_delay_steps": 200, "asset_estimate_min_learned_steps": 200}
"""A drift of 0.001 per tick from tick 300 is caught under these (test_asset_estimate_group_learn)."""


def test_above_only_ignores_a_group_row_leaving_downwards() -> None:
    both, _ = run(drift_row=2, rate=-0.001, **KW)  # type: ignore[arg-type]
    assert {e.tag for e in both} == {"c.t2"}  # side 0: caught below
    above, det = run(drift_row=2, rate=-0.001, asset_estimate_group_flag_side=1, **KW)  # type: ignore[arg-type]
    assert above == [] and det.side.tolist() == [0.0, 0.0, 1.0, 1.0]


def test_above_only_keeps_a_group_row_leaving_upwards_as_before() -> None:
    plain, det0 = run(drift_row=2, **KW)  # type: ignore[arg-type]
    above, det1 = run(drift_row=2, asset_estimate_group_flag_side=1, **KW)  # type: ignore[arg-type]
    assert plain and above == plain and first(above, "c.t2") < 1200
    for name in ("location", "square", "learned"):  # learning untouched
        assert np.array_equal(getattr(det0.scale, name), getattr(det1.scale, name)), name


def test_rows_outside_the_group_flag_on_either_side() -> None:
    for rate in (0.001, -0.001):
        plain, _ = run(drift_row=0, rate=rate, **KW)  # type: ignore[arg-type]
        above, _ = run(drift_row=0, rate=rate, asset_estimate_group_flag_side=1, **KW)  # type: ignore[arg-type]
        assert {e.tag for e in plain} == {"c.t0"} and above == plain


def test_below_only_is_the_mirror() -> None:
    up, _ = run(drift_row=3, asset_estimate_group_flag_side=-1, **KW)  # type: ignore[arg-type]
    down, _ = run(drift_row=3, rate=-0.001, asset_estimate_group_flag_side=-1, **KW)  # type: ignore[arg-type]
    assert up == [] and {e.tag for e in down} == {"c.t3"}


def test_no_group_no_side() -> None:
    plain, _ = run((), drift_row=2, rate=-0.001, **KW)  # type: ignore[arg-type]
    above, _ = run((), drift_row=2, rate=-0.001, asset_estimate_group_flag_side=1, **KW)  # type: ignore[arg-type]
    assert plain and above == plain


def test_the_setting_defaults_to_either_side() -> None:
    assert DetectSettings().asset_estimate_group_flag_side == 0
    with pytest.raises(ValueError):
        DetectSettings(asset_estimate_group_flag_side=2)
