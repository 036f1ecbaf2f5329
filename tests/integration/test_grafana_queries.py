"""Every query of the Grafana dashboards returns data from a real Prometheus scraping a running daemon.

The chiller simulator runs a set-point violation (so an alert opens, and the alert
annotation and KPI panels have something to show); one daemon process (Holt, Kafka sink, and
the asset model for the estimate's series) is scraped by the test Prometheus.  Once an alert has opened and Prometheus
holds 20 scrapes, each dashboard's variable queries, annotation queries and panel queries
(``deploy/grafana/dashboards/*.json``, as Grafana would send them: variables filled from
the variable queries' own answers) are run over the scraped range, and each must return
data.

The test also checks which forecaster ran (the configured one, with no fallback) and runs
``promtool check metrics`` on the running daemon's /metrics.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import time
import tomllib
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from sentinelle.forecast import SHIPPED_ASSET_CHECKPOINT
from sentinelle.settings import FaultSettings, SimulatorSettings
from sentinelle.sim.server import ChillerServer

from .test_pipeline_e2e import _daemon_config, _free_port, _start_daemon

pytestmark = [pytest.mark.integration]

BOARDS = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "dashboards"
TIME_SCALE = 20.0
FAULT = FaultSettings(kind="setpoint_violation", onset_s=300.0, duration_s=300.0)
MIN_SCRAPES = 20
RATE_INTERVAL = "15s"
"""What Grafana's $__rate_interval would be at a 1 s scrape interval and this short a range, roughly."""


def _get(base: str, path: str, **params: str) -> Any:
    url = f"{base}{path}?{urllib.parse.urlencode(params, doseq=True)}"
    with urllib.request.urlopen(url, timeout=10) as r:
        body = json.load(r)
    assert body["status"] == "success", body
    return body["data"]


def _has_data(data: dict[str, Any]) -> bool:
    if data["resultType"] == "matrix":
        return any(s["values"] for s in data["result"])
    return bool(data["result"])


def _panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for p in board["panels"]:
        out.append(p)
        out.extend(p.get("panels", []))
    return out


def _fill(expr: str, variables: dict[str, str], range_s: int) -> str:
    filled = expr.replace("$__rate_interval", RATE_INTERVAL).replace("$__range", f"{range_s}s")
    for name, value in sorted(variables.items(), key=lambda kv: -len(kv[0])):
        filled = filled.replace(f"${name}", value)
    assert "$" not in filled, f"unfilled variable in {filled}"
    return filled


_LABEL_VALUES = re.compile(r"^label_values\((?P<selector>.+),\s*(?P<label>\w+)\)$")


def _variable_values(prom: str, query: str, variables: dict[str, str], start: float, end: float) -> list[str]:
    """A Grafana ``label_values(selector, label)`` variable query, through Prometheus's label API."""
    m = _LABEL_VALUES.match(query)
    assert m, f"unsupported variable query {query!r}"
    selector = _fill(m["selector"], variables, 0)
    values: list[str] = _get(
        prom, f"/api/v1/label/{m['label']}/values", **{"match[]": selector, "start": str(start), "end": str(end)}
    )
    return values


