"""What ``finetune`` and ``backtest`` read: a plant's history (configured sources, an export, or a
public data set) and the base checkpoint."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..settings import Settings
from .common import log


def _history_for(
    args: argparse.Namespace,
    settings: Settings,
    asset: str | None,
    start: float | None = None,
    end: float | None = None,
) -> list[Any]:
    """The history as regular-grid series (``start <= ts < end``): the asset's configured tags, or ``--tags``, or all.

    Read from the configured ``[[history.sources]]`` — the backfill's own configuration — so
    fine-tuning and backtests see the tags under their configured names; ``--data`` points
    such a source at another export (same format, columns and tag map), and only without
    a configured file source is an export's format guessed from its header.
    """
    from ..evaluation.history_data import cut, load_dataset, load_history, load_sources

    if args.period_s is not None and not args.period_s > 0:  # 0 overflowed the resampling, <0 read as no data
        raise ConfigError(f"must be above 0 seconds, not {args.period_s}", field="--period-s")
    if args.dataset is not None:
        series = load_dataset(args.dataset)
        picked = [s for s in series if args.tags is None or s.name in args.tags or s.name.split("/")[-1] in args.tags]
        if not picked:
            names = ", ".join(s.name.split("/")[-1] for s in series)
            raise ConfigError(f"no series of {args.dataset} named {args.tags} (it has: {names})", field="--tags")
        return cut(picked, start=start, end=end)
    configured = [t for t in settings.tags if asset is not None and t.asset == asset]
    tags = args.tags or [t.name for t in configured] or None
    sources = _history_sources(args, settings)
    where = str(args.data) if args.data is not None else ", ".join(s.label for s in sources or ())
    if asset is not None and not configured and args.tags is None:
        log.warning("no tags of asset %r in the config: reading every tag of %s", asset, where)
    periods = {t.name: t.period_s for t in settings.tags}
    units = {t.name: t.unit for t in settings.tags}
    if sources is None:
        series = load_history(
            args.data, tags=tags, periods=periods, units=units, default_period_s=args.period_s, timezone=args.timezone
        )
        return cut(series, start=start, end=end)
    return load_sources(
        sources,
        tags=tags,
        periods=periods,
        units=units,
        default_period_s=args.period_s,
        start=start,
        end=end,
        where=where,
    )


def _history_sources(args: argparse.Namespace, settings: Settings) -> list[Any] | None:
    """The configured history sources to read (``--source`` picks), ``--data`` put in a file source's place.

    None: ``--data`` with no configured file source to read it with (its format is then guessed).
    """
    configured = list(settings.history.sources)
    if args.source:
        known = {s.label for s in configured}
        unknown = [name for name in args.source if name not in known]
        if unknown:
            raise ConfigError(
                f"no history source named {unknown} (configured: {sorted(known) or 'none'})", field="--source"
            )
        configured = [s for s in configured if s.label in args.source]
    if args.data is None:
        if not configured:
            raise ConfigError(
                "no history to read: configure [[history.sources]] or give --data or --dataset", field="data"
            )
        return configured
    files = [s for s in configured if s.kind != "postgres"]
    if not files:
        return None
    if len(files) > 1:
        names = ", ".join(s.label for s in files)
        raise ConfigError(
            f"--data: several file sources are configured ({names}); pick one with --source", field="data"
        )
    source = files[0]
    suffix = ".parquet" if source.kind == "parquet" else ".csv"
    if args.data.is_dir():
        paths = sorted(p for p in args.data.iterdir() if p.suffix.lower() == suffix and p.is_file())
        if not paths:
            raise ConfigError(f"folder holds no {suffix} file", field=str(args.data))
    elif args.data.is_file():
        paths = [args.data]
    else:
        raise ConfigError("file or folder not found", field=str(args.data))
    log.info("reading %s as history source %s (%s, its tag map and dates)", args.data, source.label, source.kind)
    return [source.model_copy(update={"path": p}) for p in paths]


def _check_period(start: float | None, end: float | None) -> None:
    """``--from`` must come before ``--until`` (the two swapped read as "no data", or as too short a history)."""
    if start is not None and end is not None and start >= end:
        raise ConfigError("--from is not before --until: no time between them", field="--from")


def _base_checkpoint(args: argparse.Namespace, settings: Settings) -> Path:
    from ..forecast import SHIPPED_CHECKPOINT

    return Path(args.base or settings.forecast.model_path or SHIPPED_CHECKPOINT)
