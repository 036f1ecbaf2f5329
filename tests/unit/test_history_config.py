"""One history configuration for backfill, fine-tuning and backtests (issue 17 items 1 and 2).

A plant's exports — the French wide CSV (``;``, decimal commas, BOM, day-first dates,
empty cells where nothing changed) and the event log — are configured once in
``[[history.sources]]`` with a tag map; ``finetune --asset`` reads them from there,
under the configured tag names, so the adapter it writes is the one the daemon
accepts for the asset, and an adapter trained on other names is refused.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Collection
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from sentinelle.backfill import run_backfill
from sentinelle.cli import main
from sentinelle.detect.stage import DetectStage
from sentinelle.errors import ConfigError, ModelError
from sentinelle.evaluation.history_data import load_sources, parse_date
from sentinelle.forecast import make_forecaster
from sentinelle.forecast.asset_engine import AssetForecaster
from sentinelle.forecast.asset_estimators import load_asset_estimators
from sentinelle.forecast.engine import ModelForecaster
from sentinelle.metrics import Metrics
from sentinelle.settings import CsvEventsSource, CsvWideSource, ForecastSettings, load_settings
from sentinelle.windows import Windows

from .model_helpers import small_asset_checkpoint

TINY = Path(__file__).resolve().parents[1] / "data" / "tiny-model"
T0 = 1_735_689_600.0  # 2025-01-01T00:00:00Z: the export's period, long before "now"
PERIOD_S = 60.0
STEPS = 480
PARIS = dt.timezone(dt.timedelta(hours=1))  # January in Europe/Paris
EXPORT_NAMES = {"Débit eau (m3/h)": "pump1.flow_m3h", "Temp. départ (°C)": "pump1.temp_c"}


def _signals() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    t = np.arange(STEPS)
    flow = 60.0 + 8.0 * np.sin(2 * np.pi * t / 48) + rng.normal(0, 0.3, STEPS)
    temp = 7.0 + 1.5 * np.sign(np.sin(2 * np.pi * t / 48)) + rng.normal(0, 0.05, STEPS)
    return {"Débit eau (m3/h)": flow, "Temp. départ (°C)": temp}


def _when(k: int) -> str:
    return dt.datetime.fromtimestamp(T0 + k * PERIOD_S, PARIS).strftime("%d/%m/%Y %H:%M")


def write_french_wide(path: Path) -> None:
    """The wide export: one decimal a cell, so a value that did not change by 0.1 is an empty cell (a deadband)."""
    signals = _signals()
    previous: dict[str, str] = {}
    lines = ["Date;" + ";".join(signals)]
    for k in range(STEPS):
        cells = []
        for name, values in signals.items():
            text = f"{values[k]:.1f}".replace(".", ",")
            cells.append("" if previous.get(name) == text else text)
            previous[name] = text
        lines.append(_when(k) + ";" + ";".join(cells))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8-sig")


def write_event_log(path: Path) -> None:
    """The event log: ``Date, Nom Paramètre, Valeurs (before), Nouvelle valeur (after)``, one row per change."""
    signals = _signals()
    rows = []
    for name, values in signals.items():
        before = f"{values[0]:.1f}"
        for k in range(1, STEPS):
            after = f"{values[k]:.1f}"
            if after != before:
                rows.append((k, f"{_when(k)};{name};{before.replace('.', ',')};{after.replace('.', ',')}"))
            before = after
    rows.sort(key=lambda r: r[0])
    path.write_text("Date;Nom Paramètre;Valeurs;Nouvelle valeur\n" + "\n".join(r for _, r in rows) + "\n", "utf-8")


def _finetune(config: Path) -> list[str]:
    return ["finetune", "--config", str(config), "--asset", "pump1", "--base", str(TINY), "--no-progress"]


def _config(tmp_path: Path, source: dict[str, object]) -> Path:
    text = f"""
[[tags]]
name = "pump1.flow_m3h"
asset = "pump1"
node_id = "ns=2;s=flow"
period_s = 60.0
unit = "m3/h"

