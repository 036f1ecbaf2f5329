"""Bad input on the command line ends in one clear line and a documented exit code (issue: CLI bad-input sweep).

Each case is one an administrator or data engineer really types: an output path that is a file
or someone else's folder, a data file with nothing in it, a time zone misspelt, a settings file
that is not text, a port already taken. None may end in a traceback or touch the user's files.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from sentinelle.cli import EXIT_CONFIG, main

TINY = Path(__file__).resolve().parents[1] / "data" / "tiny-model"
T0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
STEPS = 240


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "sentinelle.toml"
    path.write_text(
        '[[tags]]\nname = "pump1.flow_m3h"\nasset = "pump1"\nnode_id = "ns=2;s=flow"\nperiod_s = 60.0\n'
        "[finetune]\nmax_steps = 2\neval_every_steps = 1\nbatch_size = 4\nthreads = 1\nvalidation_windows = 8\n"
        "[kafka]\nenabled = false\n",
        encoding="utf-8",
    )
    return path


def _export(tmp_path: Path) -> Path:
    t = np.arange(STEPS)
    flow = 60.0 + 8.0 * np.sin(2 * np.pi * t / 48)
    rows = [f"{(T0 + dt.timedelta(minutes=int(k))).isoformat()},{flow[k]:.3f}" for k in t]
    path = tmp_path / "export.csv"
    path.write_text("timestamp,pump1.flow_m3h\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def _finetune(tmp_path: Path, data: Path) -> list[str]:
    return [
        "finetune", "--config", str(_config(tmp_path)), "--asset", "pump1", "--base", str(TINY),
        "--data", str(data), "--no-progress",
    ]  # fmt: skip


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_finetune_out_that_is_not_an_adapter_is_refused_and_left_alone(
    tmp_path: Path, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Saving replaces the folder: ``--out`` naming the export itself or the data's folder must not delete it."""
    export = _export(tmp_path)
    out = export if kind == "file" else tmp_path
    args = [*_finetune(tmp_path, export), "--out", str(out)]
    before = sorted(p.name for p in tmp_path.iterdir())
    rc = main(args)
    assert rc == EXIT_CONFIG
    assert "--out" in capsys.readouterr().err
    assert export.is_file() and sorted(p.name for p in tmp_path.iterdir()) == before


def test_save_adapter_itself_refuses_to_replace_what_is_not_an_adapter(tmp_path: Path) -> None:
    """The same guard where the folder is replaced, for callers other than the CLI (bench scripts, notebooks)."""
    from sentinelle.errors import ModelError
    from sentinelle.forecast.adapters import save_adapter

    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(ModelError, match="not an adapter"):
        save_adapter(None, "default", tmp_path, {})  # type: ignore[arg-type]
    assert (tmp_path / "notes.txt").read_text(encoding="utf-8") == "mine"


