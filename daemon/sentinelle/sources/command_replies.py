"""Publishing the replies to operator commands on ``commands.reply_topic`` (``docs/command-reply.schema.json``).

Replies are the producer's feedback; a command's effect does not depend on them, so a reply
that cannot be published is counted (``sentinelle_sink_*{sink="command_replies"}``) and logged,
never retried and never holding back the commit (``commands.py``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Final

from aiokafka.errors import KafkaError

from ..metrics import Metrics
from .command_wire import CommandReply, encode_reply

log = logging.getLogger(__name__)

REPLY_SINK_NAME: Final = "command_replies"


class ReplyPublisher:
    """Sends a batch of replies to ``topic`` with a producer and waits (``timeout_s``) for their acknowledgements."""

    def __init__(self, metrics: Metrics, topic: str, timeout_s: float) -> None:
        self._topic = topic
        self._timeout_s = timeout_s
        self._replies_delivered = metrics.sink_events.labels(REPLY_SINK_NAME)
        self._replies_failed = metrics.sink_errors.labels(REPLY_SINK_NAME)
        self._replies_dropped = metrics.sink_dropped.labels(REPLY_SINK_NAME)

    async def send(self, producer: Any, replies: list[CommandReply]) -> None:
        """Publish replies and wait for their acknowledgements; failures are counted and logged, not retried.

        Replies are for the producer's feedback; the command's effect does not depend on them,
        so a lost reply must not hold back the commit (the command would be applied twice).
        """
        if not replies:
            return
        acks: list[asyncio.Future[Any]] = []
        try:
            async with asyncio.timeout(self._timeout_s):
                for reply in replies:
                    key, value, headers = encode_reply(reply)
                    acks.append(await producer.send(self._topic, value=value, key=key, headers=headers))
                results = await asyncio.gather(*acks, return_exceptions=True)
        except (KafkaError, TimeoutError) as e:
            for a in acks:
                a.cancel()
            self._replies_failed.inc()
            self._replies_dropped.inc(len(replies))
            log.warning(
                "%d command replies could not be published to %s: %s",
                len(replies),
                self._topic,
                str(e) or type(e).__name__,
            )
            return
        failed = sum(1 for r in results if isinstance(r, BaseException))
        self._replies_delivered.inc(len(replies) - failed)
        if failed:
            self._replies_failed.inc()
            self._replies_dropped.inc(failed)
            log.warning("%d command replies could not be published to %s", failed, self._topic)
