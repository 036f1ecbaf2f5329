"""Reading the evaluation caches back (forecasts and estimates kept between runs) without trusting them.

A cache only saves time: a file that does not read (cut short by a full disk, written by
another version, or not a cache at all) is logged and ignored, and its answers are computed
afresh and the file rewritten, rather than ending an evaluation with an unpickling traceback.
"""

from __future__ import annotations

import logging
import pickle
import zipfile
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

UNREADABLE = (
    OSError,
    EOFError,
    ValueError,
    KeyError,
    TypeError,
    AttributeError,
    ImportError,
    pickle.UnpicklingError,
    zipfile.BadZipFile,
)
"""What a damaged or foreign pickle or ``.npz`` file raises on reading."""


def ignored(path: Path, error: BaseException) -> None:
    """Log that the cache at ``path`` is ignored, and why."""
    log.warning(
        "cache %s unreadable (%s: %s): ignored, its answers are computed again", path, type(error).__name__, error
    )


def read_pickle(path: Path) -> dict[Any, Any] | None:
    """The dict pickled at ``path``; None when there is none or it does not read as one (logged)."""
    if not path.is_file():
        return None
    try:
        with path.open("rb") as f:
            loaded = pickle.load(f)
    except UNREADABLE as e:
        ignored(path, e)
        return None
    if not isinstance(loaded, dict):
        ignored(path, TypeError(f"holds a {type(loaded).__name__}, not a dict"))
        return None
    return loaded