[[tags]]
name = "pump1.temp_c"
asset = "pump1"
node_id = "ns=2;s=temp"
period_s = 60.0
unit = "degC"

[forecast]
adapters_dir = "{tmp_path / "adapters"}"

[finetune]
max_steps = 10
eval_every_steps = 5
batch_size = 8
threads = 1
validation_windows = 16

[kafka]
enabled = false

[[history.sources]]
{chr(10).join(f"{k} = {json.dumps(v)}" for k, v in source.items() if k != "tag_map")}
timezone = "Europe/Paris"
[history.sources.tag_map]
{chr(10).join(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in EXPORT_NAMES.items())}
"""
    path = tmp_path / "sentinelle.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _wide_source(tmp_path: Path) -> dict[str, object]:
    write_french_wide(tmp_path / "export.csv")
    return {"kind": "csv_wide", "path": str(tmp_path / "export.csv"), "date_column": "Date"}


def _events_source(tmp_path: Path) -> dict[str, object]:
    write_event_log(tmp_path / "events.csv")
    return {
        "kind": "csv_events",
        "path": str(tmp_path / "events.csv"),
        "date_column": "Date",
        "tag_column": "Nom Paramètre",
        "value_column": "Valeurs",
        "new_value_column": "Nouvelle valeur",
    }


@pytest.mark.parametrize("make_source", [_wide_source, _events_source], ids=["french_wide", "event_log"])
def test_both_exports_read_under_the_configured_names_and_range(tmp_path: Path, make_source: object) -> None:
    settings = load_settings(_config(tmp_path, make_source(tmp_path)))  # type: ignore[operator]
    source = settings.history.sources[0]
    assert isinstance(source, CsvWideSource | CsvEventsSource)
    series = load_sources([source], periods={t.name: t.period_s for t in settings.tags})
    assert [s.name for s in series] == ["pump1.flow_m3h", "pump1.temp_c"]
    flow = series[0]
    assert flow.period_s == PERIOD_S
    # The exports' one-decimal values, on the tags' 60 s grid from the first change on.
    expected = np.round(_signals()["Débit eau (m3/h)"], 1)
    np.testing.assert_allclose(flow.values, expected[-len(flow) :], atol=1e-9)
    # A range in the data's own time, read by the readers (start <= ts < end).
    start, end = T0 + 100 * PERIOD_S, T0 + 200 * PERIOD_S
    cut = load_sources([source], periods={t.name: t.period_s for t in settings.tags}, start=start, end=end)
    assert all(s.timestamps[0] >= start and s.timestamps[-1] < end for s in cut)
    assert len(cut[0]) == 100


@pytest.mark.parametrize("make_source", [_wide_source, _events_source], ids=["french_wide", "event_log"])
def test_one_configuration_serves_finetune_backfill_and_the_adapted_daemon(tmp_path: Path, make_source: object) -> None:
    """End to end from each export format, configured once: ``finetune --asset`` trains on the configured
    tags up to a date, the daemon's model takes that adapter for the asset, and the backfill replays the
    rest of the same export, under the same names, through windows → adapted model → detectors."""
    config = _config(tmp_path, make_source(tmp_path))  # type: ignore[operator]
    until = dt.datetime.fromtimestamp(T0 + 400 * PERIOD_S, dt.UTC).isoformat()
    rc = main([*_finetune(config), "--until", until])
    assert rc == 0
    manifest = json.loads((tmp_path / "adapters" / "pump1" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["tags"] == ["pump1.flow_m3h", "pump1.temp_c"]
    assert parse_date(manifest["data"]["last"].replace("Z", "+00:00")) < T0 + 400 * PERIOD_S

    settings = load_settings(config)
    forecast = ForecastSettings(
        forecaster="model", model_path=TINY, model_device="cpu", adapters_dir=tmp_path / "adapters"
    )
    metrics = Metrics(CollectorRegistry())
    model = make_forecaster(forecast, metrics, {"pump1": [t.name for t in settings.tags]})
    assert isinstance(model, ModelForecaster)
    assert list(model.adapters) == ["pump1"] and model.adapter_errors == {}

    history = {
        "sources": [settings.history.sources[0].model_dump()],
        "backfill_from": until,
        "backfill_until": dt.datetime.fromtimestamp(T0 + STEPS * PERIOD_S, dt.UTC).isoformat(),
    }
    settings = load_settings(
        None,
        tags=[t.model_dump() for t in settings.tags],
        kafka={"enabled": False},
        prometheus={"enabled": False},
        history=history,
    )
    windows = Windows(settings.tags, settings.windows, metrics)
    detect = DetectStage(settings.tags, settings.detect, metrics)
    result = asyncio.run(run_backfill(settings, metrics, windows, model, detect, now=T0 + 365 * 86_400.0))
    # The export's last 80 minutes of both tags, read under the configured names (an event log writes
    # only changes, so fewer samples; the windows hold the values between them).
    assert 20 <= result.samples <= 2 * (STEPS - 400) + 2
    assert set(result.reports[0].tags) == {"pump1.flow_m3h", "pump1.temp_c"}
    assert result.ticks >= STEPS - 400 - 2  # one tag group (both tags at 60 s): one tick per slot


def test_an_adapter_trained_on_other_tag_names_is_refused_naming_both(tmp_path: Path) -> None:
    """The old workaround: the export read without the tag map trains an adapter on the export's own names."""
    write_french_wide(tmp_path / "export.csv")
    adapters = tmp_path / "adapters"
    data = ["--data", str(tmp_path / "export.csv"), "--tags", *EXPORT_NAMES]
    rc = main([*_finetune(_bare_config(tmp_path)), *data, "--out", str(adapters / "pump1")])
    assert rc == 0
    forecast = ForecastSettings(forecaster="model", model_path=TINY, model_device="cpu", adapters_dir=adapters)
    model = make_forecaster(forecast, None, {"pump1": ["pump1.flow_m3h", "pump1.temp_c"]})
    assert isinstance(model, ModelForecaster)
    assert model.adapters == {}
    why = model.adapter_errors["pump1"]
    assert "Débit eau (m3/h)" in why and "pump1.flow_m3h" in why and "tag_map" in why
    with pytest.raises(ModelError, match="not the asset's configured tags"):
        model.add_adapter("pump1", adapters / "pump1")


