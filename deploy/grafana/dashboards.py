"""Grafana dashboards for sentinelle, as code (Grafana's own grafana-foundation-sdk).

Writes, next to this file::

    dashboards/sentinelle-asset.json      one asset: each tag's actual against its forecast band and
                                          median, anomaly scores, open alerts as annotations
    dashboards/sentinelle-fleet.json      the daemon's health: ingest, drops, queues, forecast latency
                                          and fallback, sink delivery, alert spool
    dashboards/sentinelle-alarm-kpi.json  the operators' alarm load (ISA-18.2 / EEMUA 191 style)
    provisioning/dashboards.yaml          a Grafana dashboard provider reading dashboards/
    provisioning/datasources.yaml         a Prometheus data source (edit its URL)

Run ``make dashboards`` (or ``python deploy/grafana/dashboards.py``); ``--check`` compares the
files with what this script writes and exits 1 on a difference (the test suite runs it).
The committed JSON is always this script's output: edit the script, not the JSON.

Every query is PromQL against the daemon's own metrics (``daemon/sentinelle/metrics.py``),
and ``tests/integration/test_grafana_queries.py`` runs each one against a real Prometheus
scraping a running daemon.  Panels whose metric a build may not have yet (the alert spool)
say so in their description and show "no data" rather than a made-up zero.

A new alarm KPI is one more entry in :data:`KPI_PANELS`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from grafana_foundation_sdk.builders import bargauge, prometheus, stat, timeseries
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as dm

HERE = Path(__file__).resolve().parent
DATASOURCE = dm.DataSourceRef(type_val="prometheus", uid="${datasource}")
INSTANCE = 'instance=~"$instance"'
RATE = "$__rate_interval"

Panel = timeseries.Panel | stat.Panel | bargauge.Panel


@dataclass(frozen=True, slots=True)
class Query:
    """One PromQL query of a panel and its series' legend."""

    expr: str
    legend: str = ""


# -- panel helpers ------------------------------------------------------------------------------


def _targets(queries: Sequence[Query], instant: bool = False) -> list[prometheus.Dataquery]:
    out = []
    for i, q in enumerate(queries):
        t = prometheus.Dataquery().expr(q.expr).ref_id(chr(ord("A") + i)).datasource(DATASOURCE)
        t = t.instant() if instant else t.range()
        if q.legend:
            t = t.legend_format(q.legend)
        out.append(t)
    return out


def graph(
    title: str, description: str, queries: Sequence[Query], unit: str = "short", width: int = 12, height: int = 8
) -> timeseries.Panel:
    """A time series panel."""
    p = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(width)
        .height(height)
        .line_width(1)
        .fill_opacity(10)
    )
    for t in _targets(queries):
        p = p.with_target(t)
    return p


def single(title: str, description: str, queries: Sequence[Query], unit: str = "short", width: int = 6) -> stat.Panel:
    """A stat panel of the latest value(s)."""
    p = (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(width)
        .height(4)
        .color_mode(common.BigValueColorMode.VALUE)
        .graph_mode(common.BigValueGraphMode.AREA)
    )
    for t in _targets(queries):
        p = p.with_target(t)
    return p


def ranking(title: str, description: str, query: Query, unit: str = "short", width: int = 12) -> bargauge.Panel:
    """Horizontal bars of an instant query (a top-k)."""
    return (
        bargauge.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(width)
        .height(8)
        .orientation(common.VizOrientation.HORIZONTAL)
        .display_mode(common.BarGaugeDisplayMode.BASIC)
        .with_target(_targets([query], instant=True)[0])
    )


def _datasource_variable() -> db.DatasourceVariable:
    return db.DatasourceVariable("datasource").label("Prometheus").type("prometheus")


def _query_variable(name: str, label: str, query: str, multi: bool = True) -> db.QueryVariable:
    v = (
        db.QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query(query)
        .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dm.VariableSort.ALPHABETICAL_ASC)
    )
    if multi:
        v = v.multi(True).include_all(True).all_value(".*")
    return v


def _dashboard(uid: str, title: str, description: str) -> db.Dashboard:
    return (
        db.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["sentinelle"])
        .time("now-1h", "now")
        .refresh("30s")
        .timezone("browser")
        .editable()
        .with_variable(_datasource_variable())
        .with_variable(_query_variable("instance", "Daemon", "label_values(sentinelle_up_state, instance)"))
    )


