"""The AFDD detector's saved state across versions (detect/detectors/afdd.py): older ones migrated, the unusable
discarded.

Version 1 and 2 states are built by hand (v1: the guideline's 12 per-condition entries; v2: and the 5 APAR
ones, and APAR's learned minimum), as a daemon saved them before the APAR and the OAL conditions existed;
restoring one must keep every number it held, move the alert life cycle with the subjects, and never stop
the stage.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from sentinelle.detect.afdd import CONDITIONS, NAMES
from sentinelle.detect.detectors import BuildContext, build_all
from sentinelle.detect.detectors.afdd import SAVED_CONDITIONS, AfddDetector
from sentinelle.detect.detectors.base import pack, unpack
from sentinelle.detect.stage import DetectStage
from sentinelle.metrics import Metrics
from sentinelle.records import AlertEvent

from .ahu_helpers import AHU_TAGS, FAN, ahu_settings
from .detect_helpers import LEVELS, batch, feed, stage, summary


def _free_cooling(sat_offset: float) -> list[float]:
    mat = 15.0
    return [mat + FAN + sat_offset, mat, 22.0, 10.0, 0.0, 0.0, 0.5, 14.0]


def _stage(**afdd: object) -> DetectStage:
    s = ahu_settings(**{"calibration_s": 0.0, **afdd})
    st, _ = stage(AHU_TAGS, assets=[{"name": "a", "afdd": s.model_dump()}], clear_normal_steps=4)
    return st


def _fresh_detector(st: DetectStage) -> tuple[AfddDetector, Metrics]:
    """A detector as the stage builds it for its tag group, with its own metrics."""
    st.process(batch(AHU_TAGS, 0.0, _free_cooling(0.0), _free_cooling(0.0)))
    g = next(iter(st._groups.values()))
    metrics = Metrics(CollectorRegistry())
    (d,) = [x for x in build_all(BuildContext(g.layout, st.settings, LEVELS, metrics)) if isinstance(x, AfddDetector)]
    return d, metrics


def _old_blob(d: AfddDetector, version: int = 1, **over: Any) -> tuple[bytes, dict[str, Any]]:
    """An older version's state by hand: its offsets and calibrations in its order, the averaging buffer, FC4's
    changes (and from version 2 APAR's learned minimum outdoor-air fraction)."""
    n = len(SAVED_CONDITIONS[version])
    arrays: dict[str, Any] = {
        "offset0": np.linspace(0.1, 0.1 * n, n),
        "buf0": np.arange(d.units[0].buf.size, dtype=float).reshape(d.units[0].buf.shape),
        "changes0": np.array([3.0, 7.0]),
        "scalars0": np.array([2.0, 3.0, 12.0, 0.0, 9.0]),  # filled, state, since, frozen, cal_ticks
    }
    arrays |= {f"cal0_{j}": np.array([j, j + 0.5]) for j in range(n)}
    if version >= 2:
        arrays |= {"apar0": np.array([0.17, 0.0]), "apar_ref0": np.array([0.1, 0.2])}
    arrays |= over
    return pack(d.name, version, arrays, {"tags": list(d.layout.tags), "units": 1}), arrays


def _count(metrics: Metrics, detector: str, outcome: str) -> float:
    labels = {"detector": detector, "outcome": outcome}
    return metrics.registry.get_sample_value("sentinelle_detector_state_upgrades_total", labels) or 0.0


@pytest.mark.parametrize("version", sorted(SAVED_CONDITIONS))
@pytest.mark.parametrize("apar_rules", [False, True])
def test_an_older_state_is_migrated_keeping_every_number(version: int, apar_rules: bool) -> None:
    d, metrics = _fresh_detector(_stage(apar_rules=apar_rules))
    blob, old = _old_blob(d, version)
    d.restore(blob)
    unit = d.units[0]
    saved = SAVED_CONDITIONS[version]
    for j, name in enumerate(saved):
        # A two-sided condition's halves (FC8, APAR7): the j-th saved entry is the same half now.
        i = [k for k, c in enumerate(CONDITIONS) if c.name == name][saved[:j].count(name)]
        assert unit.offset[i] == old["offset0"][j]
        assert unit.cal[i] == old["cal0_" + str(j)].tolist()
    added = [i for i, c in enumerate(CONDITIONS) if c.name not in saved]
    assert len(added) == len(CONDITIONS) - len(saved) > 0
    assert all(unit.offset[i] == 0.0 and unit.cal[i] == [] for i in added)  # as a new detector has them
    if apar_rules and version >= 2:
        assert unit.apar is not None and (unit.apar.q_min, unit.apar.reference) == (0.17, [0.1, 0.2])
    np.testing.assert_array_equal(unit.buf, old["buf0"])
    assert list(unit.changes) == [3.0, 7.0]
    assert (unit.filled, unit.state, unit.since, unit.frozen, unit.cal_ticks) == (2, 3, 12, False, 9)
    assert _count(metrics, "afdd", "migrated") == 1.0 and _count(metrics, "afdd", "discarded") == 0.0
    moved = d.moved_subjects()
    assert moved is not None
    assert [NAMES[i] for i in moved] == list(dict.fromkeys(saved))
    # Saved again it is a version 2 state like any other, restored without migrating.
    again, metrics_again = _fresh_detector(_stage(apar_rules=apar_rules))
    again.restore(d.state())
    np.testing.assert_array_equal(again.units[0].offset, unit.offset)
    assert again.moved_subjects() is None and _count(metrics_again, "afdd", "migrated") == 0.0


@pytest.mark.parametrize(
    "blob",
    [
        pytest.param(lambda d: _old_blob(d, offset0=np.zeros(9))[0], id="v1-with-other-conditions"),
        pytest.param(lambda d: _old_blob(d, 2, offset0=np.zeros(12))[0], id="v2-with-v1-conditions"),
        pytest.param(lambda d: _old_blob(d, buf0=np.zeros((1, 1)))[0], id="v1-with-another-buffer"),
        pytest.param(lambda d: pack(d.name, 99, {}, {"tags": list(d.layout.tags), "units": 1}), id="v99"),
        pytest.param(lambda d: b"not a saved state", id="garbage"),
    ],
)
def test_a_state_that_cannot_be_migrated_starts_this_detector_fresh_with_a_warning(
    blob: Any, caplog: pytest.LogCaptureFixture
) -> None:
    d, metrics = _fresh_detector(_stage(calibration_s=30.0))
    with caplog.at_level(logging.WARNING):
        d.restore(blob(d))
    unit = d.units[0]
    assert not unit.frozen and unit.cal_ticks == 0 and not unit.offset.any() and np.isnan(unit.buf).all()
    assert _count(metrics, "afdd", "discarded") == 1.0 and _count(metrics, "afdd", "migrated") == 0.0
    assert any("afdd: saved state" in r.getMessage() and "starts fresh" in r.getMessage() for r in caplog.records)


def _as_version(arrays: dict[str, np.ndarray], version: int) -> dict[str, np.ndarray]:
    """A stage's saved state with its AFDD detector and its alert life cycle as an older version saved them."""
    out = dict(arrays)
    det, meta = unpack(arrays["g0~det~afdd"].tobytes(), "afdd", 3)
    saved = SAVED_CONDITIONS[version]
    now = [[k for k, c in enumerate(CONDITIONS) if c.name == n][saved[:j].count(n)] for j, n in enumerate(saved)]
    old = {k: v for k, v in det.items() if not k.startswith(("offset", "cal", "apar"))}
    old["offset0"] = det["offset0"][now]
    old |= {f"cal0_{j}": det[f"cal0_{i}"] for j, i in enumerate(now)}
    out["g0~det~afdd"] = np.frombuffer(pack("afdd", version, old, meta), dtype=np.uint8)
    keep = [NAMES.index(n) for n in dict.fromkeys(saved)]
    for part in ("ring", "open", "run"):
        out[f"g0~cycle~afdd~{part}"] = arrays[f"g0~cycle~afdd~{part}"][keep]
    return out


@pytest.mark.parametrize("version", sorted(SAVED_CONDITIONS))
def test_an_ahu_fault_open_in_an_older_state_stays_open_and_clears_after_the_upgrade(version: int) -> None:
    st = _stage()
    nominal = _free_cooling(0.0)
    opened = feed(st, AHU_TAGS, [_free_cooling(0.0)] * 5 + [_free_cooling(3.5)] * 6, nominal)
    assert summary([e for e in opened if e.kind == "ahu_fault"]) == [("opened", "ahu_fault", "a.sat", 9.0)]
    arrays, meta = st.state()

    def after_restart(saved: dict[str, np.ndarray]) -> tuple[list[AlertEvent], DetectStage]:
        new = _stage()
        new.restore(saved, meta)
        events = feed(new, AHU_TAGS, [_free_cooling(3.5)] * 2 + [_free_cooling(0.0)] * 6, nominal, start=11.0)
        return [e for e in events if e.kind == "ahu_fault"], new

    want, _ = after_restart(arrays)
    got, upgraded = after_restart(_as_version(arrays, version))
    assert summary(got) == summary(want) == [("cleared", "ahu_fault", "a.sat", 16.0)]
    assert (
        upgraded.metrics.registry.get_sample_value(
            "sentinelle_detector_state_upgrades_total", {"detector": "afdd", "outcome": "migrated"}
        )
        == 1.0
    )
    assert (
        upgraded.metrics.registry.get_sample_value("sentinelle_scaleout_restore_failures_total", {"part": "detector"})
        == 0.0
    ), "the tag group's other detectors kept their states"