def _bare_config(tmp_path: Path) -> Path:
    path = tmp_path / "bare.toml"
    path.write_text(
        '[[tags]]\nname = "pump1.flow_m3h"\nasset = "pump1"\nnode_id = "ns=2;s=flow"\nperiod_s = 60.0\n'
        "[finetune]\nmax_steps = 10\neval_every_steps = 5\nbatch_size = 8\nthreads = 1\nvalidation_windows = 16\n"
        "[kafka]\nenabled = false\n",
        encoding="utf-8",
    )
    return path


def test_data_on_the_command_line_uses_the_configured_format_and_map(tmp_path: Path) -> None:
    """``--data`` points the configured source at another export: same columns, dates and tag map."""
    config = _config(tmp_path, _events_source(tmp_path))
    other = tmp_path / "other"
    other.mkdir()
    write_event_log(other / "june.csv")
    rc = main([*_finetune(config), "--data", str(other), "--out", str(tmp_path / "a")])
    assert rc == 0
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["tags"] == ["pump1.flow_m3h", "pump1.temp_c"]


def test_unknown_source_and_missing_history_are_clear_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, _wide_source(tmp_path))
    rc = main(["finetune", "--config", str(config), "--asset", "pump1", "--source", "nope", "--base", str(TINY)])
    assert rc == 78
    assert "no history source named ['nope']" in capsys.readouterr().err
    bare = ["finetune", "--config", str(_bare_config(tmp_path)), "--asset", "pump1", "--base", str(TINY)]
    rc = main([*bare, "--out", str(tmp_path / "a")])
    assert rc == 78
    assert "configure [[history.sources]]" in capsys.readouterr().err


