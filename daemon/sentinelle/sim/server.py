"""The simulated plant on OPC-UA: an asyncua server on loopback fed by :class:`ChillerModel`.

Used by ``sentinelle simulate``, the ``demo`` command, the integration tests and the
benchmarks, so it has to be cheap at 10,000 tags at 1 Hz: values are written with
the server's internal ``write_attribute_value`` (no service round trip per tag),
one ``DataValue`` per tag carrying the *simulated* source timestamp.

Its security (policies, certificate, trusted clients, user tokens) is set up by :mod:`.server_security`.

Node ids are string ids derived from the tag names only (``ns=2;s=chiller1.chw_temp_c``,
``ns=2;s=bench.t00042``), so a client keeps its subscription across a server restart.

The chiller's tags are AnalogItemType variables (OPC-UA Part 8), as a plant server's
measurements are: each carries its ``EURange`` (the transmitter's span, :func:`~.tags.eu_ranges`)
and ``EngineeringUnits`` (UNECE code and display name) properties, which the daemon's source
reads (``sources/opcua_ranges.py``) for tags whose range is not configured.  The extra benchmark
tags stay plain variables: 10,000 of them with two properties each would triple the address space.

    async with ChillerServer(settings) as server:   # builds the address space, listens
        task = asyncio.create_task(server.run())    # samples every sample_period_s / time_scale
        ...
        server.stop()
        await task
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from asyncua import ua
from asyncua.common.instantiate_util import instantiate
from asyncua.common.node import Node
from asyncua.server.server import Server
from asyncua.ua.status_codes import StatusCodes

from ..errors import ConfigError
from ..settings import (
    AssetDetectSettings,
    EnergyBalanceSettings,
    ModeRuleSettings,
    RelationSettings,
    SimulatorSettings,
    TagSettings,
)
from .chiller import (
    CHILLER_TAGS,
    EXTRA_TAG_RESOLUTION,
    PUMP_TAGS,
    TAG_RESOLUTION,
    TAG_UNITS,
    ChillerModel,
    extra_tag_asset,
    extra_tag_names,
)
from .server_security import setup_security
from .tags import UNECE_UNITS, eu_ranges

_log = logging.getLogger(__name__)

NAMESPACE_URI = "urn:sentinelle:sim"
NAMESPACE_INDEX = 2
"""Index the server's namespace gets: 0 is OPC-UA's, 1 the server's own, ours is registered first."""

_CHW_LIMIT_C = 0.2
_CHW_LIMIT_DEADBAND_C = 0.05
# Rule and data-quality checks of the measurements, as config/sentinelle.toml sets them for
# chiller1: stuck checks on all four; spike checks on the meters (flow, power); a rate limit on
# the temperatures (1.2 °C per minute, far beyond what the 40 s exchanger does) instead of a
# spike check, so a fast real change of a temperature is never held out.  The pump speeds,
# controller outputs, get none.
# The stuck checks use detect.stuck_after_periods (120 s at the default 1 s sample period).
_TAG_CHECKS: Mapping[str, Mapping[str, float]] = {
    "flow_m3h": {"spike_factor": 12.0},
    "supply_temp_c": {"rate_limit_per_s": 0.02, "rate_window_s": 60.0},
    "chw_temp_c": {"rate_limit_per_s": 0.02, "rate_window_s": 60.0},
    "power_kw": {"spike_factor": 12.0},
}
_STUCK_CHECKED = frozenset({"flow_m3h", "supply_temp_c", "chw_temp_c", "power_kw"})
_YIELD_EVERY_WRITES = 1000
_MAX_LAG_S = 2.0
_LAG_WARNING_INTERVAL_S = 60.0


class _SharedDataValue(ua.DataValue):
    """A DataValue that asyncua's server need not deep-copy.

    The server deep-copies every written value once per monitored item "to prevent
    referencing the inner value"; with 10,000 subscribed tags that copy costs more than
    everything else the simulator does.  Ours hold a float, a status and two timestamps,
    and nothing mutates them after the write, so sharing is safe.
    """

    __slots__ = ()

    def __deepcopy__(self, memo: dict[int, object]) -> _SharedDataValue:
        return self


