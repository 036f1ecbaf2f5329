"""The live OPC-UA source: data-change notifications in, chunks of :class:`Sample` out.

One :class:`OpcUaSource` owns one server connection and one subscription holding
all its tags.  Each publish response the server sends becomes one chunk on the
:class:`~sentinelle.queues.SampleQueue`, so the per-sample cost downstream stays
near zero even at thousands of tags.

Reconnection is our own loop rather than asyncua's ``auto_reconnect``: we want
to count attempts, expose the connection state as a metric, back off with
jitter (many daemons restarting against one server must not reconnect in
lock-step) and log once per outage instead of once per second.

asyncua exceptions stay in this module: a bad node id in the settings is a
:class:`~sentinelle.errors.ConfigError`; everything that goes wrong while
talking to the server is counted, logged and retried, never raised.  Security
(policy, certificates, the server's trust, user tokens) is set up by
:mod:`.opcua_security`, whose refusals (an untrusted server certificate, a wrong
password) are logged with what to change and counted as ``kind="security"``.  Each notified
DataValue becomes a :class:`Sample` by :mod:`.opcua_values` (re-exported here); each tag's
engineering range and unit are read from the server by :mod:`.opcua_ranges` at every subscription.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Sequence
from typing import Final

from asyncua import ua
from asyncua.client.client import Client
from asyncua.client.ua_client import UaClientState
from asyncua.common.subscription import DataChangeEvent, StatusChangeEvent, Subscription
from asyncua.ua.uaerrors import UaError

from ..errors import ConfigError, SourceError
from ..metrics import Metrics
from ..queues import SampleQueue
from ..records import EngineeringRange, Sample
from ..settings import OpcUaSourceSettings, TagSettings
from .opcua_ranges import EngineeringReader
from .opcua_security import ClientSecurity, SecurityRefused
from .opcua_values import epoch_seconds, quality_of, sample_from_datavalue

__all__ = ["OpcUaSource", "epoch_seconds", "quality_of", "sample_from_datavalue"]

_log = logging.getLogger(__name__)

SUBSCRIBE_CHUNK: Final = 1_000
"""Monitored items per CreateMonitoredItems request: 10,000 in one request come close to a
megabyte, beyond the MaxMessageSize or MaxMonitoredItemsPerCall of many servers."""

WATCH_INTERVAL_S: Final = 1.0
"""How often the connection state is re-checked when no state change woke us.

