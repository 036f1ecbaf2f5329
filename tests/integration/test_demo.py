"""``sentinelle demo`` end to end: the live view shows each tag's estimate from the other tags (issue 14).

The demo is one process (simulator + daemon, no other service): it runs the package's asset model on
the simulated chiller's seven tags, so its /metrics soon carries ``sentinelle_tag_estimate`` for every
tag, and the live view (plain text when stdout is not a terminal) a number in the "from others" column.
The waits are bounded: the model loads and the first estimate needs a closed slot.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from sentinelle.settings import SimulatorSettings
from sentinelle.sim.tags import CHILLER_TAGS

from .test_pipeline_e2e import _free_port

pytestmark = [pytest.mark.integration]

ESTIMATE_WAIT_S = 180.0
"""Model loading and the first estimates: the whole test took 25 s on the shared 2 cores at load 5."""


def _scrape(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            return str(r.read().decode())
    except OSError:  # not serving yet
        return ""


def test_the_demo_shows_the_estimate_from_the_other_tags(tmp_path: Path) -> None:
    port = _free_port()
    asset = SimulatorSettings().asset
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    view, log = tmp_path / "view.txt", tmp_path / "log.txt"
    with open(view, "wb") as out, open(log, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sentinelle.cli", "demo", "--prometheus-port", str(port), "--out", str(tmp_path)],
            stdout=out,
            stderr=err,
            env=env,
        )
    try:
        deadline = time.monotonic() + ESTIMATE_WAIT_S
        tagged: set[str] = set()
        while len(tagged) < len(CHILLER_TAGS):
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, f"estimates for {sorted(tagged)} only; log:\n{log.read_text()[-3000:]}"
            text = _scrape(port)
            tagged = set(re.findall(r'^sentinelle_tag_estimate\{[^}]*tag="([^"]+)"', text, re.M))
            time.sleep(1.0)  # polling a server that has no event to await
        assert tagged == {f"{asset}.{t}" for t in CHILLER_TAGS}
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    # The last table the view drew (written again at the stop): a number under "from others" on every tag's row.
    text = view.read_text()
    table = text[text.rindex("from others") :]
    rows = [line.split() for line in table.splitlines()[1:] if line.startswith(f"{asset}.")]
    assert len(rows) == len(CHILLER_TAGS), table
    for row in rows:
        float(row[5])  # the estimate's median, not "-"
        assert re.fullmatch(r"[+-]\d+\.\d", row[6]), row  # its deviation in half bands
