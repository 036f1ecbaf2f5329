"""What every command shares: the exit codes and the logging set-up."""

from __future__ import annotations

import logging
import sys

EXIT_OK, EXIT_BUG, EXIT_UNAVAILABLE, EXIT_CONFIG = 0, 1, 69, 78


EXIT_ALERTS_DROPPED = 75


log = logging.getLogger("sentinelle")


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", stream=sys.stderr, force=True
    )
    # asyncua logs every publish response at INFO; our own source logs what matters.
    logging.getLogger("asyncua").setLevel(max(logging.WARNING, logging.getLevelName(level)))
    # aiokafka logs every retry (~10/s while a broker is down); the Kafka sink logs one line per failure.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
