"""The Kafka producer's life cycle for the alert sink: connect bounded, stop bounded, abort.

aiokafka's own ``start`` and ``stop`` can wait without limit — for a producer id
while brokers answer but cannot give one, for batches an idempotent producer
retries until a broker takes them — and a daemon's stop must not.  aiokafka's
exceptions do not leave here: :func:`connect_producer` raises
:class:`~sentinelle.errors.SinkError` (or ``ConfigError``), :func:`stop_producer` never raises.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Final

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaError

from ..errors import ConfigError, SinkError
from ..settings import KafkaSettings
from .kafka_security import explain_connect_failure, kafka_security_kwargs

log = logging.getLogger(__name__)

ABORT_GRACE_S: Final = 1.0
"""How long an abort still waits for requests already on the wire, and for the connections to close."""


async def connect_producer(settings: KafkaSettings) -> Any:
    """A started producer that knows the topic's partitions, or :class:`SinkError`.

    Each step is bounded by the request timeout: aiokafka's own start waits
    for a producer id without limit while brokers answer but cannot give one.
    Asking for the topic's partitions up front auto-creates a new topic, so the
    first alert does not pay for it, and proves the topic is usable.
    """
    servers = settings.bootstrap_servers
    timeout_s = settings.request_timeout_ms / 1000
    producer = AIOKafkaProducer(
        bootstrap_servers=servers,
        client_id=settings.client_id,
        acks="all",
        enable_idempotence=True,
        linger_ms=settings.linger_ms,
        request_timeout_ms=settings.request_timeout_ms,
        **kafka_security_kwargs(settings),
    )
    step = f"Kafka cluster at {servers} is unreachable"
    try:
        async with asyncio.timeout(timeout_s):
            await producer.start()
        step = f"Kafka topic {settings.topic!r} at {servers} is not available"
        async with asyncio.timeout(timeout_s):
            await producer.partitions_for(settings.topic)
    except ValueError as e:
        # aiokafka parses bootstrap_servers only when it connects.
        await stop_producer(producer, abort=False, timeout_s=timeout_s)
        raise ConfigError(f"cannot parse {servers!r}: {e}", field="kafka.bootstrap_servers") from None
    except (KafkaError, OSError, TimeoutError) as e:
        await stop_producer(producer, abort=False, timeout_s=timeout_s)
        if isinstance(e, TimeoutError):
            detail = f"no answer within {timeout_s:g} s"
        elif isinstance(e, KafkaConnectionError):
            detail = explain_connect_failure(settings) or "no bootstrap server accepted a connection"
        else:
            detail = f"{type(e).__name__}: {e}"
        raise SinkError(f"{step}: {detail}") from None
    except BaseException:
        # Cancelled (a stop): do not wait request_timeout_ms for a cluster that is not answering.
        await stop_producer(producer, abort=True, timeout_s=timeout_s)
        raise
    return producer


async def stop_producer(producer: Any, *, abort: bool, timeout_s: float) -> None:
    """Stop ``producer`` within ``timeout_s`` (abort: about ``2 × ABORT_GRACE_S``); never raises.

    ``AIOKafkaProducer.stop`` first waits for every batch it holds, and an
    idempotent producer retries a sent batch until a broker takes it, so with
    the broker gone ``stop`` would never return.  When ``abort`` is set (the
    events are given up, or spooled) the producer is torn down without that wait.
    """
    if abort and await _abort_producer(producer):
        return
    try:
        async with asyncio.timeout(timeout_s):
            await producer.stop()
    except Exception as e:
        # aiokafka's teardown errors must not leave this module; the events are accounted for.
        log.warning("Kafka producer did not stop cleanly: %s", str(e) or type(e).__name__)


async def _abort_producer(producer: Any) -> bool:
    """``AIOKafkaProducer.stop`` without waiting for undelivered batches; False if not possible.

    aiokafka has no public way to give up pending batches, so this repeats
    what ``stop`` does minus the flush, through two private attributes of
    aiokafka 0.14 (``_closed``, ``_sender``), checked first.  Alternatives
    tried: failing the batches with the accumulator's ``fail_all`` races the
    sender and crashes it; cancelling a bounded ``stop`` leaves its flush task
    pending forever.
    """
    sender = getattr(producer, "_sender", None)
    close_sender = getattr(sender, "close", None)
    if not hasattr(producer, "_closed") or not callable(close_sender):
        return False
    producer._closed = True  # what stop() sets first; it also marks the producer closed for __del__
    try:
        # The sender waits for its requests on the wire; those are given up too after a grace.
        async with asyncio.timeout(ABORT_GRACE_S):
            await close_sender()
    except Exception as e:
        log.debug("Kafka producer sender did not stop cleanly: %r", e)
    try:
        async with asyncio.timeout(ABORT_GRACE_S):
            await producer.client.close()
    except Exception as e:
        log.warning("Kafka producer connections did not close cleanly: %s", str(e) or type(e).__name__)
    return True