# -- the asset view -----------------------------------------------------------------------------

TAG = 'asset=~"$asset", tag=~"$tag", ' + INSTANCE


def asset_dashboard() -> db.Dashboard:
    """Each tag of the chosen asset(s): actual, forecast band (lowest..highest level) and median, the
    estimate from the asset's other tags (when the asset model runs), score."""
    band = (
        graph(
            "$tag: actual, forecast, estimate from the other tags",
            "The tag's latest resampled value, the median forecast made one step earlier from the tag's own "
            "past, the band between the lowest and highest forecast levels (0.1 and 0.9 by default), and the "
            "median estimate of the value from the asset's other tags at that instant (the asset model, "
            "forecast.asset_model_path; no line without it). The forecast follows what the tag does; the "
            "estimate says what the rest of the asset implies. Shaded regions: the asset's open alerts.",
            [
                Query(f"sentinelle_tag_actual{{{TAG}}}", "actual"),
                Query(f'sentinelle_tag_forecast{{{TAG}, level="0.5"}}', "forecast (median)"),
                Query(f"min by (asset, tag) (sentinelle_tag_forecast{{{TAG}}})", "band low"),
                Query(f"max by (asset, tag) (sentinelle_tag_forecast{{{TAG}}})", "band high"),
                Query(f'sentinelle_tag_estimate{{{TAG}, level="0.5"}}', "from others (median)"),
            ],
            width=16,
        )
        .override_by_name(
            "band high",
            [dm.DynamicConfigValue("custom.fillBelowTo", "band low"), dm.DynamicConfigValue("custom.lineWidth", 0)],
        )
        .override_by_name("band low", [dm.DynamicConfigValue("custom.lineWidth", 0)])
        .override_by_name("forecast (median)", [dm.DynamicConfigValue("custom.lineStyle", {"fill": "dash"})])
        .override_by_name(
            "from others (median)", [dm.DynamicConfigValue("custom.lineStyle", {"fill": "dot", "dash": [2, 4]})]
        )
    )
    score = (
        graph(
            "$tag: anomaly score",
            "Anomaly score of the tag's latest residual, 0 (normal) to 1.",
            [Query(f"sentinelle_tag_anomaly_score{{{TAG}}}", "score")],
            width=8,
        )
        .min(0)
        .max(1)
    )
    return (
        _dashboard(
            "sentinelle-asset",
            "sentinelle: asset",
            "One asset's tags against their forecasts, anomaly scores and alerts (sentinelle daemon metrics).",
        )
        .with_variable(
            _query_variable("asset", "Asset", f"label_values(sentinelle_tag_actual{{{INSTANCE}}}, asset)", multi=False)
        )
        .with_variable(
            _query_variable("tag", "Tag", f'label_values(sentinelle_tag_actual{{asset=~"$asset", {INSTANCE}}}, tag)')
        )
        .annotation(
            db.AnnotationQuery()
            .name("Open alerts")
            .datasource(DATASOURCE)
            .enable(True)
            .icon_color("red")
            .expr(f'sum by (asset, severity) (sentinelle_alerts_active{{asset=~"$asset", {INSTANCE}}}) > 0')
        )
        .with_row(db.Row("Open alerts"))
        .with_panel(
            single(
                "Open alerts by severity",
                "Alerts open on the asset now.",
                [Query(f'sum by (severity) (sentinelle_alerts_active{{asset=~"$asset", {INSTANCE}}})', "{{severity}}")],
                width=24,
            )
        )
        # One row per chosen tag (Grafana repeats the row and its two panels).
        .with_row(db.Row("$tag").repeat("tag").with_panel(band).with_panel(score))
    )


# -- the fleet-health view ----------------------------------------------------------------------


def _quantile(q: float, metric: str) -> Query:
    return Query(
        f"histogram_quantile({q}, sum by (le) (rate({metric}_bucket{{{INSTANCE}}}[{RATE}])))", f"p{round(q * 100)}"
    )