def chiller_tags(
    settings: SimulatorSettings, *, source: str = "plant", node_ns: int = NAMESPACE_INDEX
) -> tuple[TagSettings, ...]:
    """The daemon's tag configuration for the simulator's tags, extra tags included.

    The chilled-water outlet gets static limits at setpoint ± 0.2 °C (4.8 / 5.2 by
    default), the band the plant holds without faults; the measurements get the spike,
    stuck and rate checks of ``config/sentinelle.toml`` (the asset's energy balance and
    modes are :func:`chiller_asset_rules`).
    """
    period = settings.sample_period_s
    tags: list[TagSettings] = []
    for short in CHILLER_TAGS:
        name = f"{settings.asset}.{short}"
        limits: dict[str, float] = dict(_TAG_CHECKS.get(short, {}))
        if short == "chw_temp_c":
            limits |= {
                "low_limit": settings.chw_setpoint_c - _CHW_LIMIT_C,
                "high_limit": settings.chw_setpoint_c + _CHW_LIMIT_C,
                "limit_deadband": _CHW_LIMIT_DEADBAND_C,
            }
        tags.append(
            TagSettings(
                name=name,
                asset=settings.asset,
                node_id=_node_id_string(node_ns, name),
                source=source,
                unit=TAG_UNITS[short],
                period_s=period,
                min_spread=TAG_RESOLUTION[short],
                stuck_check=True if short in _STUCK_CHECKED else None,
                **limits,
            )
        )
    for i, name in enumerate(extra_tag_names(settings.extra_tags)):
        tags.append(
            TagSettings(
                name=name,
                asset=extra_tag_asset(i),
                node_id=_node_id_string(node_ns, name),
                source=source,
                period_s=period,
                min_spread=EXTRA_TAG_RESOLUTION,
            )
        )
    return tuple(tags)


def chiller_asset_rules(settings: SimulatorSettings) -> AssetDetectSettings:
    """The simulated chiller's asset rules, as ``config/sentinelle.toml`` sets them for chiller1.

    Energy balance: ``power_kw ≈ 1.163 · flow_m3h · (supply_temp_c − chw_temp_c)`` within 5 %
    (the simulated heat meter, flow and temperatures agree within about 1 %).  Mode
    ``stopped`` (detection paused) when the lead pump runs below 5 % or the flow is below
    a tenth of its design value.  A learned relation (a virtual sensor): ``power_kw`` from
    the three pump speeds, proportional (no intercept) — the cooling capacity the pumps
    deliver is proportional to their speeds, so the duty they give at a speed is learned at
    one load and holds across the load cycle; a pump that loses efficiency is driven faster
    for the same duty, and the power falls short of what the speeds imply.
    """
    a = settings.asset
    return AssetDetectSettings(
        name=a,
        energy_balance=EnergyBalanceSettings(
            flow_tag=f"{a}.flow_m3h",
            hot_temp_tag=f"{a}.supply_temp_c",
            cold_temp_tag=f"{a}.chw_temp_c",
            power_tag=f"{a}.power_kw",
            relative_tolerance=0.05,
            min_expected_power=50.0,
        ),
        relations=(RelationSettings(target=f"{a}.power_kw", inputs=tuple(f"{a}.{p}" for p in PUMP_TAGS)),),
        modes=(
            ModeRuleSettings(mode="stopped", tag=f"{a}.pump1_speed_pct", below=5.0),
            ModeRuleSettings(mode="stopped", tag=f"{a}.flow_m3h", below=0.1 * settings.flow_m3h),
        ),
    )


def _node_id(name: str) -> ua.NodeId:
    return ua.NodeId(ua.String(name), ua.Int16(NAMESPACE_INDEX))


def _node_id_string(ns: int, name: str) -> str:
    return f"ns={ns};s={name}"


