"""The two scale-out topics, created when missing: the samples topic and the compacted state topic.

Both get ``scaleout.partitions`` partitions, so an asset's samples and its snapshot sit in
partitions of the same number (same key, same default partitioner): a worker restoring the
assets of samples partition *p* reads state partition *p* only.  A cluster that forbids
topic creation to sentinelle (ACLs) needs them created by its operators with the same counts;
the state topic must be ``cleanup.policy=compact``.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from ..errors import SourceUnavailable
from ..settings import KafkaSettings, ScaleoutSettings
from ..sinks.kafka_security import kafka_security_kwargs

log = logging.getLogger(__name__)

_OK_CODES: Final = (0, 36)
"""CreateTopics error codes that are fine: none, TOPIC_ALREADY_EXISTS."""


async def ensure_topics(kafka: KafkaSettings, scaleout: ScaleoutSettings) -> None:
    """Create the samples and state topics when they do not exist; :class:`SourceUnavailable` if Kafka is away."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=kafka.bootstrap_servers,
        client_id=kafka.client_id,
        request_timeout_ms=kafka.request_timeout_ms,
        **kafka_security_kwargs(kafka),
    )
    topics = [
        NewTopic(scaleout.samples_topic, scaleout.partitions, scaleout.replication_factor),
        NewTopic(
            scaleout.state_topic,
            scaleout.partitions,
            scaleout.replication_factor,
            # Small segments, cleaned early: a restore reads the partition's snapshots, which are
            # mostly not compacted yet otherwise (every checkpoint writes every asset).
            topic_configs={
                "cleanup.policy": "compact",
                "segment.ms": "600000",
                "min.cleanable.dirty.ratio": "0.1",
                "max.message.bytes": str(scaleout.max_snapshot_bytes + 65_536),
            },
        ),
    ]
    try:
        await admin.start()
        response: Any = await admin.create_topics(topics)
    except (KafkaError, OSError) as e:
        raise SourceUnavailable(
            f"Kafka at {kafka.bootstrap_servers}: cannot create the scale-out topics: {e}"
        ) from None
    finally:
        await admin.close()
    for entry in response.topic_errors:
        name, code = entry[0], entry[1]
        if code not in _OK_CODES:
            # Not fatal: the operators may have created it, and a denied creation says so in the log.
            log.warning("creating topic %s failed (Kafka error code %s); it must exist already", name, code)
        elif code == 0:
            log.info("created topic %s", name)
