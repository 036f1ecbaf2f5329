"""The daemon's life cycle, readable in one file: start → run → stop.

* **start**: metrics endpoint, sinks (a required sink that cannot be reached
  raises :class:`SinkUnavailable` → exit 69), the history backfill when
  ``[[history.sources]]`` are configured (``backfill.py``: windows and detectors
  warm from the look-back, no alerts sent for it; an unreadable source → exit 69
  if ``history.required_at_start``, else a warning), sources (a source marked
  ``required_at_start`` that does not connect in time → exit 69; the others
  connect and reconnect in the background, visible in metrics), then READY=1.
  With ``[commands]`` enabled, the operator command consumer connects before the
  backfill and re-reads the command topic up to its committed offsets, so the
  maintenance calendar is complete before the first tick (a required Kafka that
  cannot be reached → exit 69).
* **run**: the stages under one :class:`asyncio.TaskGroup`, connected by bounded
  queues::

      sources ─SampleQueue─▶ windows ─▶ forecast batcher ─▶ detect ─▶ sinks
                                        operator commands ──▶ detect ──┘ (acknowledged events)

  plus a housekeeping tick (queue depth gauges, systemd watchdog).
* **modes** (``daemon.mode``, :func:`build`): ``all`` is the above; ``collector`` runs only the
  sources, into Kafka's samples topic, and ``worker`` only the stages after them, from that topic,
  as one member of a consumer group (``scaleout/``).
* **stop** (first SIGTERM/SIGINT): sources stop, every queue drains through the
  pipeline — each stage ends on a ``None`` sentinel — and sinks flush, all within
  ``shutdown_timeout_s``.  Every close has that deadline (each sink at least
  ``_CLOSE_FLOOR_S`` more): a sink that never acknowledges cannot hang the stop —
  the Kafka sink then writes what it could not deliver to its spool, and only
  what cannot be spooled is counted as dropped.  The whole stop stays within
  ``shutdown_timeout_s`` plus a few seconds, under systemd's ``TimeoutStopSec``.

This module is the only one that knows every stage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .detect.control import OperatorControl
from .detect.maintenance import calendar_from_settings
from .detect.stage import DetectStage
from .errors import ConfigError, ModelError, SourceUnavailable
from .forecast import Forecaster, make_fallback, make_forecaster
from .forecast.batcher import ESTIMATOR_NAME, Estimator, ForecastBatcher
from .metrics import Metrics
from .notify import sd_notify, watchdog_period_s
from .queues import CLOSED, SampleQueue, end_of_stream
from .records import AlertEvent, EngineeringRange, ForecastBatch, WindowBatch
from .settings import OpcUaSourceSettings, Settings
from .sinks import AlertSink
from .sinks.console import ConsoleSink
from .sinks.jsonl import JsonlSink
from .sources import Source
from .windows import Windows

if TYPE_CHECKING:
    from .sources.commands import CommandConsumer
    from .sources.opcua import OpcUaSource

log = logging.getLogger(__name__)

_CLOSE_FLOOR_S = 0.5
"""Time each sink (and the command consumer) still gets to close once the shutdown deadline has passed."""


class Daemon:
    """One sentinelle instance built from settings; stages and sinks can be injected (tests, demo)."""

    def __init__(
        self,
        settings: Settings,
        metrics: Metrics | None = None,
        *,
        sinks: Sequence[AlertSink] | None = None,
        sources: Sequence[Source] | None = None,
        forecaster: Forecaster | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics or Metrics()
        m = self.metrics
        d = settings.daemon
        self.samples = SampleQueue(d.samples_queue_size, on_drop=lambda n: m.drop("queue_overflow", n))
        self.window_q: asyncio.Queue[WindowBatch | None] = asyncio.Queue(d.stage_queue_size)
        self.forecast_q: asyncio.Queue[ForecastBatch | None] = asyncio.Queue(d.stage_queue_size)
        self.alert_q: asyncio.Queue[list[AlertEvent] | None] = asyncio.Queue(d.stage_queue_size)
        f = settings.forecast  # the asset model's coarse reference (forecast.asset_context_stride_steps)
        stride = f.asset_context_stride_steps if f.asset_model_path is not None else 1
        self.windows = Windows(settings.tags, settings.windows, m, coarse_stride_steps=stride)
        self.batcher = self._forecast_batcher(forecaster)
        self.calendar = calendar_from_settings(settings.maintenance)
        self.detect = DetectStage(
            settings.tags,
            settings.detect,
            m,
            self.calendar,
            refresh_every_steps=settings.forecast.refresh_every_steps,
            estimate_groups=f.asset_mask_groups if f.asset_model_path is not None else (),
        )
        self.commands: CommandConsumer | None = self._command_consumer() if settings.commands.enabled else None
        self._required_sources: list[tuple[OpcUaSource, OpcUaSourceSettings]] = []
        self.sinks: list[AlertSink] = list(sinks) if sinks is not None else self._default_sinks()
        self.sources: list[Source] = list(sources) if sources is not None else self._default_sources()
        self.metrics_address: tuple[str, int] | None = None
        self.on_source_state: Callable[[tuple[str, ...], bool], None] | None = None
        """Told (tags, down) when a source disconnects or reconnects: a collector passes it on to its workers."""
        self.on_source_ranges: Callable[[Sequence[EngineeringRange]], None] | None = None
        """Told the engineering ranges a source read (EURange): a collector passes them on to its workers."""
        self._http: Any = None
        self._started_sinks: list[AlertSink] = []
        self._stop_deadline: float | None = None
        """Loop time by which the stop must be done (set when it begins)."""

    # -- construction -------------------------------------------------------

    def _forecast_batcher(self, forecaster: Forecaster | None) -> ForecastBatcher:
        """The configured forecaster; a model that cannot be loaded gives way to its baseline.

        A missing or corrupt checkpoint must not stop the plant's monitoring: the
        error is logged (naming the file) and counted, and the daemon detects
        with the Holt baseline instead.
        """
        f = self.settings.forecast
        estimator = self._asset_estimator()
        if forecaster is not None:
            return ForecastBatcher(forecaster, f, self.metrics, make_fallback(f), estimator=estimator)
        try:
            asset_tags: dict[str, list[str]] = {}
            for t in self.settings.tags:
                asset_tags.setdefault(t.asset, []).append(t.name)
            forecaster = make_forecaster(f, self.metrics, asset_tags)
            return ForecastBatcher(forecaster, f, self.metrics, make_fallback(f), estimator=estimator)
        except ModelError as e:
            self.metrics.forecast_errors.labels(f.forecaster).inc()
            baseline = make_fallback(f)
            if baseline is None:
                raise
            log.error("forecaster %r unavailable: %s; using the %r baseline instead", f.forecaster, e, baseline.name)
            # The baseline's own fallback is what its settings would give it.
            as_baseline = f.model_copy(update={"forecaster": baseline.name})
            batcher = ForecastBatcher(baseline, f, self.metrics, make_fallback(as_baseline), estimator=estimator)
            # A checkpoint that cannot be read is not retried (it does not mend itself); the gauge says so.
            self.metrics.forecast_fallback_active.set(1)
            return batcher

    def _asset_estimator(self) -> Estimator | None:
        """The asset model's per-slot estimates (``forecast.asset_model_path``); None when off or unloadable.

        Extra evidence, not the forecast: a checkpoint that cannot be loaded is logged and
        counted, and the daemon runs without estimates.  Assets with an adapter in
        ``forecast.asset_model_adapters_dir`` are estimated with it (:mod:`.forecast.asset_estimators`).
        """
        f = self.settings.forecast
        if f.asset_model_path is None:
            return None
        from .forecast.asset_engine import AssetForecaster  # torch only when the asset model is configured
        from .forecast.asset_estimators import load_asset_estimators

        def make(adapter: Path | None, tags: Collection[str] | None) -> AssetForecaster:
            return AssetForecaster(
                path,
                f.quantile_levels,
                device=f.model_device,
                max_batch=f.model_max_batch,
                mask_recent_steps=f.asset_mask_recent_steps,
                every_steps=f.asset_estimate_every_steps,
                context_stride_steps=f.asset_context_stride_steps,
                anchor_band_widths=f.asset_anchor_band_widths,
                anchor_release_band_widths=f.asset_anchor_release_band_widths,
                mask_groups=f.asset_mask_groups,
                cpu_rows_per_pass=f.asset_cpu_rows_per_pass,
                adapter=adapter,
                adapter_tags=tags,
                threads=f.model_threads,
            )

        def refused(asset: str, why: str) -> None:
            self.metrics.forecast_errors.labels(ESTIMATOR_NAME).inc()

        path = f.asset_model_path
        asset_tags: dict[str, list[str]] = {}
        for t in self.settings.tags:
            asset_tags.setdefault(t.asset, []).append(t.name)
        try:
            models = load_asset_estimators(make, f.asset_model_adapters_dir, asset_tags, on_refused=refused)
        except ModelError as e:
            self.metrics.forecast_errors.labels(ESTIMATOR_NAME).inc()
            log.error("asset model unavailable: %s; running without estimates from the other tags", e)
            return None
        log.info("asset model: %s (each tag also estimated from its asset's other tags)", path)
        return models.estimate_window

    def _default_sinks(self) -> list[AlertSink]:
        s = self.settings
        sinks: list[AlertSink] = []
        if s.kafka.enabled:
            from .sinks.kafka import KafkaSink  # aiokafka only when Kafka is configured

            sinks.append(KafkaSink(s.kafka, self.metrics))
        if s.console.jsonl_path is not None:
            sinks.append(JsonlSink(s.console.jsonl_path, self.metrics))
        sinks.append(ConsoleSink(self.metrics, live=s.console.live_view, interval_s=s.console.live_view_interval_s))
        return sinks

    def _command_consumer(self) -> CommandConsumer:
        """Operator commands applied to the detect stage's calendar and alert book (the live one, always)."""
        from .sources.commands import CommandConsumer  # aiokafka only when Kafka is configured

        control = OperatorControl(
            (t.asset for t in self.settings.tags),
            self.calendar,
            lambda: self.detect.book,
            max_maintenance_s=self.settings.commands.max_maintenance_s,
        )

        async def emit(events: list[AlertEvent]) -> None:
            await self.alert_q.put(events)

        return CommandConsumer(self.settings.commands, self.settings.kafka, self.metrics, control, emit)

    def _default_sources(self) -> list[Source]:
        from .sources.opcua import OpcUaSource  # asyncua only when OPC-UA is used

        out: list[Source] = []
        for cfg in self.settings.sources:
            tags = [t for t in self.settings.tags if t.source == cfg.name]
            if not tags:
                log.warning("source %r has no tags; not connecting to it", cfg.name)
                continue
            names = tuple(t.name for t in tags)

            def on_state(connected: bool, names: tuple[str, ...] = names) -> None:
                # An outage is a gap, not the last values held as if live (source_down alerts).
                self.windows.set_source_down(names, not connected)
                if self.on_source_state is not None:
                    self.on_source_state(names, not connected)

            src = OpcUaSource(cfg, tags, self.metrics, self.samples, on_state=on_state, on_ranges=self._source_ranges)
            out.append(src)
            if cfg.required_at_start:
                self._required_sources.append((src, cfg))
        return out

    def _source_ranges(self, ranges: Sequence[EngineeringRange]) -> None:
        """Ranges read from a server (EURange) travel with the windows to the detectors (and to the workers)."""
        self.windows.set_engineering_ranges(ranges)
        if self.on_source_ranges is not None:
            self.on_source_ranges(ranges)

    # -- life cycle ---------------------------------------------------------

    def start_metrics_endpoint(self) -> None:
        """Serve ``/metrics`` when ``[prometheus]`` is enabled (every mode does, first)."""
        p = self.settings.prometheus
        if p.enabled and self._http is None:
            from prometheus_client import start_http_server

            try:
                server, _thread = start_http_server(p.port, addr=p.host, registry=self.metrics.registry)
            except OSError as e:  # the port taken (another daemon, a demo still running), the address not ours
                message = f"cannot listen on {p.host}:{p.port}: {e.strerror or e}"
                raise ConfigError(message, field="prometheus.port") from None
            self._http = server
            self.metrics_address = (p.host, int(server.server_port))
            log.info("metrics on http://%s:%d/metrics", *self.metrics_address)

    async def start(self) -> None:
        """Open the metrics endpoint and the sinks, warm up from history; fail fast on required services."""
        self.start_metrics_endpoint()
        for sink in self.sinks:
            await sink.start()
            self._started_sinks.append(sink)
        if self.commands is not None:
            await self.commands.start()
        if self.settings.tags:
            refresh = self.settings.forecast.refresh_every_steps
            demand = sum(1.0 / t.period_s for t in self.settings.tags) / refresh
            tick_rows = math.ceil(len(self.settings.tags) / refresh)
            # The asset model estimates every tag of an asset with another tag, on the same thread.
            by_asset: dict[str, list[float]] = {}
            for t in self.settings.tags:
                by_asset.setdefault(t.asset, []).append(t.period_s)
            estimated = [periods for periods in by_asset.values() if len(periods) >= 2]
            every = self.settings.forecast.asset_estimate_every_steps
            await self.batcher.probe_capacity(
                demand,
                self.settings.windows.context_steps,
                tick_rows,
                asset_sizes=[len(p) for p in estimated],
                estimates_per_s=sum(1.0 / p for periods in estimated for p in periods) / every,
            )
        if self.settings.history.sources:
            from .backfill import run_backfill  # pyarrow and asyncpg only when history is configured

            await run_backfill(self.settings, self.metrics, self.windows, self.batcher.forecaster, self.detect)

    async def serve(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set, then stop gracefully; call :meth:`start` first."""
        try:
            async with asyncio.TaskGroup() as tg:
                source_tasks = [tg.create_task(src.run(), name=f"source-{src.name}") for src in self.sources]
                if self.commands is not None:
                    # Stopped with the sources: nothing may join the alert queue once it drains.
                    source_tasks.append(tg.create_task(self.commands.run(), name="commands"))
                await self.check_required_sources()
                stages = [
                    tg.create_task(self._window_stage(), name="windows"),
                    tg.create_task(self.batcher.run(self.window_q, self.forecast_q), name="forecast"),
                    tg.create_task(self.detect.run(self.forecast_q, self.alert_q), name="detect"),
                    tg.create_task(self._sink_stage(), name="sinks"),
                ]
                housekeeping = tg.create_task(self._housekeeping(), name="housekeeping")
                self.metrics.up.set(1)
                sd_notify("READY=1")
                log.info(
                    "running: %d tags from %d sources, forecaster %s",
                    len(self.settings.tags),
                    len(self.sources),
                    self.batcher.forecaster.name,
                )
                await stop.wait()
                sd_notify("STOPPING=1")
                log.info("stopping (grace %.1f s)", self.settings.daemon.shutdown_timeout_s)
                self.metrics.up.set(0)
                t0 = time.monotonic()
                self._stop_deadline = asyncio.get_running_loop().time() + self.settings.daemon.shutdown_timeout_s
                for t in source_tasks:
                    t.cancel()
                housekeeping.cancel()
                try:
                    # One grace period for everything: sources letting go, queues draining, sinks flushing.
                    async with asyncio.timeout(self.settings.daemon.shutdown_timeout_s):
                        await asyncio.gather(*source_tasks, return_exceptions=True)
                        self.samples.close()
                        await asyncio.gather(*stages)
                        await self._close_sinks()
                except TimeoutError:
                    log.error("shutdown grace period exceeded; abandoning what is still pending")
                    self.samples.close()
                    for t in (*source_tasks, *stages):
                        t.cancel()
                    await asyncio.wait([*source_tasks, *stages], timeout=_CLOSE_FLOOR_S)
                    await self._hand_over_queued_alerts()
                log.info("stopped in %.2f s", time.monotonic() - t0)
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        """Release sinks, the command consumer and the metrics endpoint; safe to call more than once.

        Bounded by the stop's deadline (or ``shutdown_timeout_s`` from now when no stop began).
        """
        if self._stop_deadline is None:
            self._stop_deadline = asyncio.get_running_loop().time() + self.settings.daemon.shutdown_timeout_s
        if self.commands is not None:
            try:
                async with asyncio.timeout_at(self._close_deadline()):
                    await self.commands.close()
            except TimeoutError:
                log.error("the command consumer did not close before the shutdown deadline; abandoned")
        await self._close_sinks()
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None

    async def check_required_sources(self) -> None:
        for src, cfg in self._required_sources:
            if not await src.wait_connected(cfg.connect_timeout_s):
                why = f": {src.last_error}" if src.last_error else ""
                raise SourceUnavailable(f"OPC-UA server {cfg.name!r} at {cfg.url} unreachable at start{why}")

    async def _hand_over_queued_alerts(self) -> None:
        """Alert events made but not yet given to the sinks when the grace ran out: give them now.

        They were raised and exist nowhere else; the Kafka sink only queues them (its
        close then spools them), so this is quick — and bounded for any other sink.
        """
        handed = 0
        try:
            async with asyncio.timeout(_CLOSE_FLOOR_S):
                while not self.alert_q.empty():
                    events = self.alert_q.get_nowait()
                    if not events:
                        continue
                    for sink in self.sinks:
                        await sink.send(events)
                    handed += len(events)
        except TimeoutError:
            left = 0
            while not self.alert_q.empty():
                left += len(self.alert_q.get_nowait() or ())
            # Counted like a sink's drops (label "pipeline"): the exit status says so too.
            self.metrics.sink_dropped.labels("pipeline").inc(left)
            log.error("sinks did not take the queued alert events before the shutdown deadline: %d dropped", left)
        if handed:
            log.warning("%d alert events still queued at the shutdown deadline were handed to the sinks", handed)

    def _close_deadline(self) -> float:
        now = asyncio.get_running_loop().time()
        return max(self._stop_deadline or now, now + _CLOSE_FLOOR_S)

    async def _close_sinks(self) -> None:
        """Close every started sink, each within the stop's deadline (at least ``_CLOSE_FLOOR_S``)."""
        while self._started_sinks:
            sink = self._started_sinks.pop()
            try:
                async with asyncio.timeout_at(self._close_deadline()):
                    await sink.close()
            except TimeoutError:
                log.error(
                    "sink %s did not flush before the shutdown deadline; its pending events were set aside", sink.name
                )
            except Exception:
                log.exception("closing sink %s failed", sink.name)

    def alert_events_dropped(self) -> int:
        """Alert events any sink had to drop during this run (``sentinelle_sink_events_dropped_total``)."""
        total = 0.0
        for family in self.metrics.sink_dropped.collect():
            total += sum(s.value for s in family.samples if s.name.endswith("_total"))
        return int(total)

    # -- stages owned by the app --------------------------------------------

    async def _window_stage(self) -> None:
        idle = self.windows.idle_poll_s
        try:
            while True:
                chunk = await self.samples.get_within(idle)
                if chunk is CLOSED:
                    break
                if chunk is None:
                    batches = self.windows.tick_idle()
                else:
                    batches = self.windows.ingest(chunk, self.samples.received_at)
                for b in batches:
                    await self.window_q.put(b)
        finally:
            await end_of_stream(self.window_q)

    async def _sink_stage(self) -> None:
        while (events := await self.alert_q.get()) is not None:
            for sink in self.sinks:
                await sink.send(events)

    async def _housekeeping(self) -> None:
        period = min(1.0, watchdog_period_s(self.settings.daemon.watchdog_interval_s))
        depth = self.metrics.queue_depth
        while True:
            depth.labels("samples").set(len(self.samples))
            depth.labels("windows").set(self.window_q.qsize())
            depth.labels("forecasts").set(self.forecast_q.qsize())
            depth.labels("alerts").set(self.alert_q.qsize())
            sd_notify("WATCHDOG=1")
            await asyncio.sleep(period)


class Runner(Protocol):
    """What :func:`run_until_signalled` runs: the daemon in one of its modes (``daemon.mode``)."""

    async def start(self) -> None: ...

    async def serve(self, stop: asyncio.Event) -> None: ...

    async def aclose(self) -> None: ...


def build(settings: Settings, metrics: Metrics | None = None) -> tuple[Daemon, Runner]:
    """The daemon for ``settings`` and what runs it in its mode.

    ``all``: the daemon itself.  ``collector`` (``scaleout/collector.py``): its sources and metrics
    endpoint, samples to Kafka.  ``worker`` (``scaleout/worker.py``): its forecaster, sinks and
    metrics endpoint, samples from Kafka — it connects no source.
    """
    mode = settings.daemon.mode
    if mode == "all":
        daemon = Daemon(settings, metrics)
        return daemon, daemon
    if mode == "collector":
        from .scaleout.collector import Collector

        daemon = Daemon(settings, metrics, sinks=[])
        return daemon, Collector(daemon)
    from .scaleout.worker import Worker

    daemon = Daemon(settings, metrics, sources=[])
    return daemon, Worker(daemon)


async def run_until_signalled(daemon: Runner, stop: asyncio.Event | None = None) -> None:
    """Start and serve ``daemon``; the first SIGINT/SIGTERM stops gracefully, a second forces."""
    import signal

    loop = asyncio.get_running_loop()
    stop = stop or asyncio.Event()
    main = asyncio.current_task()
    signals = 0

    def on_signal(sig: signal.Signals) -> None:
        nonlocal signals
        signals += 1
        if signals == 1:
            log.info("received %s: stopping gracefully", sig.name)
            stop.set()
        elif main is not None:
            log.warning("received %s again: forcing stop", sig.name)
            main.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, on_signal, sig)
    try:
        await daemon.start()
        await daemon.serve(stop)
    finally:
        await daemon.aclose()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.remove_signal_handler(sig)