def _full_names(settings: SimulatorSettings) -> tuple[str, ...]:
    """Full tag names in the model's :attr:`~ChillerModel.tag_names` order."""
    return tuple(f"{settings.asset}.{short}" for short in CHILLER_TAGS) + extra_tag_names(settings.extra_tags)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _free_port(host: str) -> int:
    """A port the OS says is free now; asyncua needs it before start to advertise its endpoints."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


async def _add_analog_item(
    server: Server, folder: Node, node_id: ua.NodeId, name: ua.QualifiedName, span: tuple[float, float], unit: str
) -> None:
    """An AnalogItemType variable (instantiated from the standard type, so it has the ``EURange`` and
    ``EngineeringUnits`` properties) with its range and unit written in."""
    analog_type = server.get_node(ua.NodeId(ua.Int32(ua.ObjectIds.AnalogItemType)))
    await instantiate(folder, analog_type, nodeid=node_id, bname=name)
    variable = server.get_node(node_id)
    await (await variable.get_child("0:EURange")).write_value(ua.Range(ua.Double(span[0]), ua.Double(span[1])))
    code, display = UNECE_UNITS[unit]
    units = ua.EUInformation(
        NamespaceUri="http://www.opcfoundation.org/UA/units/un/cefact",
        UnitId=ua.Int32(int.from_bytes(code.encode("ascii"), "big")),  # Part 8: the code's bytes, big-endian
        DisplayName=ua.LocalizedText(display),
        Description=ua.LocalizedText(unit),
    )
    await (await variable.get_child("0:EngineeringUnits")).write_value(units)
    await variable.write_value(ua.Variant(0.0, ua.VariantType.Double))


def _quiet_asyncua() -> None:
    """asyncua's server logs every session, subscription and monitored item at INFO."""
    logging.getLogger("asyncua.server").setLevel(logging.WARNING)


