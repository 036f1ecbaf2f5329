"""Settings from file, environment and secret files; problems named by item; the checks before a daemon runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from sentinelle.cli import EXIT_CONFIG, main
from sentinelle.config_checks import parse_bootstrap_servers
from sentinelle.errors import ConfigError
from sentinelle.settings import PostgresSource, load_settings

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config" / "sentinelle.toml"
SECRET = "Zq7-not-in-any-output-9vX"

TAGS = """
[[tags]]
name = "chiller1.chw_temp_c"
asset = "chiller1"
node_id = "ns=2;s=chiller1.chw_temp_c"
[[tags]]
name = "chiller1.flow_m3h"
asset = "chiller1"
node_id = "ns=2;s=chiller1.flow_m3h"
"""
SOURCE = """
[[sources]]
name = "plant"
url = "opc.tcp://10.20.0.5:4840/plant/"
username = "sentinelle"
connect_timeout_s = 7.0
"""


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("SENTINELLE_") or name == "CREDENTIALS_DIRECTORY":
            monkeypatch.delenv(name)


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sentinelle.toml"
    path.write_text(text)
    return path


# --- what a daemon needs to run --------------------------------------------------------------


def test_no_tags_is_a_config_error_for_check_config_and_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _config(tmp_path, SOURCE)
    assert main(["check-config", str(path)]) == EXIT_CONFIG
    assert "no tags are configured" in capsys.readouterr().err
    assert main(["run", "--config", str(path)]) == EXIT_CONFIG
    assert "no tags are configured" in capsys.readouterr().err
    assert main(["check-config", str(_config(tmp_path, SOURCE + TAGS))]) == 0


def test_a_malformed_node_id_fails_check_config_naming_the_tag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = SOURCE + TAGS.replace('node_id = "ns=2;s=chiller1.flow_m3h"', 'node_id = "ns=two;s=chiller1.flow_m3h"')
    assert main(["check-config", str(_config(tmp_path, text))]) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert "tags[chiller1.flow_m3h].node_id" in err
    assert "ns=two;s=chiller1.flow_m3h" in err
    assert "chw_temp_c" not in err  # the good tag is not blamed


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("kafka1:9092", [("kafka1", 9092)]),
        ("10.0.0.1:9092, kafka-2.plant.local:19092", [("10.0.0.1", 9092), ("kafka-2.plant.local", 19092)]),
        ("[::1]:9092,[fd00::2]:9093", [("::1", 9092), ("fd00::2", 9093)]),
    ],
)
def test_bootstrap_lists_parse(text: str, expected: list[tuple[str, int]]) -> None:
    assert parse_bootstrap_servers(text) == expected


@pytest.mark.parametrize(
    "text",
    ["kafka1", "kafka1:", "kafka1:0", "kafka1:70000", "::1:9092", "[::1]", "[zz::1]:9092", "PLAINTEXT://k:9092",
     "k:9092,", "a b:9092", ""],
)  # fmt: skip
def test_malformed_bootstrap_lists_are_config_errors(tmp_path: Path, text: str) -> None:
    path = _config(tmp_path, f"[kafka]\nbootstrap_servers = {text!r}\n")
    with pytest.raises(ConfigError) as e:
        load_settings(path)
    assert e.value.field == "kafka.bootstrap_servers"


# --- problems named by item ------------------------------------------------------------------


def test_errors_name_tags_and_assets_by_name_and_list_every_problem(tmp_path: Path) -> None:
    text = (
        SOURCE
        + TAGS
        + '[[tags]]\nname = "chiller1.power_kw"\nasset = "chiller1"\nnode_id = "ns=2;s=p"\nperiod_s = -1\n'
    )
    text = text.replace("connect_timeout_s = 7.0", 'connect_timeout_s = "soon"')
    with pytest.raises(ConfigError) as e:
        load_settings(_config(tmp_path, text))
    message = str(e.value)
    assert "sources[plant].connect_timeout_s" in message
    assert "tags[chiller1.power_kw].period_s" in message
    assert "tags.2" not in message and "sources.0" not in message


def test_validator_messages_name_assets_and_relations(tmp_path: Path) -> None:
    text = SOURCE + TAGS + '[[detect.assets]]\nname = "chiller1"\n[[detect.assets.relations]]\n'
    text += 'target = "chiller1.power_kw"\ninputs = ["chiller1.flow_m3h"]\n'
    with pytest.raises(ConfigError) as e:
        load_settings(_config(tmp_path, text))
    assert "detect.assets[chiller1].relations[chiller1.power_kw]: unknown tag 'chiller1.power_kw'" in str(e.value)
    assert e.value.field == "detect.assets[chiller1].relations[chiller1.power_kw]"


def test_history_sources_are_named_through_their_kind(tmp_path: Path) -> None:
    text = '[[history.sources]]\nkind = "parquet"\nname = "historian"\npath = "/x.parquet"\nlayout = "diagonal"\n'
    with pytest.raises(ConfigError) as e:
        load_settings(_config(tmp_path, text))
    assert e.value.field == "history.sources[historian].layout"


# --- the environment -------------------------------------------------------------------------


def test_list_item_fields_from_the_environment_keep_the_files_other_fields(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SENTINELLE_SOURCES__0__PASSWORD", SECRET)
    monkeypatch.setenv("SENTINELLE_TAGS__1__HIGH_LIMIT", "80")
    s = load_settings(_config(tmp_path, SOURCE + TAGS))
    (source,) = s.sources
    assert source.password is not None and source.password.get_secret_value() == SECRET
    assert (source.url, source.username, source.connect_timeout_s) == (
        "opc.tcp://10.20.0.5:4840/plant/",
        "sentinelle",
        7.0,
    )
    assert s.tags[1].high_limit == 80 and s.tags[1].node_id == "ns=2;s=chiller1.flow_m3h"


def test_list_items_of_the_defaults_and_of_nested_sections(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTINELLE_SOURCES__0__URL", "opc.tcp://10.9.9.9:4840/")
    monkeypatch.setenv("SENTINELLE_DETECT__ASSETS__0__MODE_HOLDOFF_S", "42")
    s = load_settings(EXAMPLE)  # [[sources]] and [[detect.assets]] in the file
    assert s.sources[0].url == "opc.tcp://10.9.9.9:4840/" and s.sources[0].name == "plant"
    assert s.detect.assets[0].mode_holdoff_s == 42 and s.detect.assets[0].relations
    monkeypatch.delenv("SENTINELLE_DETECT__ASSETS__0__MODE_HOLDOFF_S")
    s = load_settings(_config(tmp_path, TAGS))  # no [[sources]]: the default source "plant" is item 0
    assert s.sources[0].url == "opc.tcp://10.9.9.9:4840/" and s.sources[0].name == "plant"


@pytest.mark.parametrize(
    ("name", "value", "field", "hint"),
    [
        ("SENTINELLE_SOURCES__1__PASSWORD", "x", "SENTINELLE_SOURCES__1", "add the item to the file"),
        ("SENTINELLE_SOURCES__PLANT__PASSWORD", "x", "SENTINELLE_SOURCES__PLANT", "SENTINELLE_SOURCES__0__<FIELD>"),
        ("SENTINELLE_SOURCES", '[{"name": "plant", "password": "x"}]', "SENTINELLE_SOURCES", "__0__"),
        ("SENTINELLE_SOURCES", '[{"name": ', "SENTINELLE_SOURCES", "JSON"),
    ],
)
def test_environment_overrides_that_cannot_work_are_refused_saying_how(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str, field: str, hint: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as e:
        load_settings(_config(tmp_path, SOURCE + TAGS))
    assert e.value.field == field
    assert hint in str(e.value)


def test_a_json_list_is_taken_whole_when_the_file_has_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTINELLE_SOURCES", '[{"name": "plant", "url": "opc.tcp://10.1.1.1:4840/"}]')
    s = load_settings(_config(tmp_path, TAGS))
    assert s.sources[0].url == "opc.tcp://10.1.1.1:4840/"


# --- secret files ----------------------------------------------------------------------------


def _secrets(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


POSTGRES = '[[history.sources]]\nkind = "postgres"\nname = "historian"\ndsn = "postgresql://reader@db:5432/plant"\n'


def test_systemd_credentials_and_secrets_dir_set_secret_fields(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    creds = _secrets(tmp_path / "creds", {"sentinelle_sources.plant.password": SECRET + "\n", "client.pem": "PEM"})
    folder = _secrets(tmp_path / "secrets", {"history.sources.historian.password": "pg-pass\n"})
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    text = SOURCE + TAGS + POSTGRES + f"[daemon]\nsecrets_dir = {str(folder)!r}\n"
    s = load_settings(_config(tmp_path, text))
    assert s.sources[0].password is not None and s.sources[0].password.get_secret_value() == SECRET
    assert s.sources[0].url == "opc.tcp://10.20.0.5:4840/plant/"
    (history,) = s.history.sources
    assert isinstance(history, PostgresSource)
    assert history.password is not None and history.password.get_secret_value() == "pg-pass"


def test_a_credential_wins_over_the_secrets_dir_and_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    creds = _secrets(tmp_path / "creds", {"sentinelle_sources.plant.password": "from-credential"})
    folder = _secrets(tmp_path / "secrets", {"sources.plant.password": "from-secrets-dir"})
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    monkeypatch.setenv("SENTINELLE_SOURCES__0__PASSWORD", "from-env")
    monkeypatch.setenv("SENTINELLE_DAEMON__SECRETS_DIR", str(folder))
    s = load_settings(_config(tmp_path, SOURCE + TAGS))
    assert s.sources[0].password is not None and s.sources[0].password.get_secret_value() == "from-credential"


@pytest.mark.parametrize(
    ("name", "text", "problem"),
    [
        ("sources.plnt.password", "x", "known: plant"),
        ("sources.plant.url", "opc.tcp://x", "not a secret setting"),
        ("sources.plant.pasword", "x", "no setting 'pasword'"),
        ("sources.plant.password", "", "is empty"),
    ],
)
def test_a_secret_file_that_matches_no_secret_is_an_error_naming_it(
    tmp_path: Path, name: str, text: str, problem: str
) -> None:
    folder = _secrets(tmp_path / "secrets", {name: text})
    with pytest.raises(ConfigError) as e:
        load_settings(_config(tmp_path, SOURCE + TAGS + f"[daemon]\nsecrets_dir = {str(folder)!r}\n"))
    assert e.value.field == name
    assert problem in str(e.value)


def test_secrets_never_reach_check_config_output_or_errors(tmp_path: Path) -> None:
    creds = _secrets(tmp_path / "creds", {"sentinelle_sources.plant.password": SECRET})
    text = SOURCE + TAGS + POSTGRES.replace("reader@", f"reader:{SECRET}@")
    env = {**os.environ, "CREDENTIALS_DIRECTORY": str(creds), "SENTINELLE_HISTORY__SOURCES__0__PASSWORD": SECRET}
    good = _config(tmp_path, text)
    r = subprocess.run(
        [sys.executable, "-m", "sentinelle.cli", "check-config", str(good)],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "sources[plant].password" in r.stdout and "history.sources[historian].password" in r.stdout
    assert SECRET not in r.stdout + r.stderr
    # The secret where a number belongs: pydantic's own message would quote the input.
    env["SENTINELLE_SOURCES__0__CONNECT_TIMEOUT_S"] = SECRET
    r = subprocess.run(
        [sys.executable, "-m", "sentinelle.cli", "check-config", str(good)],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )  # fmt: skip
    assert r.returncode == EXIT_CONFIG
    assert "sources[plant].connect_timeout_s" in r.stderr
    assert SECRET not in r.stdout + r.stderr


def test_secrets_never_reach_the_daemons_log(tmp_path: Path) -> None:
    """A daemon at DEBUG, its OPC-UA server unreachable, stopped by SIGTERM once it runs: no secret in its log."""
    creds = _secrets(tmp_path / "creds", {"sentinelle_sources.plant.password": SECRET})
    text = SOURCE.replace("10.20.0.5:4840", "127.0.0.1:9") + TAGS
    text += '[forecast]\nforecaster = "holt"\n[kafka]\nenabled = false\n[prometheus]\nport = 0\n'
    text += '[daemon]\nlog_level = "DEBUG"\n'
    env = {**os.environ, "CREDENTIALS_DIRECTORY": str(creds)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "sentinelle.cli", "run", "--config", str(_config(tmp_path, text))],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip
    assert proc.stdout is not None
    lines = []
    try:
        for line in proc.stdout:  # the source logs its first failed attempt once the pipeline runs
            lines.append(line)
            if "source plant" in line and "attempt failed" in line:
                break
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    log = "".join(lines) + rest
    assert "running:" in log, log
    assert proc.returncode == 0, log
    assert SECRET not in log


def test_items_built_in_code_take_environment_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    from sentinelle.settings import OpcUaSourceSettings, Settings

    monkeypatch.setenv("SENTINELLE_SOURCES__0__PASSWORD", SECRET)
    s = Settings(sources=(OpcUaSourceSettings(name="area1", url="opc.tcp://10.3.3.3:4840/"),))
    assert s.sources[0].name == "area1" and s.sources[0].url == "opc.tcp://10.3.3.3:4840/"
    assert s.sources[0].password is not None and s.sources[0].password.get_secret_value() == SECRET


def test_check_config_warns_about_a_secret_written_in_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _config(tmp_path, SOURCE.replace('username = "sentinelle"', f'password = "{SECRET}"') + TAGS)
    assert main(["check-config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "warning: sources[plant].password is written in" in out
    assert SECRET not in out
    assert main(["check-config", str(_config(tmp_path, SOURCE + TAGS))]) == 0
    assert "warning" not in capsys.readouterr().out