@pytest.mark.parametrize("command", ["finetune", "backtest"])
def test_an_empty_export_is_a_configuration_error_naming_it(
    tmp_path: Path, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    if command == "finetune":
        args = [*_finetune(tmp_path, empty), "--out", str(tmp_path / "a")]
    else:
        args = ["backtest", "--config", str(_config(tmp_path)), "--base", str(TINY), "--data", str(empty)]
        args += ["--out", str(tmp_path / "bt")]
    assert main(args) == EXIT_CONFIG
    assert "empty.csv has no header line" in capsys.readouterr().err


def test_a_misspelt_time_zone_is_a_configuration_error_naming_the_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [*_finetune(tmp_path, _export(tmp_path)), "--out", str(tmp_path / "a"), "--timezone", "Europe/Pariss"]
    assert main(args) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert "--timezone" in err and "Europe/Pariss" in err and "Traceback" not in err


@pytest.mark.parametrize("command", ["check-config", "run", "pretrain"])
def test_a_settings_file_that_is_not_utf8_is_a_configuration_error(
    tmp_path: Path, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A TOML file saved by a Windows editor as Windows-1252, with a unit in a comment."""
    path = tmp_path / "sentinelle.toml"
    path.write_bytes("[kafka]\nenabled = false  # 5 \u00b0C\n".encode("cp1252"))
    args = [command, str(path)] if command == "check-config" else [command, "--config", str(path)]
    assert main(args) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert "not UTF-8" in err and str(path) in err


OUTPUT_CASES = {
    "backtest --out": ["backtest", "--config", "{cfg}", "--data", "{export}", "--out", "{file}"],
    "evaluate --out": ["evaluate", "--dataset", "nab", "--forecaster", "holt", "--out", "{file}"],
    "evaluate --forecast-cache": ["evaluate", "--dataset", "nab", "--out", "{tmp}/ev", "--forecast-cache", "{file}"],
    "evaluate --cache-dir": ["evaluate", "--dataset", "chiller", "--out", "{tmp}/ev", "--cache-dir", "{file}/c"],
    "demo --out": ["demo", "--duration-s", "1", "--no-live", "--out", "{file}/demo"],
    "pretrain --out": ["pretrain", "--config", "{cfg}", "--out", "{file}"],
    "make-cert --cert": ["make-cert", "--cert", "{file}/c.der", "--key", "{tmp}/k.pem"],
    "simulate --ground-truth": ["simulate", "--port", "0", "--ground-truth", "{file}/gt.jsonl"],
}


@pytest.mark.parametrize("case", OUTPUT_CASES)
def test_an_output_path_that_is_a_file_or_under_one_is_refused_before_any_work(
    tmp_path: Path, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--out report.md`` (a file) or a path under a file: one line naming the flag, nothing written."""
    names = {"cfg": str(_config(tmp_path)), "export": str(_export(tmp_path)), "file": str(tmp_path / "notes.txt")}
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    before = sorted(p.name for p in tmp_path.iterdir())
    args = [a.format(tmp=tmp_path, **names) for a in OUTPUT_CASES[case]]
    assert main(args) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert case.split()[1] in err and "not a folder" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert (tmp_path / "notes.txt").read_text(encoding="utf-8") == "mine"


@pytest.mark.parametrize("command", ["pretrain", "simulate"])
def test_an_output_path_in_the_settings_file_is_checked_too(
    tmp_path: Path, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    section, key = ("train", "out_dir") if command == "pretrain" else ("simulator", "ground_truth_path")
    config = tmp_path / "settings.toml"
    config.write_text(f'[{section}]\n{key} = "{tmp_path / "notes.txt" / "x"}"\n', encoding="utf-8")
    assert main([command, "--config", str(config)]) == EXIT_CONFIG
    assert f"{section}.{key}" in capsys.readouterr().err


@pytest.mark.parametrize("context", ["0", "-5"])
def test_backtest_without_context_is_a_configuration_error(
    tmp_path: Path, context: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--context 0`` failed every baseline and still exited 0; a negative one raised numpy's ValueError."""
    args = ["backtest", "--config", str(_config(tmp_path)), "--data", str(_export(tmp_path)), "--skip", "base"]
    assert main([*args, "--origins", "2", "--context", context, "--out", str(tmp_path / "bt")]) == EXIT_CONFIG
    assert "context" in capsys.readouterr().err
    assert not (tmp_path / "bt").exists()


@pytest.mark.parametrize("command", ["run", "demo"])
def test_a_metrics_port_already_in_use_is_a_configuration_error_naming_it(
    tmp_path: Path, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Another daemon (or a demo left running) holds the port: one line naming prometheus.port, exit 78."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        if command == "run":
            config = tmp_path / "run.toml"
            config.write_text(
                '[[sources]]\nname = "plant"\nurl = "opc.tcp://127.0.0.1:9/x/"\n'
                '[[tags]]\nname = "p.flow"\nasset = "p"\nnode_id = "ns=2;s=flow"\nsource = "plant"\n'
                f'[forecast]\nforecaster = "holt"\n[kafka]\nenabled = false\n[prometheus]\nport = {port}\n',
                encoding="utf-8",
            )
            args = ["run", "--config", str(config)]
        else:
            args = ["demo", "--prometheus-port", str(port), "--duration-s", "1", "--no-live", "--no-asset-model"]
            args += ["--out", str(tmp_path / "demo")]
        assert main(args) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert "prometheus.port" in err and f"127.0.0.1:{port}" in err and "Traceback" not in err


def test_history_samples_dropped_or_reordered_are_counted_in_the_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """NaN and inf cells, a block of rows in reverse and a repeated row were dropped or sorted without a word."""
    import logging

    from sentinelle.evaluation.history_data import load_history

    export = _export(tmp_path)
    header, *rows = export.read_text(encoding="utf-8").splitlines()
    stamp = [r.split(",")[0] for r in rows]
    rows[10], rows[11] = f"{stamp[10]},nan", f"{stamp[11]},inf"
    rows[50:53] = rows[50:53][::-1]  # 2 steps back
    rows.insert(80, f"{stamp[80]},1.0")  # a second value at the same time
    export.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="sentinelle"):
        series = load_history(export, periods={"pump1.flow_m3h": 60.0})
    assert len(series[0]) == STEPS
    text = caplog.text
    assert "2 samples skipped: 2 NaN or infinite" in text
    assert "2 samples earlier than the one before (sorted), 1 with a timestamp already seen" in text


EVALUATE_CASES = {
    "--runs-per-kind": ["--dataset", "chiller", "--runs-per-kind", "0", "--fault-free-runs", "0"],
    "--fault-free-s": ["--dataset", "chiller", "--fault-free-s", "-5"],
    "--model-threads": ["--dataset", "nab", "--model-threads", "0"],
    "--workers": ["--dataset", "nab", "--workers", "0"],
    "--model-refresh-steps": ["--dataset", "nab", "--model-refresh-steps", "0"],
    "--asset-blind-set": ["--dataset", "chiller", "--asset-blind-set", "junk"],
    "--asset-adapter": ["--dataset", "skab", "--asset-adapter", "{tmp}"],
}


@pytest.mark.parametrize("flag", EVALUATE_CASES)
def test_evaluate_refuses_counts_and_adapters_it_cannot_use_before_replaying(
    tmp_path: Path, flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each was an IndexError, a pydantic traceback or exit 1 after the replay, or a silent run of nothing."""
    args = ["evaluate", *(a.format(tmp=tmp_path) for a in EVALUATE_CASES[flag]), "--out", str(tmp_path / "ev")]
    assert main(args) == EXIT_CONFIG
    assert flag in capsys.readouterr().err
    assert not (tmp_path / "ev").exists()


def test_a_dataset_tag_that_does_not_exist_is_named_not_blamed_on_the_dates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--dataset electricity --tags nope`` said "no data between --from and --until"."""
    from sentinelle.evaluation.datasets import load_electricity

    try:
        load_electricity(None, columns=("load_mw_mean",))
    except Exception:  # the shared data set is not on this machine
        pytest.skip("electricity data set not available (SENTINELLE_DATA_DIR)")
    args = ["finetune", "--config", str(_config(tmp_path)), "--asset", "pump1", "--base", str(TINY)]
    assert main([*args, "--dataset", "electricity", "--tags", "nope", "--out", str(tmp_path / "a")]) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert "--tags" in err and "load_mw_mean" in err


@pytest.mark.parametrize("flags", [["--prometheus-port", "-1"], ["--duration-s", "-3"]], ids=lambda f: f[0])
def test_demo_refuses_a_port_or_duration_it_cannot_use(
    tmp_path: Path, flags: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """A negative port left the simulator's task unawaited (a traceback); a negative duration ran and exited 0."""
    args = ["demo", "--no-live", "--no-asset-model", "--out", str(tmp_path / "demo"), "--duration-s", "1", *flags]
    assert main(args) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert flags[0] in err and "Traceback" not in err


def test_simulate_on_a_port_in_use_says_so_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The exit code was right (78), but asyncua's own traceback of the failed start came first."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["simulate", "--port", str(port)]) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert f"simulator.port: cannot listen on 127.0.0.1:{port}" in err and "Traceback" not in err


@pytest.mark.parametrize("period", ["0", "-60"])
def test_a_resampling_period_not_above_zero_is_named(
    tmp_path: Path, period: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--period-s 0`` was an OverflowError traceback; ``-60`` said "no data between --from and --until"."""
    export = _export(tmp_path)
    export.write_text(export.read_text(encoding="utf-8").replace("pump1.flow_m3h", "other.tag", 1), encoding="utf-8")
    args = [*_finetune(tmp_path, export), "--tags", "other.tag", "--period-s", period, "--out", str(tmp_path / "a")]
    assert main(args) == EXIT_CONFIG
    assert "--period-s" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["finetune", "backtest"])
def test_from_after_until_is_named(tmp_path: Path, command: str, capsys: pytest.CaptureFixture[str]) -> None:
    """backtest said "no series has 32 steps of history and 16 steps ahead in the period"."""
    export = _export(tmp_path)
    if command == "finetune":
        args = [*_finetune(tmp_path, export), "--out", str(tmp_path / "a")]
    else:
        args = ["backtest", "--config", str(_config(tmp_path)), "--data", str(export), "--skip", "base"]
        args += ["--out", str(tmp_path / "bt")]
    assert main([*args, "--from", "2025-01-01T03:00", "--until", "2025-01-01T01:00"]) == EXIT_CONFIG
    assert "--from is not before --until" in capsys.readouterr().err


@pytest.mark.parametrize("season", ["0", "-3"])
def test_backtest_season_below_one_is_refused(tmp_path: Path, season: str, capsys: pytest.CaptureFixture[str]) -> None:
    """``--season -3`` was used as is for seasonal naive and MASE (exit 0); ``--season 0`` became the default."""
    args = ["backtest", "--config", str(_config(tmp_path)), "--data", str(_export(tmp_path)), "--skip", "base"]
    assert main([*args, "--origins", "2", "--season", season, "--out", str(tmp_path / "bt")]) == EXIT_CONFIG
    assert "--season" in capsys.readouterr().err
    assert not (tmp_path / "bt").exists()


def test_a_skab_file_with_a_header_only_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A SKAB file cut after its header was an IndexError traceback."""
    for group in ("valve1", "valve2", "other"):
        (tmp_path / "skab" / group).mkdir(parents=True)
    header = "datetime;Accelerometer1RMS;Current;anomaly;changepoint\n"
    (tmp_path / "skab" / "valve1" / "1.csv").write_text(header, encoding="utf-8")
    args = ["evaluate", "--dataset", "skab", "--data", str(tmp_path), "--forecaster", "holt", "--no-ablation"]
    assert main([*args, "--out", str(tmp_path / "ev")]) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert "1.csv" in err and "no data rows" in err


TWO_ROWS = "timestamp,value\n2024-01-01 00:00:00,1\n2024-01-01 00:05:00,2\n"
NAB_CASES = {
    "header only": ("timestamp,value\n", {"f.csv": []}, "fewer than two distinct timestamps"),
    "bad date": ("timestamp,value\nyesterday,1\n", {"f.csv": []}, "not a date-time: 'yesterday'"),
    "labels a list": ("timestamp,value\n", [1, 2], "naming at least one file"),
    "labels empty": ("timestamp,value\n", {}, "naming at least one file"),
    "bad window": ("timestamp,value\n", {"f.csv": [["x"]]}, "expected a list of [start, end] windows"),
    "window not a date": (TWO_ROWS, {"f.csv": [["x", "y"]]}, "not a date-time"),
}


@pytest.mark.parametrize("case", NAB_CASES)
def test_evaluate_nab_names_a_bad_data_or_labels_file(
    tmp_path: Path, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each was a ValueError/TypeError traceback, or (no file labelled) an empty report with exit 0."""
    import json

    text, labels, message = NAB_CASES[case]
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "f.csv").write_text(text, encoding="utf-8")
    (tmp_path / "labels.json").write_text(json.dumps(labels), encoding="utf-8")
    args = ["evaluate", "--dataset", "nab", "--data", str(tmp_path / "data"), "--labels", str(tmp_path / "labels.json")]
    assert main([*args, "--forecaster", "holt", "--out", str(tmp_path / "ev")]) == EXIT_CONFIG
    assert message in capsys.readouterr().err


def test_an_adapters_dir_under_a_file_is_refused_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """forecast.adapters_dir set to a file: the save failed with NotADirectoryError after the whole training."""
    export = _export(tmp_path)
    args = _finetune(tmp_path, export)
    config = Path(args[2])
    config.write_text(config.read_text(encoding="utf-8") + f'[forecast]\nadapters_dir = "{export}"\n', "utf-8")
    assert main(args) == EXIT_CONFIG
    assert "forecast.adapters_dir" in capsys.readouterr().err
    assert export.is_file()


def test_evaluate_skab_with_an_adapter_folder_missing_its_files_is_a_model_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The manifest reads, the adapter does not load: was a ModelError traceback (exit 1) after the headline row."""
    for group in ("valve1", "valve2", "other"):
        (tmp_path / "skab" / group).mkdir(parents=True)
    t = np.arange(120)
    rows = [f"2020-03-09 10:{34 + k // 60:02d}:{k % 60:02d};{np.sin(k / 5):.4f};{np.cos(k / 7):.4f};0;0" for k in t]
    header = "datetime;Accelerometer1RMS;Current;anomaly;changepoint\n"
    (tmp_path / "skab" / "valve1" / "1.csv").write_text(header + "\n".join(rows) + "\n", encoding="utf-8")
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "manifest.json").write_text("{}", encoding="utf-8")
    args = ["evaluate", "--dataset", "skab", "--data", str(tmp_path), "--forecaster", "holt", "--no-ablation"]
    args += ["--asset-adapter", str(adapter), "--asset-adapter-masks", "0", "--out", str(tmp_path / "ev")]
    assert main(args) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert "model error" in err and "adapter_config.json" in err


def test_a_damaged_forecast_cache_is_recomputed_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A cache file cut short (a full disk, a killed run) was a BadZipFile traceback; it only saves time."""
    import json

    (tmp_path / "data").mkdir()
    rows = [f"2024-01-01 {k // 12:02d}:{5 * (k % 12):02d}:00,{np.sin(k / 6):.4f}" for k in range(240)]
    (tmp_path / "data" / "f.csv").write_text("timestamp,value\n" + "\n".join(rows) + "\n", encoding="utf-8")
    (tmp_path / "labels.json").write_text(json.dumps({"f.csv": []}), encoding="utf-8")
    cache = tmp_path / "cache"
    args = ["evaluate", "--dataset", "nab", "--data", str(tmp_path / "data"), "--labels", str(tmp_path / "labels.json")]
    args += ["--forecasters", "holt", "--forecast-cache", str(cache), "--out", str(tmp_path / "ev")]
    assert main(args) == 0
    saved = sorted(cache.rglob("*.npz"))
    assert saved
    for path in saved:
        path.write_bytes(path.read_bytes()[:100])
    capsys.readouterr()
    assert main(args) == 0
    err = capsys.readouterr().err  # the CLI's logging set-up writes to stderr
    assert "unreadable" in err and "computed again" in err


def test_a_damaged_or_foreign_pickle_cache_is_ignored(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import logging
    import pickle

    from sentinelle.evaluation.cache_files import read_pickle
    from sentinelle.evaluation.replay import SharedForecasters

    cut, foreign, good = tmp_path / "cut.pkl", tmp_path / "list.pkl", tmp_path / "good.pkl"
    cut.write_bytes(pickle.dumps({b"k": 1.0})[:10])
    foreign.write_bytes(pickle.dumps([1, 2]))
    good.write_bytes(pickle.dumps({b"k": 1.0}))
    with caplog.at_level(logging.WARNING, logger="sentinelle"):
        assert read_pickle(cut) is None and read_pickle(foreign) is None and read_pickle(tmp_path / "none") is None
    assert read_pickle(good) == {b"k": 1.0}
    assert caplog.text.count("unreadable") == 2
    shared = SharedForecasters(cache_dir=tmp_path)
    path = shared._path("holt")
    assert path is not None
    path.write_bytes(b"not a pickle")
    assert shared._load("holt") == {}


def test_evaluate_skab_checks_the_report_it_carries_rows_from_before_the_replay(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A damaged <out>/report.json was a JSONDecodeError traceback at the very end of the replay."""
    (tmp_path / "ev").mkdir()
    (tmp_path / "ev" / "report.json").write_text('{"runs": [', encoding="utf-8")
    args = ["evaluate", "--dataset", "skab", "--data", str(tmp_path / "nothere"), "--forecaster", "holt"]
    assert main([*args, "--out", str(tmp_path / "ev")]) == EXIT_CONFIG
    assert "report.json (rows are carried over from it) does not read" in capsys.readouterr().err


def test_a_history_database_that_is_down_is_service_unavailable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """finetune's PostgreSQL history refusing connections was a SourceUnavailable traceback (exit 1): now 69."""
    import socket

    from sentinelle.cli import EXIT_UNAVAILABLE

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = _config(tmp_path)
    source = (
        f'[[history.sources]]\nkind = "postgres"\ndsn = "postgresql://u@127.0.0.1:{port}/db"\nconnect_timeout_s = 2\n'
    )
    config.write_text(config.read_text(encoding="utf-8") + source, encoding="utf-8")
    args = ["finetune", "--config", str(config), "--asset", "pump1", "--base", str(TINY), "--out", str(tmp_path / "a")]
    assert main(args) == EXIT_UNAVAILABLE
    err = capsys.readouterr().err
    assert "service unavailable" in err and "cannot connect to PostgreSQL" in err and "Traceback" not in err