def fleet_dashboard() -> db.Dashboard:
    """The daemon's own health, stage by stage: sources → windows → forecast → detect → sinks."""
    return (
        _dashboard(
            "sentinelle-fleet",
            "sentinelle: fleet health",
            "The sentinelle daemon's health: ingest, drops, queues, forecaster, sinks (daemon metrics).",
        )
        .with_row(db.Row("Sources and windows"))
        .with_panel(
            graph(
                "Ingest rate",
                "Samples received per second, per source, and those that entered a tag's window.",
                [
                    Query(
                        f"sum by (source) (rate(sentinelle_samples_ingested_total{{{INSTANCE}}}[{RATE}]))", "{{source}}"
                    ),
                    Query(f"sum(rate(sentinelle_samples_accepted_total{{{INSTANCE}}}[{RATE}]))", "accepted"),
                ],
                unit="ops",
            )
        )
        .with_panel(
            graph(
                "Samples dropped by reason",
                "Samples skipped per second, by reason (every reason is pre-declared: a flat zero is a real zero).",
                [
                    Query(
                        f"sum by (reason) (rate(sentinelle_samples_dropped_total{{{INSTANCE}}}[{RATE}]))", "{{reason}}"
                    )
                ],
                unit="ops",
            )
        )
        .with_panel(
            graph(
                "Sources connected",
                "1 while a source is connected and subscribed; reconnection attempts per minute.",
                [
                    Query(f"sentinelle_source_connected{{{INSTANCE}}}", "{{source}} connected"),
                    Query(
                        f"sum by (source) (increase(sentinelle_source_reconnects_total{{{INSTANCE}}}[1m]))",
                        "{{source}} reconnects/min",
                    ),
                ],
                width=8,
            )
        )
        .with_panel(
            graph(
                "Gap slots",
                "Closed slots without a usable value, per second (a source outage shows here).",
                [Query(f"sum(rate(sentinelle_window_gap_slots_total{{{INSTANCE}}}[{RATE}]))", "gaps")],
                unit="ops",
                width=8,
            )
        )
        .with_panel(
            graph(
                "Queue depths",
                "Items waiting between stages; a queue that only grows means the next stage is stuck or slow.",
                [Query(f"sentinelle_queue_depth{{{INSTANCE}}}", "{{queue}}")],
                width=8,
            )
        )
        .with_row(db.Row("Forecast and detection"))
        .with_panel(
            graph(
                "Forecast call latency",
                "Wall time of one forecaster call (p50, p99), and sample-to-detection p99.",
                [
                    _quantile(0.5, "sentinelle_forecast_batch_seconds"),
                    _quantile(0.99, "sentinelle_forecast_batch_seconds"),
                    Query(
                        "histogram_quantile(0.99, sum by (le) "
                        f"(rate(sentinelle_sample_to_detection_seconds_bucket{{{INSTANCE}}}[{RATE}])))",
                        "sample to detection p99",
                    ),
                ],
                unit="s",
                width=8,
            )
        )
        .with_panel(
            graph(
                "Forecaster in use",
                "1 for the forecaster answering now; fallback 1 while the configured one is replaced by its "
                "baseline for whole calls (it failed and waits for its retry, or could not be loaded).",
                [
                    Query(f"max by (forecaster) (sentinelle_forecaster_active{{{INSTANCE}}})", "{{forecaster}}"),
                    Query(f"max(sentinelle_forecast_fallback_active{{{INSTANCE}}})", "fallback"),
                ],
                width=8,
            )
        )
        .with_panel(
            graph(
                "Forecaster errors and fallback rows",
                "Failed forecaster calls, windows whose non-finite forecast the baseline answered, and passes "
                "slower than their ticks, per minute.",
                [
                    Query(
                        f"sum by (forecaster) (increase(sentinelle_forecast_errors_total{{{INSTANCE}}}[1m]))",
                        "{{forecaster}} errors",
                    ),
                    Query(
                        f"sum by (forecaster) (increase(sentinelle_forecast_fallback_rows_total{{{INSTANCE}}}[1m]))",
                        "{{forecaster}} fallback rows",
                    ),
                    Query(
                        f"sum by (forecaster) (increase(sentinelle_forecast_overruns_total{{{INSTANCE}}}[1m]))",
                        "{{forecaster}} overruns",
                    ),
                ],
                width=8,
            )
        )
        .with_row(db.Row("Alerts out"))
        .with_panel(
            graph(
                "Sink delivery",
                "Alert events delivered, failed and dropped per minute, per sink.",
                [
                    Query(
                        f"sum by (sink) (increase(sentinelle_sink_events_delivered_total{{{INSTANCE}}}[1m]))",
                        "{{sink}} delivered",
                    ),
                    Query(
                        f"sum by (sink) (increase(sentinelle_sink_errors_total{{{INSTANCE}}}[1m]))", "{{sink}} errors"
                    ),
                    Query(
                        f"sum by (sink) (increase(sentinelle_sink_events_dropped_total{{{INSTANCE}}}[1m]))",
                        "{{sink}} dropped",
                    ),
                ],
            )
        )
        .with_panel(
            graph(
                "Alert spool",
                "Alert events Kafka has not acknowledged yet (in memory, in flight or spooled) and those "
                "waiting in the on-disk spool. No data: this daemon version has no spool.",
                [
                    Query(f"sum by (instance) (sentinelle_alert_pending_events{{{INSTANCE}}})", "pending events"),
                    Query(f"sum by (instance) (sentinelle_alert_spool_events{{{INSTANCE}}})", "spooled events"),
                ],
                width=8,
            ).no_value("no spool in this version")
        )
        .with_panel(
            graph(
                "Alert spool size",
                "Size of the on-disk alert spool's files (kafka.spool_max_bytes bounds it; past it the oldest "
                "events are dropped). No data: this daemon version has no spool.",
                [Query(f"sum by (instance) (sentinelle_alert_spool_bytes{{{INSTANCE}}})", "spool")],
                unit="bytes",
                width=4,
            ).no_value("no spool in this version")
        )
    )