@pytest.mark.asyncio
async def test_backfill_reads_an_explicit_range_of_the_datas_time(tmp_path: Path) -> None:
    """A 2025 export and a daemon started in 2026: the look-back from now finds nothing, the range finds it."""
    now = T0 + 365 * 86_400.0
    source = _wide_source(tmp_path)

    async def backfill(history: dict[str, object]) -> int:
        settings = load_settings(_config(tmp_path, source)).model_copy()
        settings = load_settings(
            None,
            tags=[t.model_dump() for t in settings.tags],
            kafka={"enabled": False},
            prometheus={"enabled": False},
            history={"sources": [settings.history.sources[0].model_dump()], **history},
        )
        metrics = Metrics(CollectorRegistry())
        windows = Windows(settings.tags, settings.windows, metrics)
        detect = DetectStage(settings.tags, settings.detect, metrics)
        result = await run_backfill(settings, metrics, windows, make_forecaster(settings.forecast), detect, now=now)
        return result.samples

    # The look-back before now holds no row: only each tag's last known value, carried to its start.
    assert await backfill({}) <= 2
    read = await backfill({"backfill_from": "2025-01-01T02:00:00Z", "backfill_until": "2025-01-01T04:00:00Z"})
    assert 2 * 100 <= read <= 2 * 121  # two tags, 120 one-minute rows (fewer where the export left cells empty)


def test_backfill_range_is_validated() -> None:
    with pytest.raises(ConfigError, match="backfill_until"):
        load_settings(None, tags=[], history={"backfill_until": "2025-01-01T00:00:00Z"})
    with pytest.raises(ConfigError, match="after backfill_from"):
        load_settings(
            None, tags=[], history={"backfill_from": "2025-01-02T00:00:00Z", "backfill_until": "2025-01-01T00:00:00Z"}
        )


def test_finetune_asset_model_adapts_the_asset_model_on_the_configured_tags(tmp_path: Path) -> None:
    """``finetune --asset --asset-model`` reads the same configured history and adapts the asset model on the
    asset's tags together; the adapter records them (and needs --out: the default folder is the univariate's)."""
    config = _config(tmp_path, _wide_source(tmp_path))
    base = small_asset_checkpoint(tmp_path / "asset")
    args = ["finetune", "--config", str(config), "--asset", "pump1", "--asset-model", "--base", str(base)]
    assert main([*args, "--no-progress"]) != 0
    assert main([*args, "--out", str(tmp_path / "am"), "--no-progress"]) == 0
    manifest = json.loads((tmp_path / "am" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["kind"] == "asset_model" and manifest["tags"] == ["pump1.flow_m3h", "pump1.temp_c"]
    assert set(manifest["validation"]["after"]["mae"]) == {"pump1.flow_m3h", "pump1.temp_c"}


def test_finetune_asset_model_writes_where_the_daemon_reads(tmp_path: Path) -> None:
    """With ``forecast.asset_model_adapters_dir`` set, ``--out`` defaults to ``<dir>/<asset>``, the folder the
    daemon loads the asset's adapted model from (its configured tags checked)."""
    config = _config(tmp_path, _wide_source(tmp_path))
    folder = tmp_path / "asset-adapters"
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("[forecast]\n", f'[forecast]\nasset_model_adapters_dir = "{folder}"\n'), "utf-8")
    base = small_asset_checkpoint(tmp_path / "asset")
    assert main(["finetune", "--config", str(config), "--asset", "pump1", "--asset-model", "--base", str(base),
                 "--no-progress"]) == 0  # fmt: skip
    settings = load_settings(config)
    assert settings.forecast.asset_model_adapters_dir == folder

    def make(adapter: Path | None, tags: Collection[str] | None) -> AssetForecaster:
        return AssetForecaster(base, (0.1, 0.5, 0.9), adapter=adapter, adapter_tags=tags)

    models = load_asset_estimators(make, folder, {"pump1": ["pump1.flow_m3h", "pump1.temp_c"]})
    assert set(models.adapted) == {"pump1"} and models.refused == {}
