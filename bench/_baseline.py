"""Before and after in one run: another checkout's package imported beside this one (``--baseline-src``).

On this shared machine, runs of their own a minute apart differed by 40 %; the same work timed in one
process, the two codes taking turns, meets the same load.  Used by ``detect_speed.py`` and
``forecast_speed.py``.

    git archive HEAD~1 daemon | tar -x -C /tmp/before      # the package as it was
    python bench/forecast_speed.py --baseline-src /tmp/before/daemon --baseline-label HEAD~1
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

BASELINE = "sentinelle_baseline"
"""The name the baseline package is imported under."""


def import_baseline(src: Path) -> None:
    """Make the package in ``src`` (a ``daemon/`` folder) importable as :data:`BASELINE`, beside this one.

    The package imports itself only relatively, so a link under another name is a second copy of it.
    """
    folder = Path(tempfile.mkdtemp(prefix="sentinelle_baseline_"))
    (folder / BASELINE).symlink_to((Path(src) / "sentinelle").resolve(), target_is_directory=True)
    sys.path.insert(0, str(folder))