A closed socket is noticed at once (asyncua changes its state); a connection that is open
but dead is noticed by asyncua's probe of the server state, which runs every
``connect_timeout_s`` and waits as long for the answer.  A 1 s probe is too eager: a
server busy writing 10,000 values stalls longer than that, and a false loss costs a
resubscription and the values that changed meanwhile."""

SESSION_TIMEOUT_MS: Final = 60_000
"""Requested session timeout.  asyncua asks for an hour, which servers cap (with a warning at
every connect) and which keeps the session of a crashed daemon alive on the server for that long."""

CLOSE_TIMEOUT_S: Final = 2.0
"""Bound on deleting the subscription and closing the session, on loss and on cancel."""

ERROR_KINDS: Final = (
    "connect",
    "security",
    "subscribe",
    "connection_lost",
    "bad_node",
    "no_timestamp",
    "bad_eu_range",
    "eu_range_read",
    "internal",
)
"""Every ``source_errors_total`` kind this module counts; pre-declared so dashboards see zeros."""

# asyncua's own expected failures, caught at this module's boundary.
_EXPECTED_ERRORS: Final = (OSError, TimeoutError, UaError)


class _Batcher:
    """Collects the samples of one publish response and hands them over as one chunk.

    asyncua delivers notifications one by one, but all those of one publish
    response within one turn of the event loop.  The first sample of a batch
    schedules a flush with ``call_soon``, which runs after that turn: one queue
    item per publish response instead of one per sample.
    """

    def __init__(self, out: SampleQueue, on_flush: Callable[[int], None]) -> None:
        self._out = out
        self._on_flush = on_flush
        self._pending: list[Sample] = []

    def add(self, sample: Sample) -> None:
        if not self._pending:
            asyncio.get_running_loop().call_soon(self.flush)
        self._pending.append(sample)

    def flush(self) -> None:
        chunk, self._pending = self._pending, []
        if chunk:
            self._out.put_nowait(chunk)
            self._on_flush(len(chunk))


class _NoiseFilter(logging.Filter):
    """Drops asyncua's log records that repeat what this module already reports once.

    While a server is down asyncua logs "Publish iteration crashed" with a traceback
    every second, and closing a dead session logs warnings and tracebacks; the
    outage itself is logged here, once, and exposed as ``source_connected``.
    """

    NOISE: Final = {
        "asyncua.client.ua_session.UaSession": (
            "Publish iteration crashed",
            "close_session was called but connection is closed",
            "close_session but connection wasn't established",
        ),
        "asyncua.client.ua_client.UaClient": ("close_secure_channel was called but connection is closed",),
        # The ServiceFault to an OpenSecureChannel (see _session), with a traceback at every attempt.
        "asyncua.client.ua_client.UASocketProtocol": ("Exception raised while parsing message from server",),
        "asyncua.client.client": (
            "close_session raised during disconnect",
            "close_secure_channel raised during disconnect",
            "create_session fault response",
        ),
        # An untrusted certificate is logged with a traceback; explained once by ClientSecurity.
        "asyncuagds.validate": ("Not trusted certificate used",),
    }

    def __init__(self, prefixes: tuple[str, ...]) -> None:
        super().__init__()
        self._prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and record.msg.startswith(self._prefixes))


def _quiet_asyncua_noise() -> None:
    """Install :class:`_NoiseFilter` on asyncua's client loggers (idempotent)."""
    for name, prefixes in _NoiseFilter.NOISE.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, _NoiseFilter) for f in logger.filters):
            logger.addFilter(_NoiseFilter(prefixes))