# -- the alarm-KPI view -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KpiPanel:
    """One alarm-KPI panel: a graph over time, or a ranking (top-k) over the dashboard's range."""

    title: str
    description: str
    queries: tuple[Query, ...]
    kind: str = "graph"
    """graph: a time series of every query; ranking: bars of the first query, now."""
    unit: str = "short"


KPI_PANELS: tuple[KpiPanel, ...] = (
    KpiPanel(
        "Alert openings per 10 minutes",
        "Alerts opened in the last 10 minutes, all assets of the daemon (EEMUA 191: about 1 per 10 minutes "
        "is manageable, over 10 is a flood).",
        (
            Query(
                f'sum by (instance) (increase(sentinelle_alert_events_total{{event="opened", {INSTANCE}}}[10m]))',
                "{{instance}} openings",
            ),
        ),
    ),
    KpiPanel(
        "Alert openings per asset per 10 minutes",
        "Alerts each asset opened in the last 10 minutes (a flood counts once, as its flood alert): the "
        "operator's load per asset, and the SentinelleAlarm* rules' sentinelle:alert_openings:increase10m.",
        (Query(f"sum by (asset) (increase(sentinelle_alert_openings_total{{{INSTANCE}}}[10m]))", "{{asset}}"),),
    ),
    KpiPanel(
        "Openings in the flood window per asset",
        "Alerts each asset opened within detect.flood_window_s, flood members included: past the flood "
        "threshold, new openings are grouped into one flood alert.",
        (Query(f"max by (asset) (sentinelle_alert_openings_in_flood_window{{{INSTANCE}}})", "{{asset}}"),),
    ),
    KpiPanel(
        "Top alerts by openings",
        "The ten asset and alert-kind pairs that opened most over the dashboard's range: the bad actors to "
        "review first.",
        (
            Query(
                f"topk(10, sum by (asset, kind) (increase(sentinelle_alert_openings_total{{{INSTANCE}}}[$__range])))",
                "{{asset}} {{kind}}",
            ),
        ),
        kind="ranking",
    ),
    KpiPanel(
        "Open alerts per asset",
        "Alerts standing open, per asset and severity: a standing alarm that nobody clears is a bad actor.",
        (Query(f"sum by (asset, severity) (sentinelle_alerts_active{{{INSTANCE}}})", "{{asset}} {{severity}}"),),
    ),
    KpiPanel(
        "Top assets by time in alarm",
        "Mean number of open alerts per asset over the dashboard's range (alert-hours per hour): the bad actors.",
        (
            Query(
                f"topk(10, sum by (asset) (avg_over_time(sentinelle_alerts_active{{{INSTANCE}}}[$__range])))",
                "{{asset}}",
            ),
        ),
        kind="ranking",
    ),
    KpiPanel(
        "Alert changes per asset per hour (chattering)",
        "How often an asset's count of open alerts changed in the last hour (each opening and each clearing "
        "counts): an asset whose alerts open and clear over and over chatters.",
        (Query(f"sum by (asset) (changes(sentinelle_alerts_active{{{INSTANCE}}}[1h]))", "{{asset}}"),),
    ),
    KpiPanel(
        "Re-activations and latched alerts per hour",
        "Cleared alerts that came back within their re-arm time (chatter), per asset and subject, and alerts "
        "latched because their subject chattered. The counters exist from the first event: 0 before.",
        (
            Query(
                f"sum by (asset, subject) (increase(sentinelle_alert_reactivations_total{{{INSTANCE}}}[1h])) "
                "or on () vector(0)",
                "{{asset}} {{subject}} re-activations",
            ),
            Query(
                f"sum by (asset, kind) (increase(sentinelle_alert_latched_total{{{INSTANCE}}}[1h])) or on () vector(0)",
                "{{asset}} {{kind}} latched",
            ),
        ),
    ),
    KpiPanel(
        "Data-quality alerts per hour",
        "Data-quality alerts opened (for instrument technicians), by reason.",
        (Query(f"sum by (reason) (increase(sentinelle_data_quality_alerts_total{{{INSTANCE}}}[1h]))", "{{reason}}"),),
    ),
)
"""The alarm-KPI view's panels, in order; add an entry for a new KPI metric."""


