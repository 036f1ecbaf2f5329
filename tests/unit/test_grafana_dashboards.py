"""The committed Grafana dashboards are what deploy/grafana/dashboards.py writes, and hold together.

The PromQL of every panel is run against a real Prometheus in
``tests/integration/test_grafana_queries.py``; here only the files are checked.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "deploy" / "grafana"
GENERATOR = GRAFANA / "dashboards.py"
BOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))


def _generate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(GENERATOR), *args], capture_output=True, text=True, timeout=120)


def test_committed_files_are_the_generators_output(tmp_path: Path) -> None:
    r = _generate("--check")
    assert r.returncode == 0, r.stderr
    # The check can fail: a hand edit of a copy is caught and named.
    copy = tmp_path / "grafana"
    shutil.copytree(GRAFANA, copy)
    board = copy / "dashboards" / "sentinelle-fleet.json"
    board.write_text(board.read_text().replace("Ingest rate", "Ingest"))
    r = _generate("--check", "--out", str(copy))
    assert r.returncode == 1 and "sentinelle-fleet.json" in r.stderr


def _panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for p in board["panels"]:
        out.append(p)
        out.extend(p.get("panels", []))  # a collapsed row holds its panels
    return out


def test_three_views_with_queries_on_the_chosen_data_source_and_daemon() -> None:
    boards = {b.name: json.loads(b.read_text()) for b in BOARDS}
    assert set(boards) == {"sentinelle-asset.json", "sentinelle-fleet.json", "sentinelle-alarm-kpi.json"}
    assert len({b["uid"] for b in boards.values()}) == 3
    for name, board in boards.items():
        variables = {v["name"] for v in board["templating"]["list"]}
        assert {"datasource", "instance"} <= variables, name
        graphs = [p for p in _panels(board) if p["type"] != "row"]
        assert graphs, name
        for p in graphs:
            assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, (name, p["title"])
            assert p["targets"], (name, p["title"])
            for t in p["targets"]:
                assert 'instance=~"$instance"' in t["expr"], (name, p["title"], t["expr"])
                assert "quantile=" not in t["expr"]  # the forecast's label is level
    asset = boards["sentinelle-asset.json"]
    assert {"asset", "tag"} <= {v["name"] for v in asset["templating"]["list"]}
    assert "sentinelle_alerts_active" in asset["annotations"]["list"][0]["expr"]
    exprs = " ".join(t["expr"] for p in _panels(asset) for t in p.get("targets", []))
    for metric in (
        "sentinelle_tag_actual",
        "sentinelle_tag_forecast",
        "sentinelle_tag_estimate",
        "sentinelle_tag_anomaly_score",
    ):
        assert metric in exprs


def test_the_estimate_from_the_other_tags_is_drawn_beside_the_forecast() -> None:
    """Issue 14: the per-tag panel shows the asset model's estimate (its median) with the actual and the forecast."""
    asset = json.loads((GRAFANA / "dashboards" / "sentinelle-asset.json").read_text())
    beside = [
        p
        for p in _panels(asset)
        if any("sentinelle_tag_forecast" in t["expr"] for t in p.get("targets", []))
        and any("sentinelle_tag_estimate" in t["expr"] for t in p.get("targets", []))
    ]
    assert len(beside) == 1, [p["title"] for p in _panels(asset)]
    estimate = [t for t in beside[0]["targets"] if "sentinelle_tag_estimate" in t["expr"]]
    assert [t["legendFormat"] for t in estimate] == ["from others (median)"]
    assert 'level="0.5"' in estimate[0]["expr"] and 'tag=~"$tag"' in estimate[0]["expr"]
