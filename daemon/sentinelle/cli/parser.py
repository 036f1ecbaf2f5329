"""The argument parser of every command (no heavy import: ``--help`` stays fast)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .. import __version__
from ..settings import FaultSettings


def parse_fault(text: str) -> FaultSettings:
    """``KIND:ONSET_S:DURATION_S[:TAG[:MAGNITUDE]]``, e.g. ``sensor_drift:300:600:chw_temp_c:0.5``."""
    parts = text.split(":")
    if len(parts) < 3:
        raise argparse.ArgumentTypeError(f"fault {text!r}: expected KIND:ONSET_S:DURATION_S[:TAG[:MAGNITUDE]]")
    data: dict[str, Any] = {"kind": parts[0], "onset_s": parts[1], "duration_s": parts[2]}
    if len(parts) > 3 and parts[3]:
        data["tag"] = parts[3]
    if len(parts) > 4 and parts[4]:
        data["magnitude"] = parts[4]
    try:
        return FaultSettings.model_validate(data)
    except Exception as e:  # pydantic's message names the field
        raise argparse.ArgumentTypeError(f"fault {text!r}: {e}") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sentinelle",
        description="On-premises streaming anomaly detection: OPC-UA in, forecasts, alerts to Kafka, metrics.",
    )
    p.add_argument("--version", action="version", version=f"sentinelle {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the daemon", description="Run the daemon until SIGTERM/SIGINT.")
    run.add_argument("--config", type=Path, required=True, help="TOML settings file")

    chk = sub.add_parser(
        "check-config", help="validate a settings file", description="Validate a settings file and summarise it."
    )
    chk.add_argument("config", type=Path, help="TOML settings file")

    sim = sub.add_parser(
        "simulate",
        help="run the chiller OPC-UA simulator alone",
        description="Serve the simulated chiller over OPC-UA until SIGINT/SIGTERM.",
    )
    _sim_args(sim)
    sim.add_argument(
        "--security-policy",
        action="append",
        default=None,
        choices=["None", "Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss"],
        help="endpoint to offer (repeatable; each secured policy with Sign and SignAndEncrypt)",
    )
    sim.add_argument(
        "--certificate", type=Path, default=None, help="server certificate (sentinelle make-cert --server)"
    )
    sim.add_argument("--private-key", type=Path, default=None, help="its private key")
    sim.add_argument("--trusted-client-certs", type=Path, default=None, help="folder of accepted client certificates")
    sim.add_argument("--username", default=None, help="require this user (password: SENTINELLE_SIMULATOR__PASSWORD)")

    mk = sub.add_parser(
        "make-cert",
        help="make an OPC-UA application certificate and key",
        description="Write a self-signed OPC-UA application instance certificate (DER) and its RSA-2048 key "
        "(PEM, mode 0600), with the application URI and host names in its SubjectAltName.",
    )
    mk.add_argument("--cert", type=Path, default=Path("sentinelle-cert.der"), help="certificate file to write")
    mk.add_argument("--key", type=Path, default=Path("sentinelle-key.pem"), help="private key file to write")
    mk.add_argument(
        "--application-uri",
        default=None,
        help="application URI (default urn:sentinelle:client, with --server urn:sentinelle:sim:server)",
    )
    mk.add_argument(
        "--hostname",
        action="append",
        default=None,
        help="host name for the SubjectAltName (repeatable; default: this host's name)",
    )
    mk.add_argument("--days", type=int, default=730, help="validity in days (default 730)")
    mk.add_argument("--server", action="store_true", help="a server certificate (the simulator, test servers)")

    demo = sub.add_parser(
        "demo",
        help="simulator + daemon + live terminal view",
        description="Run the simulated chiller and the daemon together, with a live view; no other service needed.",
    )
    _sim_args(demo, demo=True)
    demo.add_argument("--prometheus-port", type=int, default=9108, help="metrics port (default 9108)")
    demo.add_argument("--out", type=Path, default=Path("sentinelle-demo"), help="folder for alerts and ground truth")
    demo.add_argument("--duration-s", type=float, default=None, help="stop after this many seconds")
    demo.add_argument("--no-live", action="store_true", help="print alert lines instead of the live table")
    demo.add_argument(
        "--asset-model",
        type=Path,
        default=None,
        help="asset-model checkpoint for the 'from others' column (default: forecast.asset_model_path, "
        "else the package's forecast/checkpoints/asset)",
    )
    demo.add_argument("--no-asset-model", action="store_true", help="no estimate from the other tags (saves its CPU)")

    pre = sub.add_parser(
        "pretrain",
        help="train the forecasting model from scratch",
        description="Pretrain the forecasting model on the generated and public corpus; "
        "writes config.json, model.safetensors (best validation) and training.json.",
    )
    pre.add_argument("--config", type=Path, required=True, help="pretraining TOML file (config/pretrain.toml)")
    pre.add_argument("--out", type=Path, default=None, help="output folder (overrides train.out_dir)")
    pre.add_argument("--max-minutes", type=float, default=None, help="wall-clock budget (overrides train.max_minutes)")
    pre.add_argument("--steps", type=int, default=None, help="optimizer steps (overrides train.steps)")
    pre.add_argument("--no-progress", action="store_true", help="no progress bar (logs only)")

    fin = sub.add_parser(
        "finetune",
        help="adapt the model to one asset's history (LoRA)",
        description="Train a LoRA adapter of the model on an asset's history, with a time-ordered validation "
        "split and early stopping; saves it in <forecast.adapters_dir>/<asset>/ (or --out) with a manifest.",
    )
    fin.add_argument("--config", type=Path, required=True, help="daemon TOML file (model, tags, [finetune])")
    fin.add_argument("--asset", required=True, help="asset to adapt; its configured tags are read from the data")
    _data_args(fin)
    fin.add_argument("--from", dest="start", default=None, metavar="DATE", help="use data from this date on only (ISO)")
    fin.add_argument("--until", default=None, metavar="DATE", help="use data before this date only (ISO)")
    fin.add_argument("--base", type=Path, default=None, help="base checkpoint (default: forecast.model_path)")
    fin.add_argument("--out", type=Path, default=None, help="adapter folder (default: <adapters_dir>/<asset>)")
    fin.add_argument(
        "--asset-model",
        action="store_true",
        help="adapt the asset model (forecast.asset_model_path, or --base) instead: the asset's tags together, "
        "their couplings (each tag's estimate from the others now); needs --out",
    )
    fin.add_argument("--max-minutes", type=float, default=None, help="wall-clock budget (finetune.max_minutes)")
    fin.add_argument("--steps", type=int, default=None, help="most optimizer steps (finetune.max_steps)")
    fin.add_argument("--season", type=int, default=None, help="season of the validation MASE, steps")
    fin.add_argument("--no-progress", action="store_true", help="no progress bar (logs only)")

    bt = sub.add_parser(
        "backtest",
        help="rolling-origin backtest: base vs adapted model vs baselines",
        description="Forecast the history from rolling origins with the base model, an adapter and the baselines "
        "(seasonal naive, AutoETS when statsforecast is installed, Holt); writes report.json, report.md and plots.",
    )
    bt.add_argument("--config", type=Path, required=True, help="daemon TOML file (model, tags)")
    _data_args(bt)
    bt.add_argument("--asset", default=None, help="read only this asset's configured tags")
    bt.add_argument("--adapter", type=Path, default=None, help="adapter folder to compare with the base model")
    bt.add_argument("--base", type=Path, default=None, help="base checkpoint (default: forecast.model_path)")
    bt.add_argument("--out", type=Path, default=None, help="report folder (default: backtests/<date-time>)")
    bt.add_argument(
        "--horizons",
        type=int,
        nargs="+",
        default=None,
        help="steps ahead to score (default: 1 and forecast.horizon_steps)",
    )
    bt.add_argument("--origins", type=int, default=20, help="forecast origins per tag (default 20)")
    bt.add_argument(
        "--from",
        dest="start",
        default=None,
        metavar="DATE",
        help="first origin (ISO; default: after the adapter's training data, else the start)",
    )
    bt.add_argument("--until", default=None, metavar="DATE", help="targets end before this date (ISO)")
    bt.add_argument("--season", type=int, default=None, help="season of seasonal naive and MASE, steps")
    bt.add_argument("--context", type=int, default=512, help="context steps given to every forecaster")
    bt.add_argument(
        "--skip",
        nargs="*",
        default=[],
        choices=["base", "seasonal_naive", "autoets", "holt"],
        help="forecasters to leave out",
    )

    ev = sub.add_parser(
        "evaluate",
        help="replay a labelled dataset through the daemon's stages and score its detections",
        description="Replay a labelled dataset through windows, forecaster and detect stage (no look-ahead) and "
        "score the alerts: skab (SKAB's protocol: F1/FAR/MAR, NAB), chiller (the simulator with injected faults: "
        "detection and delay per fault kind, false alarms per day), lbnl (LBNL AHU days: day-level detection), "
        "nab (NAB, or any folder of timestamp,value CSVs with --labels: NAB's result files and scores); "
        "every report gives the alert rate. Writes report.json, report.md and plots.",
    )
    ev.add_argument("--dataset", choices=["skab", "chiller", "lbnl", "nab"], required=True, help="labelled dataset")
    ev.add_argument("--data", type=Path, default=None, help="the dataset's folder (default: shared/data/<dataset>)")
    ev.add_argument(
        "--forecaster",
        choices=["holt", "naive", "model"],
        default="model",
        help="headline forecaster (default: model, the daemon's default; the chiller report runs model and holt)",
    )
    ev.add_argument("--out", type=Path, default=None, help="report folder (default: evaluations/<dataset>)")
    ev.add_argument("--no-ablation", action="store_true", help="only the headline configuration")
    ev.add_argument(
        "--keep-variants",
        action="store_true",
        help="skab: do not re-run the other forecaster's rows, the one-change variants and the previous headline; "
        "carry their rows over from <out>/report.json (for a run that changed neither their code nor settings)",
    )
    ev.add_argument(
        "--asset-adapter",
        type=Path,
        default=None,
        help="skab: run the headline and the asset model's rows with this LoRA adapter of the asset model "
        "(bench/skab/adapt_asset_model.py); every other row is carried over from <out>/report.json",
    )
    ev.add_argument(
        "--asset-adapter-masks",
        type=int,
        nargs="+",
        default=None,
        help="skab: with --asset-adapter, only the adapted rows whose estimate mask is one of these (each mask "
        "costs a dry replay and the model's estimates: on a loaded CPU, 0 alone); default: every row",
    )
    ev.add_argument(
        "--labels",
        type=Path,
        default=None,
        help="nab: labelled windows in NAB's combined_windows.json format (default: <data>/../labels/...)",
    )
    ev.add_argument(
        "--results-dir",
        type=Path,
        default=None,
        help="nab: where NAB's per-row result files go (default: <out>/results)",
    )
    ev.add_argument(
        "--forecast-cache",
        type=Path,
        default=None,
        help="nab, skab: keep the forecasts (skab: and the asset model's estimates) here; a re-run on the same "
        "windows reuses them (detection re-runs)",
    )
    ev.add_argument(
        "--model-files",
        choices=["all", "held_out", "tuning"],
        default="all",
        help="nab: the files the model replays (its forecasts cost ~15 ms each on two CPU cores; the others: all)",
    )
    ev.add_argument(
        "--model-refresh-steps",
        type=int,
        default=1,
        help="nab: the model's forecast.refresh_every_steps (the daemon's mode for a CPU too slow for every tick)",
    )
    ev.add_argument(
        "--forecasters",
        nargs="+",
        default=None,
        choices=["holt", "naive", "model"],
        help="nab: forecasters replayed in one report (default: the headline's, and holt beside it)",
    )
    ev.add_argument("--runs-per-kind", type=int, default=3, help="chiller: runs per fault kind (default 3)")
    ev.add_argument("--fault-free-runs", type=int, default=3, help="chiller: fault-free runs (default 3)")
    ev.add_argument(
        "--fault-free-s",
        type=float,
        default=3600.0,
        help="chiller: scored seconds of each fault-free run (default 3600)",
    )
    ev.add_argument(
        "--first-seed",
        type=int,
        default=2000,
        help="chiller: the plan's first simulator seed (default 2000: the report's unseen seeds 2000..2023)",
    )
    ev.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="chiller: keep the forecasts and asset-model estimates here (pickles) so that a rerun on the same "
        "runs pays only for detection",
    )
    ev.add_argument(
        "--model-threads",
        type=int,
        default=None,
        help="chiller, nab: torch CPU threads for the models (1 on a shared machine; default: torch's)",
    )
    ev.add_argument(
        "--workers",
        type=int,
        default=1,
        help="nab: processes replaying the files, each its share (files are independent; same results)",
    )
    ev.add_argument(
        "--without-model-rows",
        action="store_true",
        help="chiller: leave out the univariate model's rows (the shipped and residuals-alone model rows)",
    )
    ev.add_argument(
        "--asset-forecaster",
        choices=["holt", "model"],
        default="model",
        help="chiller: the forecaster of the asset-model rows (their residual and horizon parts; default model)",
    )
    ev.add_argument(
        "--asset-ewma-alpha",
        type=float,
        default=None,
        help="chiller: one more asset-model row with detect.asset_estimate_ewma_alpha at this weight",
    )
    ev.add_argument(
        "--asset-mask-recent-steps",
        type=int,
        default=0,
        help="chiller: one more asset-model row whose estimate reads the contexts only up to this many slots "
        "before now (forecast.asset_mask_recent_steps; default 0: no such row)",
    )
    ev.add_argument(
        "--asset-estimate-every-steps",
        type=int,
        default=1,
        help="chiller: that row's asset model run on one slot in this many (forecast.asset_estimate_every_steps)",
    )
    ev.add_argument(
        "--asset-blind-set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="chiller: with --asset-mask-recent-steps, one more blind-estimate row with these detect settings "
        "(repeatable; VALUE as JSON), e.g. asset_estimate_open_k=16 asset_estimate_open_n=24",
    )
    ev.add_argument(
        "--model-budget-s",
        type=float,
        default=None,
        help="chiller: after this many seconds the rows that need a model take no new run (the report says on "
        "which runs each row ran); default: no limit",
    )
    return p


def _data_args(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group()
    src.add_argument(
        "--data",
        type=Path,
        help="an export (file or folder) read with the configured history source's format, columns and tag map; "
        "with no file source configured: a wide or event-log CSV export, or a folder of them "
        "(default: the configured [[history.sources]] as they are)",
    )
    src.add_argument("--dataset", choices=["electricity"], help="a public dataset of shared/data instead")
    p.add_argument(
        "--source",
        action="append",
        default=None,
        metavar="NAME",
        help="read only this configured history source (repeatable; default: all of them)",
    )
    p.add_argument("--tags", nargs="+", default=None, help="tags to read (default: the asset's configured tags)")
    p.add_argument("--period-s", type=float, default=None, help="resampling period of tags not in the config")
    p.add_argument("--timezone", default="UTC", help="zone of dates written without an offset (IANA name)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="cpu", help="where the model runs")


def _sim_args(p: argparse.ArgumentParser, *, demo: bool = False) -> None:
    p.add_argument("--config", type=Path, default=None, help="TOML settings file (its [simulator] section)")
    p.add_argument("--port", type=int, default=0 if demo else None, help="OPC-UA port (0: any free port)")
    p.add_argument("--time-scale", type=float, default=10.0 if demo else None, help="simulated seconds per real second")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--extra-tags", type=int, default=None, help="add N synthetic tags (benchmarks)")
    p.add_argument(
        "--fault",
        type=parse_fault,
        action="append",
        default=None,
        metavar="KIND:ONSET_S:DURATION_S[:TAG[:MAGNITUDE]]",
        help="inject a fault (repeatable); kinds: pump_degradation, sensor_drift, stuck_sensor, spike, "
        "setpoint_violation, fouling, control_oscillation",
    )
    p.add_argument("--ground-truth", type=Path, default=None, help="write fault intervals here (JSON lines)")
