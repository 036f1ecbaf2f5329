"""Try the alert life cycle's settings (k of n to open, the clearing run) on SKAB's valve1 group alone.

    .venv/bin/python bench/skab/tune_lifecycle_valve1.py [--data ../shared/data]

Writes tuning_lifecycle_valve1.json.  The headline's asset detector (``DetectSettings``
defaults, likelihood layer included) with ``open_k``/``open_n`` and ``clear_normal_steps``
varied; unlike the other tuning scripts the per-tag part is replayed for each life cycle too
(it shares the settings).  The rule: the highest valve1 F1 among configurations whose valve1
FAR is under 13.55 %, ties broken by the lower FAR.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from tune_likelihood_valve1 import asset_prediction
from tune_valve1 import group_scores, valve1_recordings, write_grid

from sentinelle.evaluation.replay import replay, replay_settings
from sentinelle.settings import DetectSettings

RESULTS = Path(__file__).resolve().parents[2] / "docs" / "results" / "skab"
"""Where this script writes its JSON, beside the report it informs."""

GRID: dict[str, tuple[Any, ...]] = {
    "open": ((1, 1), (2, 3), (3, 5), (5, 10)),  # (open_k, open_n)
    "clear_normal_steps": (5, 10, 20, 30),
}


def main() -> None:
    recs = valve1_recordings(__doc__.splitlines()[0])
    rows = []
    for (k, n), clear in itertools.product(*GRID.values()):
        config = {"open_k": k, "open_n": n, "clear_normal_steps": clear}
        settings = DetectSettings(asset_enabled=True, **config)
        per_tag_settings = replay_settings("holt", DetectSettings(**config))
        scores = group_scores(
            recs, [asset_prediction(r, settings) | replay(r, per_tag_settings).anomalous for r in recs]
        )
        rows.append({"config": config, **scores})
        print(rows[-1], flush=True)
    write_grid(RESULTS.joinpath("tuning_lifecycle_valve1.json"), rows)


if __name__ == "__main__":
    main()
