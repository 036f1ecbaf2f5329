"""Run ``sentinelle run`` as its own process and read how it ended.

Start-up failures (an unreachable or refusing server marked required, a wrong
password) end the daemon with an exit status and a message on stderr, before any
pipeline exists; only a real process shows what systemd and an operator see.
The child gets a minimal environment — no inherited credentials — plus what the
test passes, so a secret the test puts in the environment is the only one there.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path


async def run_daemon(config: Path, env: dict[str, str], *, timeout_s: float = 120.0) -> tuple[int | None, str]:
    """``(exit status, stderr)`` of ``sentinelle run --config config`` under ``env``, within ``timeout_s``."""
    full_env = {
        "HF_HUB_OFFLINE": "1",
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        **env,
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sentinelle.cli",
        "run",
        "--config",
        str(config),
        env=full_env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(timeout_s):
            _, err = await proc.communicate()
    except TimeoutError as exc:
        proc.kill()
        _, err = await proc.communicate()
        tail = err.decode(errors="replace")[-2000:]
        raise AssertionError(f"sentinelle run did not exit within {timeout_s} s: {tail}") from exc
    return proc.returncode, err.decode(errors="replace")