def kpi_dashboard(panels: Sequence[KpiPanel] = KPI_PANELS) -> db.Dashboard:
    d = _dashboard(
        "sentinelle-alarm-kpi",
        "sentinelle: alarm KPIs",
        "The operators' alarm load from sentinelle's alerts: openings, standing alarms, bad actors, chattering.",
    )
    for p in panels:
        if p.kind == "ranking":
            d = d.with_panel(ranking(p.title, p.description, p.queries[0], p.unit))
        else:
            d = d.with_panel(graph(p.title, p.description, p.queries, p.unit))
    return d


# -- files --------------------------------------------------------------------------------------

PROVIDER_YAML = """\
# Grafana dashboard provisioning for sentinelle (written by deploy/grafana/dashboards.py).
# Copy to /etc/grafana/provisioning/dashboards/sentinelle.yaml and point `path` at the
# directory holding the dashboards/*.json files of this folder.
apiVersion: 1
providers:
  - name: sentinelle
    folder: sentinelle
    type: file
    disableDeletion: true
    allowUiUpdates: false
    updateIntervalSeconds: 60
    options:
      path: /var/lib/grafana/dashboards/sentinelle
      foldersFromFilesStructure: false
"""

DATASOURCE_YAML = """\
# A Prometheus data source for the sentinelle dashboards (written by deploy/grafana/dashboards.py).
# Copy to /etc/grafana/provisioning/datasources/sentinelle.yaml and set `url` to the Prometheus
# that scrapes the daemons (job "sentinelle"); the dashboards let you pick any Prometheus source.
apiVersion: 1
datasources:
  - name: Prometheus (sentinelle)
    type: prometheus
    access: proxy
    url: http://127.0.0.1:9090
    jsonData:
      timeInterval: 15s
"""


def render() -> dict[str, str]:
    """Relative path → file content, for every file this script writes."""
    boards = {
        "sentinelle-asset.json": asset_dashboard(),
        "sentinelle-fleet.json": fleet_dashboard(),
        "sentinelle-alarm-kpi.json": kpi_dashboard(),
    }
    files = {
        f"dashboards/{name}": json.dumps(board.build(), cls=JSONEncoder, sort_keys=True, indent=2) + "\n"
        for name, board in boards.items()
    }
    files["provisioning/dashboards.yaml"] = PROVIDER_YAML
    files["provisioning/datasources.yaml"] = DATASOURCE_YAML
    return files


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE, help="directory to write into (default: this one)")
    parser.add_argument("--check", action="store_true", help="compare with the files there; exit 1 if they differ")
    args = parser.parse_args(argv)
    stale = []
    for rel, text in render().items():
        path = args.out / rel
        if args.check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(rel)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    if stale:
        print(f"out of date (run `make dashboards`): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
