"""Period-relative time constants (issues 13.4, 17.4): the shipped settings on hourly and 1 s data.

Hourly samples go through the real Windows and DetectStage with the defaults (the code's and
config/sentinelle.toml's): a jittered cadence is neither a gap nor missing data, a long gap is
one missing-data alert.  The forecast is a fixed band around the nominal value, so only the
data-quality path is under test.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from sentinelle.cli import main
from sentinelle.config_summary import summary_lines
from sentinelle.detect.modes import AssetModes
from sentinelle.detect.stage import DetectStage
from sentinelle.errors import ConfigError
from sentinelle.metrics import Metrics
from sentinelle.records import AlertEvent, ForecastBatch, Sample
from sentinelle.settings import (
    AssetDetectSettings,
    DetectSettings,
    ModeRuleSettings,
    RelationSettings,
    Settings,
    TagSettings,
    WindowSettings,
    load_settings,
)
from sentinelle.timing import mode_holdoff_s, period_warnings, relation_memory_s, tag_timing
from sentinelle.windows import Windows

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config" / "sentinelle.toml"
HOUR = 3600.0
T0 = 1_700_000_000.0 - 1_700_000_000.0 % HOUR
NOMINAL = (10.0, 50.0)
LEVELS = (0.1, 0.5, 0.9)
_Z = np.array([-1.2816, 0.0, 1.2816])


def _tags(period_s: float) -> list[TagSettings]:
    return [
        TagSettings(name="p.t", asset="p", node_id="n1", period_s=period_s, stuck_check=True, stuck_tolerance=1e-6),
        TagSettings(name="p.f", asset="p", node_id="n2", period_s=period_s, stuck_check=True, stuck_tolerance=1e-6),
    ]


def _shipped() -> list[tuple[WindowSettings, DetectSettings]]:
    """The code's defaults, and config/sentinelle.toml's [windows] and [detect] (its chiller's asset rules left out)."""
    s = load_settings(EXAMPLE)
    return [(WindowSettings(), DetectSettings()), (s.windows, s.detect.model_copy(update={"assets": ()}))]


def _run(
    sample_ts: Sequence[float], windows: WindowSettings, detect: DetectSettings, period_s: float = HOUR
) -> tuple[list[AlertEvent], int, int]:
    """(events, gap slots after the first value, slots closed) of noisy samples of two tags at ``sample_ts``."""
    tags = _tags(period_s)
    m = Metrics(CollectorRegistry())
    w = Windows(tags, windows, m)
    stage = DetectStage(tags, detect, m)
    rng = np.random.default_rng(3)
    events: list[AlertEvent] = []
    closed = 0
    gaps = 0
    for ts in sample_ts:
        samples = [Sample(t.name, ts, v + rng.normal(0.0, 0.02)) for t, v in zip(tags, NOMINAL, strict=True)]
        for wb in w.ingest(samples):
            closed += 1
            if closed > 1:  # the slot before the first sample has no value yet
                gaps += int(np.isnan(wb.values).sum())
            q = np.array(NOMINAL)[:, None, None] + _Z[None, :, None] * 0.1 + np.zeros((1, 1, 4))
            events += stage.process(ForecastBatch(window=wb, levels=LEVELS, quantiles=q, forecaster="test"))
    return events, gaps, closed


def _jittered_hours(n: int, seed: int = 1, jitter_s: float = 900.0) -> list[float]:
    """``n`` hourly timestamps, each up to ±``jitter_s`` off the hour (a quarter period by default)."""
    rng = np.random.default_rng(seed)
    return [T0 + k * HOUR + float(rng.uniform(-jitter_s, jitter_s)) for k in range(n)]


def _data_quality(events: Sequence[AlertEvent], event: str = "opened") -> list[str | None]:
    return [e.reason for e in events if e.kind == "data_quality" and e.event == event]


@pytest.mark.parametrize(("windows", "detect"), _shipped())
def test_jittered_hourly_cadence_is_neither_gap_nor_missing(windows: WindowSettings, detect: DetectSettings) -> None:
    ts = _jittered_hours(300)
    del ts[100:104]  # four samples skipped: held, not missing
    events, gaps, closed = _run(ts, windows, detect)
    assert closed > 250
    assert gaps == 0
    assert _data_quality(events) == []


@pytest.mark.parametrize(("windows", "detect"), _shipped())
def test_a_gap_of_many_hourly_periods_is_one_missing_alert(windows: WindowSettings, detect: DetectSettings) -> None:
    ts = _jittered_hours(400)
    del ts[150:300]  # 150 hours without data (hold 30 periods + missing after 60 periods = 90 h)
    events, gaps, _ = _run(ts, windows, detect)
    assert gaps > 0
    assert _data_quality(events) == ["missing"]
    opened = next(e for e in events if e.reason == "missing")
    # Opened 90 periods after the last sample: 30 held, then 60 without a usable value.
    assert 89 * HOUR <= opened.event_ts - ts[149] <= 91 * HOUR
    assert "no usable value for 60 h or more from p.f, p.t" in opened.message
    assert _data_quality(events, "cleared") == ["missing"]


def test_a_gap_shorter_than_missing_after_is_no_alert() -> None:
    ts = _jittered_hours(300)
    del ts[150:230]  # 80 h: a gap after the 30 h hold, but under hold + 60 h
    events, gaps, _ = _run(ts, WindowSettings(), DetectSettings())
    assert gaps > 0
    assert _data_quality(events) == []


def test_explicit_seconds_still_win_on_hourly_data() -> None:
    """An operator may want "missing after 60 s" on a tag: then every gap slot of hourly data is missing."""
    ts = _jittered_hours(120)
    del ts[80:84]
    events, gaps, _ = _run(ts, WindowSettings(max_hold_s=HOUR / 2), DetectSettings(missing_after_s=60.0))
    assert gaps > 0
    assert _data_quality(events) == ["missing"]


def test_one_second_data_keeps_the_old_effective_values() -> None:
    """The chiller's 1 s reports stay valid: every default resolves to the seconds it had before."""
    t = tag_timing(_tags(1.0)[0], WindowSettings(), DetectSettings())
    assert (t.allowed_lateness_s, t.max_hold_s, t.idle_close_s, t.missing_after_s, t.stuck_after_s) == (
        1.0,
        30.0,
        2.0,
        60.0,
        120.0,
    )
    assert mode_holdoff_s(AssetDetectSettings(name="p"), 1.0) == 300.0
    assert relation_memory_s(RelationSettings(target="a", inputs=("b",)), 1.0) == 604_800.0
    example = load_settings(EXAMPLE)
    for tag in example.tags:
        e = tag_timing(tag, example.windows, example.detect)
        assert (e.max_hold_s, e.missing_after_s) == (30.0, 60.0)
        assert e.stuck_after_s in (120.0, float("inf"))
    assert sum(tag_timing(t, example.windows, example.detect).stuck_after_s == 120.0 for t in example.tags) == 4


def test_one_second_jitter_under_a_period_is_not_a_gap_and_a_minute_away_is_missing() -> None:
    rng = np.random.default_rng(5)
    ts = [1_000.0 + k + float(rng.uniform(-0.3, 0.3)) for k in range(400)]
    del ts[200:300]  # 100 s away
    events, gaps, _ = _run(ts, WindowSettings(), DetectSettings(), period_s=1.0)
    assert gaps > 0
    assert _data_quality(events) == ["missing"]


def test_a_tag_without_stuck_check_is_not_checked() -> None:
    plain = TagSettings(name="x", asset="a", node_id="n")
    assert tag_timing(plain, WindowSettings(), DetectSettings()).stuck_after_s == float("inf")
    explicit = TagSettings(name="x", asset="a", node_id="n", stuck_after_s=7.0)
    assert tag_timing(explicit, WindowSettings(), DetectSettings()).stuck_after_s == 7.0


def test_hourly_mode_holdoff_covers_ticks_not_seconds() -> None:
    stopped = ModeRuleSettings(mode="stopped", tag="p.t", below=5.0)
    modes = AssetModes([AssetDetectSettings(name="p", modes=(stopped,))], Metrics(CollectorRegistry()), {"p": HOUR})
    modes.update(T0, {"p.t": 10.0})
    modes.update(T0 + HOUR, {"p.t": 1.0})
    modes.update(T0 + 2 * HOUR, {"p.t": 10.0})
    assert modes.gate("p", T0 + 3 * HOUR) == "mode_holdoff"  # 300 s alone would be long over
    assert modes.gate("p", T0 + 7 * HOUR) is None


def test_groups_close_on_their_own_lateness() -> None:
    """A 1 s group is not held back by an hourly group's lateness of one hour."""
    tags = [
        TagSettings(name="fast", asset="a", node_id="n1", period_s=1.0),
        TagSettings(name="slow", asset="a", node_id="n2", period_s=HOUR),
    ]
    w = Windows(tags, WindowSettings(), Metrics(CollectorRegistry()))
    closed = []
    for k in range(10):
        closed += w.ingest([Sample("fast", T0 + k, 1.0)])
    assert [b.ts for b in closed if b.period_s == 1.0] == [T0 + k for k in range(-1, 8)]
    assert [b.ts for b in closed if b.period_s == HOUR] == [T0 - HOUR]  # the slot before the data only


# -- settings ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("section", "values"),
    [
        ("windows", {"max_hold_periods": 1.0}),
        ("windows", {"allowed_lateness_periods": -1.0}),
        ("windows", {"idle_close_periods": 0.0}),
        ("detect", {"missing_after_periods": 0.0}),
        ("detect", {"stuck_after_periods": 1.0}),
        ("windows", {"max_hold_s": 0.0}),
    ],
)
def test_period_fields_are_validated(section: str, values: dict[str, float]) -> None:
    with pytest.raises(ConfigError) as e:
        load_settings(None, **{section: values})
    assert f"{section}.{next(iter(values))}" in str(e.value)


