"""The daemon's commands: ``run``, ``simulate``, ``demo``, ``check-config``, ``make-cert``, and how
an error becomes an exit code."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from pathlib import Path
from typing import Any

from ..config_checks import check_runnable
from ..errors import ConfigError, SentinelleError, ServiceUnavailable
from ..settings import FaultSettings, Settings, load_settings, read_toml
from ..settings_sources import secrets_in, secrets_set
from .common import EXIT_ALERTS_DROPPED, EXIT_BUG, EXIT_CONFIG, EXIT_OK, EXIT_UNAVAILABLE, _setup_logging, log

DEMO_FAULTS = (FaultSettings(kind="setpoint_violation", onset_s=200.0, duration_s=300.0),)
"""At the demo's 10x time scale the fault starts 20 s after launch; its alerts follow within seconds."""


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
    from ..sources.opcua_security import CLIENT_APPLICATION_URI, describe_certificate, make_certificate

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


def _check_config(path: Path) -> int:
    from ..config_summary import summary_lines, warning_lines

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
    from ..app import build, run_until_signalled

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
    from ..sim.server import serve

    with contextlib.suppress(asyncio.CancelledError):
        await serve(settings.simulator)
    return EXIT_OK


def _demo_asset_model(args: argparse.Namespace, base: Settings) -> tuple[dict[str, Any], dict[str, Any]]:
    """The demo's forecast settings and detect updates: the file's, with the asset model on ("from others").

    The simulator's seven tags are one asset (``simulator.asset``, :func:`~..sim.server.chiller_tags`),
    so the asset model estimates each from the other six.  Its checkpoint: ``--asset-model``, else the
    file's ``forecast.asset_model_path``, else the package's (read locally, never downloaded);
    ``--no-asset-model`` turns it off.

    One estimate per real second (the live view's redraw), not one per slot: at the demo's 10x time
    scale a slot every 0.1 s would cost 230 ms of CPU a second on one thread, and on a shared machine
    (load 8 on 2 cores, torch's default 2 threads) one estimate took 195 ms of CPU and 480 ms of wall
    time, so estimating every slot let detection fall ever further behind (26 of some 600 ticks detected in
    the first minute, 15 s late on average; 2026-12-07, demo at 10x).  The estimate then stands for the
    slots between (``forecast.asset_estimate_every_steps``), so its alerts open on 3 of the last 5
    *estimates* (``detect.asset_estimate_open_k``/``_n`` scaled by that cadence) unless the file sets them.

    One torch thread (``forecast.model_threads``) unless the file sets it: seven tags make passes too
    small to share, and two threads contending with other work cost the whole demo dearly.  Same
    shared machine (load 5 to 6), one minute at 10x, asset model on: torch's default 2 threads detected
    245 slots at 5.6 s mean latency, one thread 392 slots at 0.1 s (without the asset model 431 at 0.07 s;
    the asset model added 1.4 s of CPU over the run, loading included).
    """
    from ..forecast import SHIPPED_ASSET_CHECKPOINT

    forecast = base.forecast.model_dump()
    if forecast["model_threads"] is None:
        forecast["model_threads"] = 1
    detect: dict[str, Any] = {}
    if args.no_asset_model:
        forecast["asset_model_path"] = None
        return forecast, detect
    forecast["asset_model_path"] = args.asset_model or base.forecast.asset_model_path or SHIPPED_ASSET_CHECKPOINT
    slots_per_s = base.simulator.time_scale / base.simulator.sample_period_s
    every = min(3600, max(base.forecast.asset_estimate_every_steps, round(slots_per_s)))
    forecast["asset_estimate_every_steps"] = every
    d = base.detect
    if d.asset_estimate_open_k is None:
        detect = {"asset_estimate_open_k": d.open_k * every, "asset_estimate_open_n": d.open_n * every}
    return forecast, detect


def _demo(args: argparse.Namespace) -> int:
    if not 0 <= args.prometheus_port <= 65535:
        raise ConfigError(f"not a TCP port: {args.prometheus_port}", field="--prometheus-port")
    if args.duration_s is not None and not args.duration_s > 0:
        raise ConfigError(f"must be above 0 seconds, not {args.duration_s}", field="--duration-s")
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
    from ..app import Daemon, run_until_signalled
    from ..sim.server import ChillerServer, chiller_asset_rules, chiller_tags

    # The demo monitors the simulator's tags: keep the file's rules for its asset (others name
    # tags the demo does not have), or give it the chiller's energy balance and modes.
    own_rules = tuple(a for a in base.detect.assets if a.name == base.simulator.asset)
    forecast, estimate_detect = _demo_asset_model(args, base)
    detect = base.detect.model_copy(
        update={"assets": own_rules or (chiller_asset_rules(base.simulator),), **estimate_detect}
    )
    async with ChillerServer(base.simulator) as srv:
        settings = load_settings(
            args.config,
            simulator=base.simulator,
            tags=chiller_tags(base.simulator),
            detect=detect.model_dump(),
            forecast=forecast,
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
        # Started once the daemon's settings are valid: a bad one must not leave the simulator's task unawaited.
        sim_task = asyncio.create_task(srv.run(), name="simulator")
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
