"""The command line: ``sentinelle run | simulate | demo | check-config | make-cert | pretrain | finetune | backtest |
evaluate``.

Exit codes (uvicorn-style, and ``RestartPreventExitStatus=78`` in the systemd unit):
0 clean stop, 1 a bug, 69 a required service unavailable at start (EX_UNAVAILABLE),
75 stopped, but alert events were dropped during the run (EX_TEMPFAIL: spool full or
unusable, see ``sentinelle_sink_events_dropped_total``), 78 bad configuration (EX_CONFIG).
Heavy imports (asyncua, aiokafka, torch) happen inside the commands, so ``--help`` and ``check-config`` stay fast.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as _dt
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .config_checks import check_runnable
from .errors import ConfigError, SentinelleError, ServiceUnavailable
from .settings import FaultSettings, Settings, load_settings, read_toml
from .settings_sources import secrets_in, secrets_set

EXIT_OK, EXIT_BUG, EXIT_UNAVAILABLE, EXIT_CONFIG = 0, 1, 69, 78
EXIT_ALERTS_DROPPED = 75

log = logging.getLogger("sentinelle")

DEMO_FAULTS = (FaultSettings(kind="setpoint_violation", onset_s=200.0, duration_s=300.0),)
"""At the demo's 10x time scale the fault starts 20 s after launch; its alerts follow within seconds."""


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
        help="headline forecaster (default: model, the daemon's default)",
    )
    ev.add_argument("--out", type=Path, default=None, help="report folder (default: evaluations/<dataset>)")
    ev.add_argument("--no-ablation", action="store_true", help="only the headline configuration")
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
        help="nab: keep each file's forecasts here; a re-run on the same windows reuses them (detection re-runs)",
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
        "--ablation-forecasters",
        nargs="+",
        default=["holt", "model"],
        choices=["holt", "naive", "model"],
        help="chiller: forecasters of the ablation besides the headline's (each on every run)",
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


def _simulator_overrides(args: argparse.Namespace, base: Settings) -> dict[str, Any]:
    sim = base.simulator.model_dump()
    for key, attr in (("port", "port"), ("time_scale", "time_scale"), ("seed", "seed"), ("extra_tags", "extra_tags")):
        if getattr(args, attr) is not None:
            sim[key] = getattr(args, attr)
    if args.fault is not None:
        sim["faults"] = [f.model_dump() for f in args.fault]
    if args.ground_truth is not None:
        sim["ground_truth_path"] = args.ground_truth
    security = {
        "security_policies": "security_policy",
        "certificate_path": "certificate",
        "private_key_path": "private_key",
        "trusted_client_certs_dir": "trusted_client_certs",
        "username": "username",
    }
    for key, attr in security.items():
        if getattr(args, attr, None) is not None:
            sim[key] = getattr(args, attr)
    return sim