def test_stuck_check_false_with_stuck_after_s_is_refused() -> None:
    with pytest.raises(ConfigError, match="stuck_check"):
        load_settings(
            None, tags=[{"name": "a", "asset": "x", "node_id": "n", "stuck_check": False, "stuck_after_s": 5}]
        )


def test_environment_overrides_periods_and_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTINELLE_WINDOWS__MAX_HOLD_PERIODS", "5")
    monkeypatch.setenv("SENTINELLE_DETECT__MISSING_AFTER_S", "90")
    s = load_settings(EXAMPLE)
    assert s.windows.max_hold_periods == 5.0
    e = tag_timing(s.tags[0], s.windows, s.detect)
    assert (e.max_hold_s, e.missing_after_s) == (5.0, 90.0)


# -- check-config --------------------------------------------------------------------------


def _hourly_settings(**windows: float) -> Settings:
    return Settings(tags=tuple(_tags(HOUR)), windows=WindowSettings.model_validate(windows))


def test_no_period_warnings_for_the_defaults_or_the_example() -> None:
    assert period_warnings(_hourly_settings()) == []
    assert period_warnings(load_settings(EXAMPLE)) == []


def test_warnings_for_seconds_shorter_than_the_period() -> None:
    s = Settings(
        tags=tuple(_tags(HOUR)),
        windows=WindowSettings(max_hold_s=30.0, allowed_lateness_s=1.0),
        detect=DetectSettings(missing_after_s=60.0),
    )
    warned = period_warnings(s)
    assert [w.split(" = ")[0] for w in warned] == [
        "windows.max_hold_s",
        "windows.allowed_lateness_s",
        "detect.missing_after_s",
    ]
    assert all("p.t, p.f" in w and "3600 s" in w for w in warned)


