"""The test Kafka broker as a process: for tests that pause it (SIGSTOP) to make a silent broker.

A paused broker accepts connections (the kernel does) and never answers — the outage a
refused connection cannot show.  Only the broker ``deploy/kafka/kafka.sh`` started can be
paused, so a run against another broker skips those tests, saying why.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def kafka_pid() -> int:
    """The test broker's pid (deploy/kafka/kafka.sh writes it under $SENTINELLE_RUN_DIR)."""
    pid_file = Path(os.environ.get("SENTINELLE_RUN_DIR", ".run")) / "kafka" / "kafka.pid"
    if not pid_file.exists():
        pytest.skip(f"no Kafka pid file at {pid_file}: pausing the broker needs the one deploy/kafka/kafka.sh started")
    return int(pid_file.read_text().strip())
