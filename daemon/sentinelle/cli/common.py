"""What every command shares: the exit codes and the logging set-up."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from ..errors import ConfigError

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


# The flags naming a folder each command writes into, and those naming a file it writes (its folder is checked).
OUTPUT_FOLDERS = {
    "backtest": ("out",),
    "demo": ("out",),
    "evaluate": ("out", "forecast_cache", "results_dir", "cache_dir"),
    "pretrain": ("out",),
}
OUTPUT_FILES = {"make-cert": ("cert", "key"), "simulate": ("ground_truth",), "demo": ("ground_truth",)}


def check_writable_folder(path: Path, field: str) -> None:
    """Raise :class:`ConfigError` unless ``path`` is, or can be made, a folder this process writes in.

    Checked before any work, creating nothing: a report path that is a file, or under one, would
    otherwise fail with a traceback after an hour of replay (a backtest, an evaluation).
    """
    existing = path
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        where = "is" if existing == path else f"is under {existing}, which is"
        raise ConfigError(f"{path} {where} not a folder", field=field)
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"{path}: no permission to write in {existing}", field=field)


def check_outputs(args: argparse.Namespace) -> None:
    """The command's output flags (:data:`OUTPUT_FOLDERS`, :data:`OUTPUT_FILES`) name places it can write."""
    for attr in OUTPUT_FOLDERS.get(args.command, ()):
        if getattr(args, attr, None) is not None:
            check_writable_folder(Path(getattr(args, attr)), "--" + attr.replace("_", "-"))
    for attr in OUTPUT_FILES.get(args.command, ()):
        path = getattr(args, attr, None)
        if path is not None:
            if Path(path).is_dir():
                raise ConfigError(f"{path} is a folder; give a file name", field="--" + attr.replace("_", "-"))
            check_writable_folder(Path(path).parent, "--" + attr.replace("_", "-"))