def test_warning_for_a_stuck_time_of_one_period_and_a_rate_window_under_it() -> None:
    tag = TagSettings(name="x", asset="a", node_id="n", period_s=60.0, stuck_after_s=60.0, rate_window_s=10.0)
    assert [w.split(" = ")[0] for w in period_warnings(Settings(tags=(tag,)))] == [
        "tags.stuck_after_s",
        "tags.rate_window_s",
    ]


def test_check_config_prints_warnings_and_the_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    export = tmp_path / "export.csv"
    export.write_text("date;p.t\n")
    adapters = tmp_path / "adapters"
    (adapters / "p").mkdir(parents=True)
    (adapters / "p" / "manifest.json").write_text('{"tags": ["p.t", "q.z"]}')
    cfg = tmp_path / "hourly.toml"
    cfg.write_text(
        "[[tags]]\nname='p.t'\nasset='p'\nnode_id='ns=2;s=p.t'\nperiod_s=3600.0\n"
        "[windows]\nmax_hold_s=30.0\n"
        f"[console]\njsonl_path='{tmp_path / 'alerts.jsonl'}'\n"
        f"[forecast]\nforecaster='model'\nadapters_dir='{adapters}'\n"
        f"[[history.sources]]\nkind='csv_wide'\nname='plant export'\npath='{export}'\n"
        f"[[history.sources]]\nkind='parquet'\npath='{tmp_path / 'gone.parquet'}'\n"
    )
    assert main(["check-config", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "warning: windows.max_hold_s = 30 s is not longer than the period (3600 s) of p.t" in out
    assert f"jsonl {tmp_path / 'alerts.jsonl'}" in out
    assert f"plant export (csv_wide): {export}," in out
    assert "gone.parquet (not found)" in out
    assert "backfill reads the last 1.9512e+06 s" in out  # (512 + 30) hours
    assert "p: 2 tags (p.t, q.z) (not tags of asset p: q.z)" in out


def test_summary_without_history_or_adapters() -> None:
    lines = summary_lines(Settings())
    assert "history: none (the daemon starts cold)" in lines
    assert any(line.startswith("sinks: kafka topic sentinelle.alerts") for line in lines)