def _make_cert(args: argparse.Namespace) -> int:
    from .sources.opcua_security import CLIENT_APPLICATION_URI, describe_certificate, make_certificate

    uri = args.application_uri or ("urn:sentinelle:sim:server" if args.server else CLIENT_APPLICATION_URI)
    if args.days < 1:
        raise ConfigError("--days must be at least 1")
    cert = make_certificate(
        args.cert, args.key, application_uri=uri, hostnames=args.hostname or (), days=args.days, server=args.server
    )
    print(f"wrote {args.cert} and {args.key}")
    print(f"  {describe_certificate(cert)}")
    if not args.server:
        print("  give the certificate to the OPC-UA server's admin to trust; in the source's settings:")
        print(f'    certificate_path = "{args.cert.resolve()}"')
        print(f'    private_key_path = "{args.key.resolve()}"')
    return EXIT_OK


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", stream=sys.stderr, force=True
    )
    # asyncua logs every publish response at INFO; our own source logs what matters.
    logging.getLogger("asyncua").setLevel(max(logging.WARNING, logging.getLevelName(level)))
    # aiokafka logs every retry (~10/s while a broker is down); the Kafka sink logs one line per failure.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "check-config":
            return _check_config(args.config)
        if args.command == "run":
            settings = load_settings(args.config)
            check_runnable(settings)
            _setup_logging(settings.daemon.log_level)
            return _exit_now_if_compute_lingers(asyncio.run(_run(settings)))
        if args.command == "simulate":
            base = load_settings(args.config)
            settings = load_settings(args.config, simulator=_simulator_overrides(args, base))
            _setup_logging(settings.daemon.log_level)
            return asyncio.run(_simulate(settings))
        if args.command == "demo":
            return _demo(args)
        if args.command == "make-cert":
            return _make_cert(args)
        if args.command == "pretrain":
            return _pretrain(args)
        if args.command == "finetune":
            return _finetune(args)
        if args.command == "backtest":
            return _backtest(args)
        if args.command == "evaluate":
            return _evaluate(args)
    except ConfigError as e:
        print(f"sentinelle: configuration error: {e}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return EXIT_OK
    return EXIT_BUG


def _check_config(path: Path) -> int:
    from .config_summary import summary_lines, warning_lines

    settings = load_settings(path)
    check_runnable(settings)
    print(f"{path}: OK")
    for line in summary_lines(settings):
        print(f"  {line}")
    print(f"  secrets set (values not shown): {', '.join(secrets_set(settings)) or 'none'}")
    for line in warning_lines(settings):
        print(f"  {line}")
    for where in secrets_in(read_toml(path), Settings):
        print(f"  warning: {where} is written in {path}: a secret file (LoadCredential=) keeps it out of the settings")
    return EXIT_OK


def _pretrain(args: argparse.Namespace) -> int:
    from .forecast.pretrain_settings import load_pretrain_settings

    train: dict[str, Any] = {}
    if args.out is not None:
        train["out_dir"] = args.out
    if args.max_minutes is not None:
        train["max_minutes"] = args.max_minutes
    if args.steps is not None:
        train["steps"] = args.steps
    # Validated before torch is imported: a typo costs a second, not a slow start.
    settings = load_pretrain_settings(args.config, train=train)
    _setup_logging("INFO")
    from .forecast.train import pretrain

    result = pretrain(settings, progress=not args.no_progress)
    best = result.best_validation
    print(
        f"pretrained {result.parameters / 1e6:.2f} M parameters for {result.steps} steps in "
        f"{result.wall_seconds / 60:.1f} min on {result.device} ({result.stopped_by}); "
        f"best step {result.best_step}: pinball {best['pinball']:.4f}, MASE {best['mase']:.3f} "
        f"(naive {best['naive_mase']:.3f}); saved in {result.out_dir}"
    )
    return EXIT_OK


def _history_for(
    args: argparse.Namespace,
    settings: Settings,
    asset: str | None,
    start: float | None = None,
    end: float | None = None,
) -> list[Any]:
    """The history as regular-grid series (``start <= ts < end``): the asset's configured tags, or ``--tags``, or all.

    Read from the configured ``[[history.sources]]`` — the backfill's own configuration — so
    fine-tuning and backtests see the tags under their configured names; ``--data`` points
    such a source at another export (same format, columns and tag map), and only without
    a configured file source is an export's format guessed from its header.
    """
    from .evaluation.history_data import cut, load_dataset, load_history, load_sources

    if args.dataset is not None:
        series = load_dataset(args.dataset)
        picked = [s for s in series if args.tags is None or s.name in args.tags or s.name.split("/")[-1] in args.tags]
        return cut(picked, start=start, end=end)
    configured = [t for t in settings.tags if asset is not None and t.asset == asset]
    tags = args.tags or [t.name for t in configured] or None
    sources = _history_sources(args, settings)
    where = str(args.data) if args.data is not None else ", ".join(s.label for s in sources or ())
    if asset is not None and not configured and args.tags is None:
        log.warning("no tags of asset %r in the config: reading every tag of %s", asset, where)
    periods = {t.name: t.period_s for t in settings.tags}
    units = {t.name: t.unit for t in settings.tags}
    if sources is None:
        series = load_history(
            args.data, tags=tags, periods=periods, units=units, default_period_s=args.period_s, timezone=args.timezone
        )
        return cut(series, start=start, end=end)
    return load_sources(
        sources,
        tags=tags,
        periods=periods,
        units=units,
        default_period_s=args.period_s,
        start=start,
        end=end,
        where=where,
    )


def _history_sources(args: argparse.Namespace, settings: Settings) -> list[Any] | None:
    """The configured history sources to read (``--source`` picks), ``--data`` put in a file source's place.

    None: ``--data`` with no configured file source to read it with (its format is then guessed).
    """
    configured = list(settings.history.sources)
    if args.source:
        known = {s.label for s in configured}
        unknown = [name for name in args.source if name not in known]
        if unknown:
            raise ConfigError(
                f"no history source named {unknown} (configured: {sorted(known) or 'none'})", field="--source"
            )
        configured = [s for s in configured if s.label in args.source]
    if args.data is None:
        if not configured:
            raise ConfigError(
                "no history to read: configure [[history.sources]] or give --data or --dataset", field="data"
            )
        return configured
    files = [s for s in configured if s.kind != "postgres"]
    if not files:
        return None
    if len(files) > 1:
        names = ", ".join(s.label for s in files)
        raise ConfigError(
            f"--data: several file sources are configured ({names}); pick one with --source", field="data"
        )
    source = files[0]
    suffix = ".parquet" if source.kind == "parquet" else ".csv"
    if args.data.is_dir():
        paths = sorted(p for p in args.data.iterdir() if p.suffix.lower() == suffix and p.is_file())
        if not paths:
            raise ConfigError(f"folder holds no {suffix} file", field=str(args.data))
    elif args.data.is_file():
        paths = [args.data]
    else:
        raise ConfigError("file or folder not found", field=str(args.data))
    log.info("reading %s as history source %s (%s, its tag map and dates)", args.data, source.label, source.kind)
    return [source.model_copy(update={"path": p}) for p in paths]


def _base_checkpoint(args: argparse.Namespace, settings: Settings) -> Path:
    from .forecast import SHIPPED_CHECKPOINT

    return Path(args.base or settings.forecast.model_path or SHIPPED_CHECKPOINT)


def _finetune(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from .evaluation.history_data import dataset_training_cutoff, parse_date
    from .settings import FinetuneSettings

    settings = load_settings(args.config)
    _setup_logging("INFO")
    asset: str = args.asset
    if not asset or asset.startswith(".") or "/" in asset or "\\" in asset:
        raise ConfigError(f"{asset!r} cannot name an adapter folder", field="--asset")
    out = args.out
    if out is None:
        if settings.forecast.adapters_dir is None:
            raise ConfigError("set forecast.adapters_dir in the config or give --out", field="forecast.adapters_dir")
        out = settings.forecast.adapters_dir / asset
    overrides: dict[str, Any] = {}
    if args.max_minutes is not None:
        overrides["max_minutes"] = args.max_minutes
    if args.steps is not None:
        overrides["max_steps"] = args.steps
    if args.season is not None:
        overrides["season_steps"] = args.season
    elif args.dataset == "electricity":
        overrides["season_steps"] = 7
    try:
        ft = FinetuneSettings.model_validate({**settings.finetune.model_dump(), **overrides})
    except ValidationError as e:
        err = e.errors()[0]
        raise ConfigError(str(err["msg"]), field="finetune." + ".".join(map(str, err["loc"]))) from None
    start = parse_date(args.start) if args.start is not None else None
    until = parse_date(args.until) if args.until is not None else None
    held_out = dataset_training_cutoff(args.dataset) if args.dataset else None
    if held_out is not None and (until is None or until > held_out):
        # The public datasets' held-out parts are for evaluation only (evaluation/heldout.py).
        log.info(
            "dataset %s: training data ends before %s (held out)",
            args.dataset,
            _dt.datetime.fromtimestamp(held_out, _dt.UTC).date(),
        )
        until = held_out
    # Data and settings are checked before torch is imported: a typo costs a second, not a slow start.
    series = _history_for(args, settings, asset, start=start, end=until)
    if not series:
        raise ConfigError("no data between --from and --until", field="data")
    from .errors import ModelError
    from .forecast.finetune import finetune

    try:
        result = finetune(
            _base_checkpoint(args, settings),
            series,
            ft,
            asset=asset,
            out_dir=out,
            progress=not args.no_progress,
            device=args.device,
        )
    except ModelError as e:
        print(f"sentinelle: model error: {e}", file=sys.stderr)
        return EXIT_CONFIG
    b, a = result.before, result.after
    print(
        f"adapter for {asset} saved in {result.out_dir}: {result.steps} steps ({result.stopped_by}), best step "
        f"{result.best_step}, {result.trainable_parameters} LoRA parameters, {result.wall_seconds:.0f} s; "
        f"validation ({result.validation_windows} windows) MASE {b['mase']:.3f} -> {a['mase']:.3f}, "
        f"WQL {b['wql']:.4f} -> {a['wql']:.4f} (base -> adapted)"
        + ("" if result.improved else "; no improvement: the adapter is a no-op")
    )
    return EXIT_OK


def _evaluate(args: argparse.Namespace) -> int:
    if args.dataset == "chiller":
        return _evaluate_chiller(args)
    if args.dataset == "lbnl":
        return _evaluate_lbnl(args)
    if args.dataset == "nab":
        return _evaluate_nab(args)
    return _evaluate_skab(args)


def _evaluation_meta() -> dict[str, Any]:
    import platform

    return {
        "generated": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPUs",
    }


def _evaluate_chiller(args: argparse.Namespace) -> int:
    from .evaluation.chiller_eval import run_evaluation

    _setup_logging("INFO")
    out = args.out or Path("evaluations") / "chiller"
    head = run_evaluation(
        out,
        runs_per_kind=args.runs_per_kind,
        fault_free_runs=args.fault_free_runs,
        fault_free_s=args.fault_free_s,
        forecaster=args.forecaster,
        ablation_forecasters=args.ablation_forecasters,
        ablation=not args.no_ablation,
        meta=_evaluation_meta(),
        log=log.info,
    )
    print(
        f"{head.label}: {head.kinds_detected}/{len(head.kinds)} fault kinds detected, "
        f"{head.false_alarms_per_day:.1f} false alarms/day, {head.rate.mean_per_10_min:.2f} alerts/10 min "
        f"-> {out}/report.md"
    )
    return EXIT_OK


def _evaluate_lbnl(args: argparse.Namespace) -> int:
    from .evaluation.lbnl import run_evaluation

    _setup_logging("INFO")
    data = args.data.parent if args.data is not None and args.data.name == "lbnl_ahu_fdd" else args.data
    out = args.out or Path("evaluations") / "lbnl"
    head = run_evaluation(
        out, data, forecaster=args.forecaster, ablation=not args.no_ablation, meta=_evaluation_meta(), log=log.info
    )
    print(f"{head.label}: {head.summary()['days']} -> {out}/report.md")
    return EXIT_OK


def _git_commit() -> str:
    """The checkout's commit, with "+changes" when its tracked files differ from it ("?" outside git)."""
    import subprocess

    here = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=here, capture_output=True, text=True)
        dirty = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", "."], cwd=here, check=False)
    except OSError:
        return "?"
    if rev.returncode != 0:
        return "?"
    return rev.stdout.strip() + ("+changes" if dirty.returncode else "")


def _evaluate_nab(args: argparse.Namespace) -> int:
    import time

    from .evaluation.nab_corpus import load_corpus
    from .evaluation.nab_stream import evaluate_nab, write_report

    _setup_logging("INFO")
    data = args.data
    if data is not None and (data / "data").is_dir():
        data = data / "data"  # the NAB checkout itself
    out = args.out or Path("evaluations") / "nab"
    files = load_corpus(data, args.labels)
    forecasters = args.forecasters or list(dict.fromkeys([args.forecaster, "holt"]))
    started = time.perf_counter()
    result = evaluate_nab(
        files,
        forecasters,
        args.results_dir or out / "results",
        log=log.info,
        forecast_cache=args.forecast_cache,
        only={"model": args.model_files},
        refresh={"model": args.model_refresh_steps},
    )
    meta = {
        **_evaluation_meta(),
        "dataset": "nab",
        "commit": _git_commit(),
        "seconds": round(time.perf_counter() - started, 1),
    }
    write_report(out, result, meta)
    for fr in result["forecasters"].values():
        for det, sc in fr["detectors"].items():
            parts = [
                f"{split} {sc[split]['standard']['score']} / {sc[split]['reward_low_fp']['score']} / "
                f"{sc[split]['reward_low_fn']['score']}"
                for split in ("held_out", "tuning", "all")
                if sc[split] is not None
            ]
            print(f"{det}: " + ", ".join(parts))
    print(f"-> {out}/report.md")
    return EXIT_OK


def _evaluate_skab(args: argparse.Namespace) -> int:
    import platform
    import time

    from .evaluation.replay import SharedForecasters, replay_settings
    from .evaluation.skab import PLOT_FILES, ablation_runs, evaluate_skab, plot_file, skab_recordings, write_report
    from .settings import DetectSettings

    _setup_logging("INFO")
    data = args.data.parent if args.data is not None and args.data.name == "skab" else args.data
    out = args.out or Path("evaluations") / args.dataset
    recordings = skab_recordings(data)
    runs = ablation_runs(args.forecaster)[: 1 if args.no_ablation else None]
    started = time.perf_counter()
    results = []
    shared = SharedForecasters()  # each forecaster's forecasts computed once, for every row
    for label, forecaster, overrides in runs:
        log.info("evaluate: %s", label)
        settings = replay_settings(forecaster, DetectSettings(**overrides))
        results.append(evaluate_skab(recordings, settings, label, forecaster=shared[forecaster]))
    meta = {
        "dataset": "skab",
        "generated": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {platform.python_implementation()} {platform.python_version()}",
        "seconds": round(time.perf_counter() - started, 1),
    }
    write_report(results, out, meta)
    by_name = {r.name: r for r in recordings}
    for fr in results[0].files:
        if fr.name in PLOT_FILES:
            plot_file(by_name[fr.name], fr, out)
    head = results[0]
    print(f"{head.label}: F1 {head.outlier.rounded()['f1']}, NAB standard {head.nab['standard']} -> {out}/report.md")
    return EXIT_OK


def _backtest(args: argparse.Namespace) -> int:
    import json
    import time

    from .evaluation.history_data import parse_date

    settings = load_settings(args.config)
    _setup_logging("INFO")
    start = parse_date(args.start) if args.start is not None else None
    end = parse_date(args.until) if args.until is not None else None
    adapter_asset = last = None
    if args.adapter is not None:
        try:
            manifest = json.loads((args.adapter / "manifest.json").read_text(encoding="utf-8"))
            adapter_asset, last = manifest.get("asset"), manifest.get("data", {}).get("last")
        except (OSError, ValueError) as e:
            print(f"sentinelle: model error: {args.adapter / 'manifest.json'}: unreadable ({e})", file=sys.stderr)
            return EXIT_CONFIG
    series = _history_for(args, settings, args.asset or adapter_asset, end=end)
    if args.adapter is not None and start is None and last:
        # Scoring the adapter on the data it was trained on would flatter it: origins start one
        # period after its last training sample.
        start = parse_date(last.replace("Z", "+00:00")) + min(s.period_s for s in series)
        log.info("backtest: origins after the adapter's training data (%s)", last)
    season = args.season or (7 if args.dataset == "electricity" else settings.forecast.season_steps or 1)
    horizons = tuple(args.horizons or sorted({1, settings.forecast.horizon_steps}))
    from .errors import ModelError
    from .evaluation.backtest import BacktestPlan, baseline_forecasters, model_forecasters, run_backtest, write_report

    plan = BacktestPlan(
        horizons=horizons, origins=args.origins, start=start, end=end, context_steps=args.context, season=season
    )
    forecasters: dict[str, Any] = {}
    base = _base_checkpoint(args, settings)
    try:
        if "base" not in args.skip:
            forecasters.update(model_forecasters(base, plan.horizon, adapter=args.adapter, device=args.device))
    except ModelError as e:
        print(f"sentinelle: model error: {e}", file=sys.stderr)
        return EXIT_CONFIG
    forecasters.update(baseline_forecasters(plan.horizon, season, skip=args.skip))
    result = run_backtest(series, forecasters, plan)
    out = args.out or Path("backtests") / time.strftime("%Y%m%dT%H%M%S")
    meta = {
        "data": str(args.data or args.dataset or "the configured history sources"),
        "base model": str(base),
        "adapter": str(args.adapter) if args.adapter else "none",
    }
    write_report(
        result,
        out,
        title=f"Backtest of {args.asset or adapter_asset or args.data or args.dataset or 'the history'}",
        meta=meta,
    )
    for key, per in result.overall.items():
        cells = ", ".join(f"{n} {m['mase']:.3f}" for n, m in per.items())
        print(f"{key}: MASE {cells}")
    print(f"report written to {out / 'report.md'}")
    return EXIT_OK


def _sentinelle_error(exc: BaseException) -> SentinelleError | None:
    """The first SentinelleError inside ``exc`` (TaskGroups wrap errors in ExceptionGroups)."""
    if isinstance(exc, SentinelleError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _sentinelle_error(inner)
            if found is not None:
                return found
    return None


async def _run(settings: Settings) -> int:
    from .app import build, run_until_signalled

    try:
        daemon, runner = build(settings)
        await run_until_signalled(runner)
    except (Exception, ExceptionGroup) as e:
        return _exit_code_for(e)
    dropped = daemon.alert_events_dropped()
    if dropped:
        # Scrapers may be gone by now: the exit status is what tells systemd and the operator.
        log.error("%d alert events were dropped during this run (see the log); exit %d", dropped, EXIT_ALERTS_DROPPED)
        return EXIT_ALERTS_DROPPED
    return EXIT_OK


def _exit_now_if_compute_lingers(code: int) -> int:
    """Exit at once when a forecast is still running on a worker thread after the stop.

    The stop is bounded (the sinks are closed, undelivered alerts spooled), but
    Python joins worker threads at exit, and a model forecast of a backlog can run
    for minutes: systemd would SIGKILL the daemon at ``TimeoutStopSec`` and report a
    failed stop.  Nothing is lost by not waiting for it: its result has nowhere to go.
    """
    import threading

    lingering = [t.name for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    if not lingering:
        return code
    log.warning("not waiting for %s (a forecast still running); exiting with %d", ", ".join(lingering), code)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _exit_code_for(e: BaseException) -> int:
    err = _sentinelle_error(e)
    if isinstance(err, ServiceUnavailable):
        log.error("required service unavailable: %s", err)
        return EXIT_UNAVAILABLE
    if isinstance(err, ConfigError):
        log.error("configuration error: %s", err)
        return EXIT_CONFIG
    log.critical("sentinelle stopped by an unexpected error", exc_info=e)
    return EXIT_BUG


async def _simulate(settings: Settings) -> int:
    from .sim.server import serve

    with contextlib.suppress(asyncio.CancelledError):
        await serve(settings.simulator)
    return EXIT_OK


def _demo(args: argparse.Namespace) -> int:
    base = load_settings(args.config)
    sim = _simulator_overrides(args, base)
    if args.fault is None:
        sim["faults"] = [f.model_dump() for f in DEMO_FAULTS]
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    if args.ground_truth is None:
        sim["ground_truth_path"] = out / "ground_truth.jsonl"
    settings = load_settings(args.config, simulator=sim)
    _setup_logging("WARNING" if not args.no_live else settings.daemon.log_level)
    return asyncio.run(_demo_async(args, settings, out))


async def _demo_async(args: argparse.Namespace, base: Settings, out: Path) -> int:
    from .app import Daemon, run_until_signalled
    from .sim.server import ChillerServer, chiller_asset_rules, chiller_tags

    # The demo monitors the simulator's tags: keep the file's rules for its asset (others name
    # tags the demo does not have), or give it the chiller's energy balance and modes.
    own_rules = tuple(a for a in base.detect.assets if a.name == base.simulator.asset)
    detect = base.detect.model_copy(update={"assets": own_rules or (chiller_asset_rules(base.simulator),)})
    async with ChillerServer(base.simulator) as srv:
        sim_task = asyncio.create_task(srv.run(), name="simulator")
        settings = load_settings(
            args.config,
            simulator=base.simulator,
            tags=chiller_tags(base.simulator),
            detect=detect.model_dump(),
            # Simulated time runs faster than real time: publish often and let the server
            # queue a few values per tag so no simulated sample is lost between publishes.
            sources=[{"name": "plant", "url": srv.url, "publishing_interval_ms": 100.0, "queue_size": 16}],
            kafka={"enabled": False},
            prometheus={"host": "127.0.0.1", "port": args.prometheus_port},
            console={
                "live_view": not args.no_live,
                "jsonl_path": out / "alerts.jsonl",
                "live_view_interval_s": 1.0,
            },
        )
        daemon = Daemon(settings)
        for sink in daemon.sinks:
            if sink.name == "console":
                sink.title = f"sentinelle demo — simulated chiller at {srv.url}, metrics on :{args.prometheus_port}"  # type: ignore[attr-defined]
        stop = asyncio.Event()
        if args.duration_s is not None:
            asyncio.get_running_loop().call_later(args.duration_s, stop.set)
        try:
            await run_until_signalled(daemon, stop)
        except (Exception, ExceptionGroup) as e:
            return _exit_code_for(e)
        finally:
            srv.stop()
            sim_task.cancel()
            await asyncio.gather(sim_task, return_exceptions=True)
    print(f"\nalerts written to {out / 'alerts.jsonl'}, injected faults to {base.simulator.ground_truth_path}")
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
