"""The estimate from the other tags, where people see it (issue 14): the per-tag snapshot, the
``sentinelle_tag_estimate`` gauges and the console's "from others" column.

The asset model's estimate (:attr:`~sentinelle.records.ForecastBatch.estimate`) travels from the detect
stage's snapshot (:class:`~sentinelle.metrics.TagSnapshot`) to Prometheus and to the live view; a tag
without one (no asset model, or no other tag of its asset with a value now) shows no series and "-".
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
from prometheus_client import CollectorRegistry, generate_latest

from sentinelle.metrics import Metrics, TagSnapshot
from sentinelle.settings import TagSettings
from sentinelle.sinks.console import ConsoleSink

from .detect_helpers import SIGMA, batch, stage
from .event_helpers import alert_event

TAGS = tuple(TagSettings(name=f"c.t{i}", asset="c", node_id=f"n{i}") for i in range(3))
_Z = np.array([-1.2816, 0.0, 1.2816])


def _estimate_samples(m: Metrics) -> dict[tuple[str, str], float]:
    """(tag, level) → value of every ``sentinelle_tag_estimate`` sample."""
    out = {}
    for family in m.registry.collect():
        if family.name == "sentinelle_tag_estimate":
            for s in family.samples:
                out[(s.labels["tag"], s.labels["level"])] = s.value
    return out


def _snapshot(estimate: np.ndarray | None) -> TagSnapshot:
    return TagSnapshot(
        tags=("c.t0", "c.t1"),
        assets=("c", "c"),
        actual=np.array([5.4, 2.0]),
        forecast=np.array([[5.0, 5.2, 5.4], [1.0, 2.0, 3.0]]),
        levels=(0.1, 0.5, 0.9),
        score=np.array([0.5, 0.1]),
        estimate=estimate,
    )


# -- the snapshot, from the detect stage --------------------------------------------------------


def test_the_stage_publishes_the_batchs_estimate_in_the_snapshot() -> None:
    st, m = stage(TAGS)
    fb = batch(TAGS, 0.0, [10.0, 20.0, 30.0], [10.0, 20.0, 30.0])
    estimate = np.array([9.0, 19.0, 29.0])[:, None] + _Z[None, :] * SIGMA
    estimate[2] = np.nan  # the third tag's asset had no other value now
    st.process(dataclasses.replace(fb, estimate=estimate))
    (snap,) = m.tag_state.snapshots()
    assert snap.estimate is not None
    np.testing.assert_array_equal(snap.estimate, estimate)
    got = _estimate_samples(m)
    assert got[("c.t0", "0.5")] == 9.0 and got[("c.t1", "0.1")] == 19.0 - 1.2816 * SIGMA
    assert {tag for tag, _ in got} == {"c.t0", "c.t1"}  # NaN row: no series, not a NaN sample
    assert len(got) == 6


def test_without_an_asset_model_there_is_no_estimate_series() -> None:
    st, m = stage(TAGS)
    for ts in (0.0, 1.0):  # the second tick has a forecast made one step earlier
        st.process(batch(TAGS, ts, [10.0, 20.0, 30.0], [10.0, 20.0, 30.0]))
    (snap,) = m.tag_state.snapshots()
    assert snap.estimate is None
    assert _estimate_samples(m) == {}
    # The family is still declared (one HELP/TYPE), so a scrape says what the metric would be.
    text = generate_latest(m.registry).decode()
    assert "# TYPE sentinelle_tag_estimate gauge" in text
    assert "\nsentinelle_tag_estimate{" not in text
    assert m.registry.get_sample_value("sentinelle_tag_forecast", {"asset": "c", "tag": "c.t0", "level": "0.5"}) == 10.0


def test_the_estimate_gauge_has_the_forecasts_labels() -> None:
    m = Metrics(CollectorRegistry())
    m.tag_state.publish(1.0, _snapshot(np.array([[4.8, 5.0, 5.2], [np.nan] * 3])))
    text = generate_latest(m.registry).decode()
    estimate = re.findall(r"^sentinelle_tag_estimate\{(.*)\} (\S+)$", text, re.M)
    forecast = re.findall(r"^sentinelle_tag_forecast\{(.*)\} (\S+)$", text, re.M)
    assert [labels for labels, _ in estimate] == [f'asset="c",level="{lv}",tag="c.t0"' for lv in ("0.1", "0.5", "0.9")]
    assert {labels for labels, _ in estimate} <= {labels for labels, _ in forecast}
    assert [float(v) for _, v in estimate] == [4.8, 5.0, 5.2]


# -- the console's live view ---------------------------------------------------------------------


def _rows(sink: ConsoleSink) -> dict[str, list[str]]:
    lines = sink.render(color=False).splitlines()
    header = lines[1].split()
    assert header[:5] == ["tag", "actual", "forecast", "80%", "band"]
    assert "from others" in lines[1] and lines[1].index("forecast") < lines[1].index("from others")
    return {line.split()[0]: line.split() for line in lines[2:] if line.startswith("c.t")}


def test_the_live_view_shows_the_estimate_and_the_deviation_in_band_units() -> None:
    m = Metrics(CollectorRegistry())
    m.tag_state.publish(1.0, _snapshot(np.array([[4.8, 5.0, 5.2], [np.nan] * 3])))
    rows = _rows(ConsoleSink(m, live=True))
    # c.t0: actual 5.4, forecast 5.2 in [5, 5.4], from others 5 with its upper half band 0.2 → +2.0
    assert rows["c.t0"][1:3] == ["5.4", "5.2"] and rows["c.t0"][5:7] == ["5", "+2.0"]
    assert rows["c.t1"][5:7] == ["-", "-"]  # no estimate for this tag


def test_the_live_view_shows_dashes_without_an_asset_model() -> None:
    m = Metrics(CollectorRegistry())
    m.tag_state.publish(1.0, _snapshot(None))
    rows = _rows(ConsoleSink(m, live=True))
    assert rows["c.t0"][5:7] == ["-", "-"] and rows["c.t1"][5:7] == ["-", "-"]
    assert rows["c.t0"][1:3] == ["5.4", "5.2"]  # the rest of the row as before


def test_a_row_with_everything_and_an_alert_fits_in_120_columns() -> None:
    m = Metrics(CollectorRegistry())
    tag = "chiller1.very_long_tag_name_xxxxx"[:32]
    big = -123456.789
    m.tag_state.publish(
        1.0,
        TagSnapshot(
            tags=(tag,),
            assets=("chiller1",),
            actual=np.array([big]),
            forecast=np.array([[big, big, big]]),
            levels=(0.1, 0.5, 0.9),
            score=np.array([0.123456]),
            estimate=np.array([[big - 1e6, big, big + 1e-3]]),
        ),
    )
    sink = ConsoleSink(m, live=True)
    sink.open["a"] = alert_event(asset="chiller1", tag=tag, severity="critical")
    lines = sink.render(color=False).splitlines()
    row = next(line for line in lines if line.startswith(tag))
    assert row.endswith("ALERT")
    assert max(len(line) for line in lines[1:3]) <= 120