class ChillerServer:
    """The simulator's OPC-UA server; an async context manager, then :meth:`run` until :meth:`stop`."""

    def __init__(self, settings: SimulatorSettings) -> None:
        if settings.extra_tags and settings.asset.startswith("bench."):
            raise ConfigError("'bench.' is reserved for the extra tags", field="simulator.asset")
        self._settings = settings
        self._model = ChillerModel(settings)
        self._names = _full_names(settings)
        self._node_ids = {name: _node_id_string(NAMESPACE_INDEX, name) for name in self._names}
        self._nodes = [_node_id(name) for name in self._names]
        self._server: Server | None = None
        self._port: int | None = settings.port or None
        self._stop = asyncio.Event()
        self._started = asyncio.Event()
        self._running = False
        self._sim_start_ts: float | None = None
        self._steps = 0
        self._lag_resyncs = 0

    # -- properties ---------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("port 0: the port is chosen when the server starts (async with)")
        return self._port

    @property
    def url(self) -> str:
        host = f"[{self._settings.host}]" if ":" in self._settings.host else self._settings.host
        return f"opc.tcp://{host}:{self.port}/sentinelle/"

    @property
    def node_ids(self) -> Mapping[str, str]:
        """Full tag name → node id string: ``chiller1.chw_temp_c`` → ``ns=2;s=chiller1.chw_temp_c``."""
        return self._node_ids

    @property
    def model(self) -> ChillerModel:
        return self._model

    @property
    def sim_start_ts(self) -> float | None:
        """Simulated time of the first sample (epoch s); None until :meth:`run` starts."""
        return self._sim_start_ts

    @property
    def steps(self) -> int:
        """Samples written so far (each one value per tag)."""
        return self._steps

    @property
    def lag_resyncs(self) -> int:
        """How often run() fell more than 2 s behind and gave up catching up."""
        return self._lag_resyncs

    async def wait_started(self) -> None:
        """Return once the first sample of every tag has been written."""
        await self._started.wait()

    # -- life cycle -------------------------------------------------------------------

    async def __aenter__(self) -> ChillerServer:
        _quiet_asyncua()
        began = time.perf_counter()
        host = self._settings.host
        try:
            if self._port is None:
                self._port = _free_port(host)
            s = self._settings
            server = Server()
            await server.init()
            server.set_endpoint(self.url)
            server.set_server_name("sentinelle chiller simulator")
            await server.set_application_uri(await setup_security(server, s))
            ns = await server.register_namespace(NAMESPACE_URI)
            if ns != NAMESPACE_INDEX:
                raise RuntimeError(f"namespace {NAMESPACE_URI} got index {ns}, not {NAMESPACE_INDEX}")
            await self._build_address_space(server)
            with _without_start_traceback():
                await server.start()
        except OSError as e:
            message = f"cannot listen on {host}:{self._port}: {e.strerror or e}"
            raise ConfigError(message, field="simulator.port") from e
        self._server = server
        _log.info(
            "simulator listening on %s (endpoints: %s; %s): %d tags built in %.1f s",
            self.url,
            ", ".join(self._settings.security_policies),
            f"user {self._settings.username}" if self._settings.username else "anonymous",
            len(self._names),
            time.perf_counter() - began,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        server, self._server = self._server, None
        if server is not None:
            await server.stop()

    def stop(self) -> None:
        """Make :meth:`run` return after the sample it is writing; a stopped server does not run again."""
        self._stop.set()

    async def _build_address_space(self, server: Server) -> None:
        objects = server.nodes.objects
        folders: dict[str, Node] = {}
        assets = [self._settings.asset] * len(CHILLER_TAGS) + [
            extra_tag_asset(i) for i in range(self._settings.extra_tags)
        ]
        extra_names = self._names[len(CHILLER_TAGS) :]
        browse_names = list(CHILLER_TAGS) + [name.removeprefix("bench.") for name in extra_names]
        waiting = ua.StatusCode(ua.UInt32(StatusCodes.BadWaitingForInitialData))
        initial = ua.DataValue(ua.Variant(), StatusCode=waiting)
        s = self._settings
        ranges = eu_ranges(s.flow_m3h, s.supply_temp_mean_c, s.chw_setpoint_c)
        for node_id, asset, browse_name in zip(self._nodes, assets, browse_names, strict=True):
            folder = folders.get(asset)
            if folder is None:
                folder = await objects.add_folder(_node_id(asset), ua.QualifiedName(asset, NAMESPACE_INDEX))
                folders[asset] = folder
            name = ua.QualifiedName(browse_name, NAMESPACE_INDEX)
            if browse_name in ranges and asset == s.asset:
                await _add_analog_item(server, folder, node_id, name, ranges[browse_name], TAG_UNITS[browse_name])
            else:
                await folder.add_variable(node_id, name, ua.Variant(0.0, ua.VariantType.Double))
            # Until run() writes the first sample, a client must not read the placeholder 0.0 as data.
            await server.write_attribute_value(node_id, initial)

    # -- sampling ------------------------------------------------------------------

    async def run(self) -> None:
        """Step the model and write every tag, ``time_scale`` simulated seconds per real second.

        Writes the ground-truth fault intervals first.  Deadlines are absolute (start +
        k periods), so sleeping never accumulates drift; if writing falls more than 2 s
        behind, run() stops trying to catch up (logged, counted in :attr:`lag_resyncs`).
        """
        server = self._server
        if server is None:
            raise RuntimeError("ChillerServer.run() needs a started server: `async with ChillerServer(...)`")
        if self._running:
            raise RuntimeError("ChillerServer.run() is already running")
        self._running = True
        try:
            await self._run(server)
        finally:
            self._running = False

    async def _run(self, server: Server) -> None:
        settings = self._settings
        loop = asyncio.get_running_loop()
        sim_start = settings.start_ts if settings.start_ts is not None else time.time()
        self._sim_start_ts = sim_start
        if settings.ground_truth_path is not None:
            self._write_ground_truth(settings.ground_truth_path, sim_start)
        period_s = settings.sample_period_s
        real_period_s = period_s / settings.time_scale
        real_start = loop.time()
        last_lag_warning = -_LAG_WARNING_INTERVAL_S
        k = 0
        while not self._stop.is_set():
            ts = sim_start + k * period_s
            await self._write_sample(server, ts, self._model.step_array(ts).tolist())
            k += 1
            self._steps = k
            self._started.set()
            now = loop.time()
            delay = real_start + k * real_period_s - now
            if delay < -_MAX_LAG_S:
                self._lag_resyncs += 1
                if now - last_lag_warning >= _LAG_WARNING_INTERVAL_S:
                    last_lag_warning = now
                    _log.warning(
                        "simulator is %.1f s behind real time writing %d tags; simulated time now runs "
                        "slower than time_scale %g",
                        -delay,
                        len(self._nodes),
                        settings.time_scale,
                    )
                real_start -= delay
                delay = 0.0
            if delay <= 0:
                await asyncio.sleep(0)
                continue
            try:
                async with asyncio.timeout(delay):
                    await self._stop.wait()
            except TimeoutError:
                pass

    async def _write_sample(self, server: Server, ts: float, values: list[float]) -> None:
        source_ts = ua.DateTime.fromtimestamp(ts, tz=UTC)
        server_ts = ua.DateTime.now(tz=UTC)
        good = ua.StatusCode()
        double = ua.VariantType.Double
        write = server.write_attribute_value
        for i, (node_id, value) in enumerate(zip(self._nodes, values, strict=True)):
            await write(
                node_id,
                _SharedDataValue(
                    ua.Variant(value, double),
                    StatusCode=good,
                    SourceTimestamp=source_ts,
                    ServerTimestamp=server_ts,
                ),
            )
            if i % _YIELD_EVERY_WRITES == _YIELD_EVERY_WRITES - 1:
                # Let the server's sessions breathe while thousands of tags are written.
                await asyncio.sleep(0)

    def _write_ground_truth(self, path: Path, sim_start: float) -> None:
        asset = self._settings.asset
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            for fault in self._model.faults:
                start, end = sim_start + fault.onset_s, sim_start + fault.end_s
                record = {
                    "kind": fault.kind,
                    "asset": asset,
                    "tags": [f"{asset}.{short}" for short in fault.affected],
                    "start_ts": start,
                    "end_ts": end,
                    "start": _iso(start),
                    "end": _iso(end),
                }
                f.write(json.dumps(record) + "\n")
        _log.info("ground truth: %d fault intervals written to %s", len(self._model.faults), path)


async def serve(settings: SimulatorSettings) -> None:
    """``sentinelle simulate``: serve the simulated plant until cancelled."""
    async with ChillerServer(settings) as server:
        scale, seed = settings.time_scale, settings.seed
        _log.info("simulated plant at %s (time_scale %g, seed %d)", server.url, scale, seed)
        for name in server.node_ids:
            if name.startswith(f"{settings.asset}."):
                _log.info("  %-32s %s", name, server.node_ids[name])
        if settings.extra_tags:
            last = extra_tag_names(settings.extra_tags)[-1]
            _log.info(
                "  + %d extra tags bench.t00000 … %s (node ids ns=%d;s=<name>)",
                settings.extra_tags,
                last,
                NAMESPACE_INDEX,
            )
        for fault in server.model.faults:
            _log.info(
                "  fault %s from +%g s for %g s on %s",
                fault.kind,
                fault.onset_s,
                fault.duration_s,
                fault.affected,
            )
        await server.run()


def _drop_start_failure(record: logging.LogRecord) -> bool:
    return "error starting server" not in str(record.msg)


@contextlib.contextmanager
def _without_start_traceback() -> Iterator[None]:
    """Drop asyncua's own traceback of a failed start: the OSError is re-raised as one line naming the port."""
    logger = logging.getLogger("asyncua.server.server")
    logger.addFilter(_drop_start_failure)
    try:
        yield
    finally:
        logger.removeFilter(_drop_start_failure)
