"""Settings validation and the CLI's exit codes for bad configuration."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sentinelle.cli import EXIT_CONFIG, main, parse_fault
from sentinelle.errors import ConfigError
from sentinelle.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config" / "sentinelle.toml"


def test_example_config_is_valid() -> None:
    s = load_settings(EXAMPLE)
    assert len(s.tags) == 7
    assert s.tags[5].high_limit == 5.2


def test_environment_overrides_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTINELLE_KAFKA__BOOTSTRAP_SERVERS", "10.1.2.3:9093")
    monkeypatch.setenv("SENTINELLE_DETECT__OPEN_K", "2")
    s = load_settings(EXAMPLE)
    assert s.kafka.bootstrap_servers == "10.1.2.3:9093"
    assert s.detect.open_k == 2


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("[detect]\nopen_k = 6\nopen_n = 5\n", "detect"),
        ("[windows]\ncontext_steps = 'many'\n", "windows.context_steps"),
        ("[kafka]\nbootstrap_server = 'x'\n", "kafka.bootstrap_server"),
        ("[[tags]]\nname='a'\nasset='x'\nnode_id='n'\nperiod_s=-1\n", "tags[a].period_s"),
        ("[[tags]]\nname='a'\nasset='x'\nnode_id='n'\nlow_limit=6\nhigh_limit=5\n", "tags[a]"),
        ("[[tags]]\nname='a'\nasset='x'\nnode_id='n'\nsource='nowhere'\n", "tags[a].source"),
        ("[[tags]]\nname='a'\nasset='x'\nnode_id='n'\n[[tags]]\nname='a'\nasset='x'\nnode_id='m'\n", "tags"),
        ("[forecast]\nquantile_levels = [0.9, 0.1]\n", "forecast"),
        ("[sources\n", "bad.toml"),
    ],
)
def test_bad_config_names_the_field(tmp_path: Path, text: str, field: str) -> None:
    p = tmp_path / "bad.toml"
    p.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_settings(p)
    assert field in str(e.value)


def test_check_config_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", str(EXAMPLE)]) == 0
    bad = tmp_path / "bad.toml"
    bad.write_text("[detect]\nopen_k = 9\n")
    assert main(["check-config", str(bad)]) == EXIT_CONFIG
    assert "open_k" in capsys.readouterr().err
    assert main(["check-config", str(tmp_path / "missing.toml")]) == EXIT_CONFIG


def test_run_with_bad_config_exits_78_as_a_process(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[prometheus]\nport = 99999\n")
    r = subprocess.run(
        [sys.executable, "-m", "sentinelle.cli", "run", "--config", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 78
    assert "prometheus.port" in r.stderr


def test_parse_fault() -> None:
    f = parse_fault("sensor_drift:300:600:chw_temp_c:0.5")
    assert (f.kind, f.onset_s, f.duration_s, f.tag, f.magnitude) == ("sensor_drift", 300, 600, "chw_temp_c", 0.5)
    import argparse

    with pytest.raises(argparse.ArgumentTypeError):
        parse_fault("meltdown:1:2")


def test_example_config_and_the_simulators_rules_agree() -> None:
    """The demo and the chiller evaluation use ``chiller_asset_rules``; the example config documents the same rules."""
    from sentinelle.settings import SimulatorSettings
    from sentinelle.sim.server import chiller_asset_rules

    s = load_settings(EXAMPLE)
    assert s.detect.assets == (chiller_asset_rules(SimulatorSettings()),)
    assert s.detect.assets[0].relations[0].target == "chiller1.power_kw"
