"""The command line: ``sentinelle run | simulate | demo | check-config | pretrain``.

Exit codes (uvicorn-style, and ``RestartPreventExitStatus=78`` in the systemd unit):
0 clean stop, 1 a bug, 69 a required service unavailable at start (EX_UNAVAILABLE),
78 bad configuration (EX_CONFIG).  Heavy imports (asyncua, aiokafka, torch) happen
inside the commands, so ``--help`` and ``check-config`` stay fast.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .errors import ConfigError, SentinelleError, ServiceUnavailable
from .settings import FaultSettings, Settings, load_settings

EXIT_OK, EXIT_BUG, EXIT_UNAVAILABLE, EXIT_CONFIG = 0, 1, 69, 78

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
    return p


def _sim_args(p: argparse.ArgumentParser, *, demo: bool = False) -> None:
    p.add_argument("--config", type=Path, default=None, help="TOML settings file (its [simulator] section)")
    p.add_argument("--port", type=int, default=0 if demo else None, help="OPC-UA port (0: any free port)")
    p.add_argument(
        "--time-scale", type=float, default=10.0 if demo else None, help="simulated seconds per real second"
    )
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
    return sim


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
            _setup_logging(settings.daemon.log_level)
            return asyncio.run(_run(settings))
        if args.command == "simulate":
            base = load_settings(args.config)
            settings = load_settings(args.config, simulator=_simulator_overrides(args, base))
            _setup_logging(settings.daemon.log_level)
            return asyncio.run(_simulate(settings))
        if args.command == "demo":
            return _demo(args)
        if args.command == "pretrain":
            return _pretrain(args)
    except ConfigError as e:
        print(f"sentinelle: configuration error: {e}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return EXIT_OK
    return EXIT_BUG


def _check_config(path: Path) -> int:
    settings = load_settings(path)
    assets = sorted({t.asset for t in settings.tags})
    print(f"{path}: OK")
    print(f"  sources: {', '.join(f'{s.name} ({s.url})' for s in settings.sources)}")
    print(f"  tags: {len(settings.tags)} on {len(assets)} assets ({', '.join(assets[:10])})")
    print(f"  forecaster: {settings.forecast.forecaster}, horizon {settings.forecast.horizon_steps} steps")
    kafka = settings.kafka
    print(f"  kafka: {'topic ' + kafka.topic + ' on ' + kafka.bootstrap_servers if kafka.enabled else 'disabled'}")
    prom = settings.prometheus
    print(f"  metrics: {f'http://{prom.host}:{prom.port}/metrics' if prom.enabled else 'disabled'}")
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
    from .app import Daemon, run_until_signalled

    try:
        await run_until_signalled(Daemon(settings))
    except (Exception, ExceptionGroup) as e:
        return _exit_code_for(e)
    return EXIT_OK


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
    from .sim.server import ChillerServer, chiller_tags

    async with ChillerServer(base.simulator) as srv:
        sim_task = asyncio.create_task(srv.run(), name="simulator")
        settings = load_settings(
            args.config,
            simulator=base.simulator,
            tags=chiller_tags(base.simulator),
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
