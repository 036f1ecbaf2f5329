"""What ``sentinelle check-config`` prints: a summary of a valid configuration, and its warnings.

The summary names everything the daemon would start with — sources, tags, the
forecaster, every sink, the history sources and how far back the backfill reads,
the per-asset adapters and their tags — so an operator sees before a start what
the file really says.  It reads no data and imports no model: only the settings
and, for adapters, their small ``manifest.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .settings import CsvEventsSource, CsvWideSource, OpcUaSourceSettings, ParquetSource, PostgresSource, Settings
from .timing import backfill_lookback_s, period_warnings

_MAX_LISTED = 10


def _listed(names: list[str]) -> str:
    head = ", ".join(names[:_MAX_LISTED])
    return head + (f" and {len(names) - _MAX_LISTED} more" if len(names) > _MAX_LISTED else "")


def summary_lines(settings: Settings) -> list[str]:
    """The summary, one line per item (indented under the file's name by the caller)."""
    assets = sorted({t.asset for t in settings.tags})
    fc = settings.forecast
    out = [
        f"sources: {', '.join(f'{s.name} ({s.url}, {_source_security(s)})' for s in settings.sources)}",
        f"tags: {len(settings.tags)} on {len(assets)} assets ({_listed(assets)})",
        f"forecaster: {fc.forecaster}, horizon {fc.horizon_steps} steps",
    ]
    out += sink_lines(settings)
    out += history_lines(settings)
    asset_of = {t.name: t.asset for t in settings.tags}
    if fc.forecaster == "model":
        out += adapter_lines(fc.adapters_dir, asset_of)
    if fc.asset_model_path is None:
        out.append("asset model: off")
    else:
        out.append(f"asset model: {fc.asset_model_path}")
        out += adapter_lines(fc.asset_model_adapters_dir, asset_of, "asset-model adapters", "the base asset model")
    return out


def sink_lines(settings: Settings) -> list[str]:
    """Every sink the daemon starts, and the metrics endpoint."""
    kafka, prom, console = settings.kafka, settings.prometheus, settings.console
    sinks = []
    if kafka.enabled:
        security = kafka.security_protocol + (
            f" {kafka.sasl_mechanism}" if kafka.security_protocol == "SASL_SSL" else ""
        )
        sinks.append(f"kafka topic {kafka.topic} on {kafka.bootstrap_servers} ({security})")
    if console.jsonl_path is not None:
        sinks.append(f"jsonl {console.jsonl_path}")
    sinks.append("console (live view)" if console.live_view else "console (log lines)")
    return [
        f"sinks: {'; '.join(sinks)}",
        f"metrics: {f'http://{prom.host}:{prom.port}/metrics' if prom.enabled else 'disabled'}",
    ]


def history_lines(settings: Settings) -> list[str]:
    """The history sources (what each reads) and the span the backfill covers."""
    h = settings.history
    if not h.sources:
        return ["history: none (the daemon starts cold)"]
    out = [f"history: {len(h.sources)} sources, backfill reads the last {backfill_lookback_s(settings):g} s"]
    for src in h.sources:
        where: str
        if isinstance(src, CsvEventsSource | CsvWideSource | ParquetSource):
            where = f"{src.path}" + ("" if Path(src.path).exists() else " (not found)")
        elif isinstance(src, PostgresSource):
            where = f"table {src.table}"
        mapped = f", {len(src.tag_map)} names mapped" if src.tag_map else ""
        out.append(f"  {src.label} ({src.kind}): {where}, zone {src.timezone}{mapped}")
    return out


def adapter_lines(
    adapters_dir: Path | None,
    asset_of: dict[str, str],
    title: str = "adapters",
    base: str = "the base model",
) -> list[str]:
    """The per-asset adapters found under ``adapters_dir`` and the tags each was trained on."""
    if adapters_dir is None:
        return [f"{title}: none ({base} for every asset)"]
    root = Path(adapters_dir)
    if not root.is_dir():
        return [f"{title}: {root} (not found: {base} for every asset)"]
    out = [f"{title}: {root}"]
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        manifest = _manifest(d / "manifest.json")
        if manifest is None:
            out.append(f"  {d.name}: no readable manifest.json (refused at start)")
            continue
        tags = [str(t) for t in manifest.get("tags", [])]
        foreign = [t for t in tags if asset_of.get(t) != d.name]
        note = f" (not tags of asset {d.name}: {_listed(foreign)})" if foreign else ""
        out.append(f"  {d.name}: {len(tags)} tags ({_listed(tags)}){note}")
    if len(out) == 1:
        out[0] += f" (empty: {base} for every asset)"
    return out


def _manifest(path: Path) -> dict[str, Any] | None:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return raw if isinstance(raw, dict) else None


def warning_lines(settings: Settings) -> list[str]:
    """Settings that validate but make no sense against the tags' periods (see :func:`timing.period_warnings`)."""
    return [f"warning: {w}" for w in period_warnings(settings)]


def _source_security(source: OpcUaSourceSettings) -> str:
    """``Basic256Sha256/SignAndEncrypt, user sentinelle`` or ``no security, anonymous``."""
    channel = "no security" if source.security_policy == "None" else f"{source.security_policy}/{source.security_mode}"
    if source.username is not None:
        return f"{channel}, user {source.username}"
    return f"{channel}, {'X.509 user' if source.user_certificate_path else 'anonymous'}"