class _AttemptFailed(SourceError):
    """A connection attempt failed at ``kind`` (connect or subscribe); retried by :meth:`OpcUaSource.run`."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind


class _ConnectionLost(SourceError):
    """A subscribed session ended (socket closed, probe failed, subscription gone); carries why."""


class OpcUaSource:
    """Delivers the samples of one OPC-UA server's tags until cancelled.

    ``run()`` connects, subscribes every tag in one subscription, and delivers;
    on any failure it reconnects with exponential backoff and jitter and
    subscribes again.  Node ids the server rejects are logged once and counted
    (``source_errors_total{kind="bad_node"}``); the other tags keep working.

    ``tags`` are this source's tags (the caller selects them by ``TagSettings.source``).
    ``on_state(connected)`` is told when an outage begins (False: at its first failure)
    and ends (True), so the window stage stops holding this source's last values at once.
    ``on_ranges(ranges)`` gets the engineering ranges read from the server (``read_eu_range``:
    :mod:`.opcua_ranges`) at each subscription, before any of its values.
    """

    def __init__(
        self,
        settings: OpcUaSourceSettings,
        tags: Sequence[TagSettings],
        metrics: Metrics,
        out: SampleQueue,
        on_state: Callable[[bool], None] | None = None,
        on_ranges: Callable[[Sequence[EngineeringRange]], None] | None = None,
    ) -> None:
        self.name = settings.name
        self._settings = settings
        self._tag_by_node: dict[ua.NodeId, str] = {}
        for tag in tags:
            try:
                node_id = ua.NodeId.from_string(tag.node_id)
            except (UaError, ValueError) as e:
                raise ConfigError(
                    f"invalid OPC-UA node id {tag.node_id!r}: {e}", field=f"tags.{tag.name}.node_id"
                ) from None
            self._tag_by_node[node_id] = tag.name
        self._connected_gauge = metrics.source_connected.labels(self.name)
        self._reconnects = metrics.source_reconnects.labels(self.name)
        self._errors = {kind: metrics.source_errors.labels(self.name, kind) for kind in ERROR_KINDS}
        self.engineering: EngineeringReader | None = None
        """Reads the tags' EURange and EngineeringUnits at each subscription (None: ``read_eu_range`` off)."""
        if settings.read_eu_range:
            nodes = {tag: node for node, tag in self._tag_by_node.items()}
            self.engineering = EngineeringReader(
                self.name, tags, nodes, on_ranges, self._errors["bad_eu_range"].inc, self._errors["eu_range_read"].inc
            )
        ingested = metrics.samples_ingested.labels(self.name)
        self._batcher = _Batcher(out, ingested.inc)
        self._connected = asyncio.Event()
        self._connected_gauge.set(0)
        self._rejected_logged: set[str] = set()
        self._in_outage = False
        self._outage_since = 0.0
        self._outage_kind = ""
        self._ever_connected = False
        """A first connection after failed attempts at start ends no outage of a connection: not a reconnect."""
        self._on_state = on_state
        self._background: set[asyncio.Task[None]] = set()
        self._security = ClientSecurity(settings)
        self._last_error: str | None = None
        _quiet_asyncua_noise()

    @property
    def last_error(self) -> str | None:
        """Why the latest attempt failed (None once connected): for the exit message at start."""
        return self._last_error

    @property
    def connected(self) -> bool:
        """True while connected and subscribed."""
        return self._connected.is_set()

    async def wait_connected(self, timeout_s: float) -> bool:
        """Wait until subscribed; False if that did not happen within ``timeout_s``."""
        try:
            async with asyncio.timeout(timeout_s):
                await self._connected.wait()
        except TimeoutError:
            return False
        return True

    async def run(self) -> None:
        """Connect, subscribe and deliver until cancelled; reconnect with backoff on every failure."""
        s = self._settings
        delay = s.reconnect_initial_s
        try:
            while True:
                try:
                    await self._session()
                except _ConnectionLost as e:
                    # It was working: the next attempt starts the backoff afresh.
                    delay = s.reconnect_initial_s
                    self._outage("connection_lost", str(e))
                except _AttemptFailed as e:
                    self._outage(e.kind, str(e))
                except Exception as e:  # a source must outlive its bugs and asyncua's
                    self._outage("internal", _describe(e), error=e)
                # A cancellation that arrived during connect() can surface as a connection
                # error (asyncua converts it); a stopping daemon must not retry then.
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise asyncio.CancelledError
                # Jitter spreads out many daemons (or many sources) reconnecting to one server;
                # only downwards, so that reconnect_max_s stays the longest wait.
                await asyncio.sleep(min(delay, s.reconnect_max_s) * random.uniform(0.8, 1.0))
                delay = min(delay * 2, s.reconnect_max_s)
        finally:
            self._set_disconnected()

    # --- one connection --------------------------------------------------------------

    async def _session(self) -> None:
        """One connection's life: connect, subscribe, deliver; raises when it ends."""
        s = self._settings
        client = Client(s.url, timeout=s.connect_timeout_s, watchdog_intervall=s.connect_timeout_s)
        client.session_timeout = SESSION_TIMEOUT_MS
        subscription: Subscription | None = None
        consumer: asyncio.Task[str] | None = None
        try:
            try:
                async with asyncio.timeout(s.connect_timeout_s):
                    await self._security.apply(client)
                    await client.connect()
            except SecurityRefused as e:
                raise _AttemptFailed("security", str(e)) from e
            except (*_EXPECTED_ERRORS, AssertionError) as e:
                # AssertionError: asyncua 2.1 cannot parse the ServiceFault a server answers an
                # OpenSecureChannel with (node-opcua does, as the spec says); explain() knows it.
                reason = self._security.explain(e)
                if reason is not None:
                    raise _AttemptFailed("security", reason) from e
                if isinstance(e, AssertionError):
                    raise
                raise _AttemptFailed("connect", _describe(e)) from e
            if self.engineering is not None:
                # Before the subscription: the ranges reach the window stage before any value.
                await self.engineering.refresh(client)
            try:
                # queue_maxsize=0: asyncua's iterator queue is then unbounded instead of
                # silently dropping the oldest; it holds at most the publish responses that
                # arrive before _consume's next turn, since _consume never waits on anything else.
                subscription = await client.create_subscription(s.publishing_interval_ms, None, queue_maxsize=0)
                consumer = asyncio.create_task(self._consume(subscription), name=f"opcua-{self.name}-consume")
                accepted, rejected = await self._subscribe(client, subscription)
            except _EXPECTED_ERRORS as e:
                raise _AttemptFailed("subscribe", _describe(e)) from e
            self._set_connected(accepted, rejected)
            reason = await self._until_lost(client, consumer)
            raise _ConnectionLost(reason)
        finally:
            self._set_disconnected()
            if consumer is not None:
                consumer.cancel()
            await self._close(client, subscription)
            if consumer is not None:
                # Wait for the cancelled consumer without raising what it raised (already reported).
                await asyncio.wait({consumer})
                if not consumer.cancelled():
                    consumer.exception()

    async def _subscribe(self, client: Client, subscription: Subscription) -> tuple[int, int]:
        """Create the monitored items in chunks; count and log (once per tag) those the server rejects."""
        s = self._settings
        node_ids = list(self._tag_by_node)
        accepted = rejected = 0
        for start in range(0, len(node_ids), SUBSCRIBE_CHUNK):
            chunk = node_ids[start : start + SUBSCRIBE_CHUNK]
            # A filter needs asyncua's lower-level _subscribe (subscribe_data_change takes none).
            mfilter = (
                ua.DataChangeFilter(Trigger=ua.DataChangeTrigger.StatusValueTimestamp) if s.report_unchanged else None
            )
            results = await subscription._subscribe(
                [client.get_node(n) for n in chunk],
                mfilter=mfilter,
                queuesize=s.queue_size,
                sampling_interval=ua.Double(s.sampling_interval_ms),
            )
            for node_id, result in zip(chunk, results, strict=True):
                if isinstance(result, ua.StatusCode):
                    rejected += 1
                    self._reject(node_id, result)
                else:
                    accepted += 1
        return accepted, rejected

    def _reject(self, node_id: ua.NodeId, status: ua.StatusCode) -> None:
        self._errors["bad_node"].inc()
        tag = self._tag_by_node[node_id]
        # Logged once per tag: it is rejected again at every reconnect, which the counter shows.
        if tag not in self._rejected_logged:
            self._rejected_logged.add(tag)
            _log.warning(
                "source %s: server rejected tag %s (node %s): %s",
                self.name,
                tag,
                node_id.to_string(),
                status.name,
            )

    async def _consume(self, subscription: Subscription) -> str:
        """Turn the subscription's events into samples; returns when the server ends the subscription."""
        tag_by_node = self._tag_by_node
        add = self._batcher.add
        no_timestamp = self._errors["no_timestamp"].inc
        async for event in subscription:
            if isinstance(event, DataChangeEvent):
                tag = tag_by_node.get(event.node.nodeid)
                if tag is not None:
                    add(sample_from_datavalue(tag, event.data.monitored_item.Value, no_timestamp))
            elif isinstance(event, StatusChangeEvent):
                status = event.notification.Status
                if status is not None and not status.is_good():
                    return f"subscription status {status.name}"
        return "subscription closed"

    async def _until_lost(self, client: Client, consumer: asyncio.Task[str]) -> str:
        """Wait until the connection is lost (asyncua's state leaves CONNECTED) or the subscription ends.

        asyncua's supervisor probes the server every ``connect_timeout_s`` and, with
        auto_reconnect off, marks the client DISCONNECTED when the probe or the socket fails.
        """
        async with client.subscribe_state() as states:
            while client.state is UaClientState.CONNECTED and not consumer.done():
                change = asyncio.ensure_future(states.next_change())
                try:
                    await asyncio.wait(
                        {change, consumer}, timeout=WATCH_INTERVAL_S, return_when=asyncio.FIRST_COMPLETED
                    )
                finally:
                    change.cancel()
        if consumer.done() and not consumer.cancelled():
            exc = consumer.exception()
            return f"subscription ended: {_describe(exc)}" if exc is not None else consumer.result()
        return f"connection {client.state.value}"

    async def _close(self, client: Client, subscription: Subscription | None) -> None:
        """Delete the subscription and close the session, bounded, even while being cancelled.

        Runs in its own task behind ``shield`` so that a second cancellation (a stop
        that escalates) cannot interrupt it halfway; it is bounded by ``CLOSE_TIMEOUT_S``.
        """
        task = asyncio.create_task(self._close_now(client, subscription), name=f"opcua-{self.name}-close")
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        await asyncio.shield(task)

    async def _close_now(self, client: Client, subscription: Subscription | None) -> None:
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                if subscription is not None and client.state is UaClientState.CONNECTED:
                    await subscription.delete()
                await client.disconnect()
        except Exception as e:  # best effort: the peer may be gone
            _log.debug("source %s: closing the session failed: %r", self.name, e)
            client.disconnect_socket()
        except asyncio.CancelledError:
            client.disconnect_socket()
            raise

    # --- state and reporting -----------------------------------------------------------

    def _set_connected(self, accepted: int, rejected: int) -> None:
        if self._in_outage and self._ever_connected:
            # One per outage that ended, not per attempt: a server restart is one reconnect,
            # so SentinelleSourceFlapping means a connection that keeps coming and going.
            self._reconnects.inc()
            _log.info(
                "source %s: reconnected to %s after %.1f s (%d tags subscribed, %d rejected)",
                self.name,
                self._settings.url,
                time.monotonic() - self._outage_since,
                accepted,
                rejected,
            )
        else:
            _log.info(
                "source %s: connected to %s (%d tags subscribed, %d rejected)",
                self.name,
                self._settings.url,
                accepted,
                rejected,
            )
        if self._in_outage and self._on_state is not None:
            self._on_state(True)
        self._in_outage = False
        self._last_error = None
        self._ever_connected = True
        self._connected_gauge.set(1)
        self._connected.set()

    def _set_disconnected(self) -> None:
        self._connected_gauge.set(0)
        self._connected.clear()

    def _outage(self, kind: str, reason: str, *, error: BaseException | None = None) -> None:
        """Count every failure; log a WARNING only for the first failure of an outage.

        ``error`` is an unexpected exception (a bug here or in asyncua): its traceback is logged,
        once per outage like the rest, so that a failing loop does not flood the journal.
        """
        self._errors[kind].inc()
        self._last_error = reason
        # One WARNING per outage; the exception is a security refusal that follows other failures
        # (the server is back but refuses us), which needs the admin.  Repeats go to DEBUG.
        if self._in_outage and (kind == self._outage_kind or kind != "security"):
            _log.debug("source %s: attempt failed (%s): %s", self.name, kind, reason)
            return
        if not self._in_outage:
            self._outage_since = time.monotonic()
            if self._on_state is not None:
                self._on_state(False)
        self._in_outage = True
        self._outage_kind = kind
        what = {"connection_lost": "connection lost", "internal": "unexpected error", "security": "refused"}.get(
            kind, "cannot connect"
        )
        _log.warning(
            "source %s: %s (%s): %s; retrying in the background",
            self.name,
            what,
            self._settings.url,
            reason,
            exc_info=error,
        )


def _describe(e: BaseException) -> str:
    """A short, log-friendly reason: the exception's type (asyncua names status errors by code) and text."""
    text = str(e)
    return f"{type(e).__name__}: {text}" if text else type(e).__name__