async def _wait_for(prom: str, query: str, timeout_s: float, proc_ok: Any, log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while not _get(prom, "/api/v1/query", query=query)["result"]:
        proc_ok()
        assert time.monotonic() < deadline, (
            f"Prometheus never answered {query!r}; daemon log:\n{log.read_text()[-3000:]}"
        )
        await asyncio.sleep(1)


@pytest.mark.asyncio
async def test_every_dashboard_query_returns_data(
    tmp_path: Path, kafka_bootstrap: str, prometheus_url: str, prometheus_targets_dir: Path
) -> None:
    sim = SimulatorSettings(port=0, time_scale=TIME_SCALE, seed=3, faults=(FAULT,))
    metrics_port = _free_port()
    instance = f"127.0.0.1:{metrics_port}"
    target_file = prometheus_targets_dir / f"grafana-{metrics_port}.json"
    log = tmp_path / "daemon.log"
    async with ChillerServer(sim) as server:
        sim_task = asyncio.create_task(server.run())
        config = _daemon_config(
            tmp_path,
            opcua_url=server.url,
            sim=sim,
            kafka=kafka_bootstrap,
            topic=f"sentinelle.grafana.{uuid.uuid4().hex[:8]}",
            metrics_port=metrics_port,
        )
        # Holt, not the model: the dashboards need data, not a good forecast, and on a shared test
        # machine (load 10 on 2 cores) the model did 3 windows/s, so detection lagged for minutes.
        # test_pipeline_e2e.py checks that the model runs.
        settings = tomllib.loads(config.read_text())
        # The asset model on (its estimate is a panel series), one estimate per real second (the demo's cadence):
        # one 7-tag pass costs about 23 ms of CPU on one thread.
        settings["forecast"] = {
            "forecaster": "holt",
            "asset_model_path": str(SHIPPED_ASSET_CHECKPOINT),
            "asset_estimate_every_steps": round(TIME_SCALE),
        }
        config.write_text(tomli_w.dumps(settings))
        proc = _start_daemon(config, log)

        def alive() -> None:
            assert proc.poll() is None, log.read_text()[-3000:]

        try:
            prometheus_targets_dir.mkdir(parents=True, exist_ok=True)
            target_file.write_text(json.dumps([{"targets": [instance]}]))
            start = time.time()
            sel = f'instance="{instance}"'
            # Enough ticks scraped for rates and quantiles, and an alert opened (fault + detection).
            await _wait_for(
                prometheus_url, f"count_over_time(sentinelle_up_state{{{sel}}}[10m]) >= {MIN_SCRAPES}", 120, alive, log
            )
            await _wait_for(prometheus_url, f"sentinelle_alerts_active{{{sel}}} > 0", 120, alive, log)
            # increase() over the openings counter needs two scrapes of it: the series is born at the first opening.
            await _wait_for(
                prometheus_url, f"count_over_time(sentinelle_alert_openings_total{{{sel}}}[10m]) >= 2", 60, alive, log
            )
            await _wait_for(prometheus_url, f"sentinelle_tag_anomaly_score{{{sel}}}", 30, alive, log)
            await _wait_for(prometheus_url, f"sentinelle_tag_estimate{{{sel}}}", 60, alive, log)

            # The configured forecaster ran, and nothing fell back to its baseline.
            active = _get(prometheus_url, "/api/v1/query", query=f"sentinelle_forecaster_active{{{sel}}} == 1")
            assert [r["metric"]["forecaster"] for r in active["result"]] == ["holt"], active
            fallback = _get(
                prometheus_url,
                "/api/v1/query",
                query=f"sentinelle_forecast_fallback_active{{{sel}}} + on (instance) "
                f"sum by (instance) (sentinelle_forecast_fallback_rows_total{{{sel}}})",
            )
            assert [float(r["value"][1]) for r in fallback["result"]] == [0.0], fallback

            with urllib.request.urlopen(f"http://{instance}/metrics", timeout=5) as r:
                exposed = r.read().decode()
            # The running daemon's exposition passes Prometheus's linter (no reserved labels and the like).
            promtool = shutil.which("promtool")
            assert promtool is not None, "promtool is not installed: run deploy/install-system-deps.sh"
            lint = await asyncio.to_thread(
                subprocess.run,
                [promtool, "check", "metrics"],
                input=exposed,
                capture_output=True,
                text=True,
                timeout=30,
            )
            assert lint.returncode == 0, lint.stdout + lint.stderr
            end = time.time()
            range_s = int(end - start) + 1
            failures, checked = [], 0
            for board_file in sorted(BOARDS.glob("*.json")):
                board = json.loads(board_file.read_text())
                variables = {"instance": re.escape(instance).replace("\\", "\\\\"), "datasource": ""}
                for v in board["templating"]["list"]:
                    if v["type"] != "query":
                        continue
                    values = _variable_values(prometheus_url, v["query"], variables, start, end)
                    checked += 1
                    if not values:
                        failures.append(f"{board_file.name}: variable {v['name']}: {v['query']} has no values")
                        continue
                    if v["name"] != "instance":
                        variables[v["name"]] = values[0]
                queries = [
                    (f"annotation {a['name']}", a["expr"], False) for a in board.get("annotations", {}).get("list", [])
                ]
                queries += [
                    (p["title"], t["expr"], bool(t.get("instant")))
                    for p in _panels(board)
                    for t in p.get("targets", [])
                ]
                for title, expr, instant in queries:
                    promql = _fill(expr, variables, range_s)
                    if instant:
                        data = _get(prometheus_url, "/api/v1/query", query=promql, time=str(end))
                    else:
                        data = _get(
                            prometheus_url,
                            "/api/v1/query_range",
                            query=promql,
                            # Steps counted back from end, so that end itself is evaluated: steps
                            # counted from start can stop up to one step short of it, before the
                            # scrape the waits above saw (increase() then had one sample, no data).
                            start=str(end - range_s),
                            end=str(end),
                            step="1",
                        )
                    checked += 1
                    if _has_data(data):
                        continue
                    failures.append(f"{board_file.name}: {title}: {promql}")
            assert not failures, "queries without data:\n" + "\n".join(failures)
            assert checked >= 25, checked
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    await asyncio.to_thread(proc.wait, 30)
                except subprocess.TimeoutExpired:
                    # Not this test's subject (test_pipeline_e2e.py checks the stop): on a loaded machine
                    # the exit can wait for a long forecast pass on the worker thread.
                    proc.kill()
                    proc.wait(10)
            target_file.unlink(missing_ok=True)
            server.stop()
            await asyncio.wait_for(sim_task, 10)
