"""Try the alert life cycle's settings (k of n to open, the clearing run) on SKAB's valve1 group alone.

    .venv/bin/python docs/results/skab/tune_lifecycle_valve1.py [--data ../shared/data]

Writes tuning_lifecycle_valve1.json.  The headline's asset detector (``DetectSettings``
defaults, likelihood layer included) with ``open_k``/``open_n`` and ``clear_normal_steps``
varied; unlike the other tuning scripts the per-tag part is replayed for each life cycle too
(it shares the settings).  The rule: the highest valve1 F1 among configurations whose valve1
FAR is under 13.55 %, ties broken by the lower FAR.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
from tune_likelihood_valve1 import asset_prediction

from sentinelle.evaluation.nab import binary_scores, changepoints_of, skab_nab, times_of
from sentinelle.evaluation.replay import replay, replay_settings
from sentinelle.evaluation.skab import skab_recordings
from sentinelle.settings import DetectSettings

GROUP = "valve1"
MAX_FAR_PERCENT = 13.55
GRID: dict[str, tuple[Any, ...]] = {
    "open": ((1, 1), (2, 3), (3, 5), (5, 10)),  # (open_k, open_n)
    "clear_normal_steps": (5, 10, 20, 30),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None)
    args = parser.parse_args()
    recs = [r for r in skab_recordings(args.data) if r.name.startswith(GROUP + "/")]
    rows = []
    for (k, n), clear in itertools.product(*GRID.values()):
        config = {"open_k": k, "open_n": n, "clear_normal_steps": clear}
        settings = DetectSettings(asset_enabled=True, **config)
        per_tag_settings = replay_settings("holt", DetectSettings(**config))
        pairs, nab_files = [], []
        for r in recs:
            assert r.labels is not None and r.changepoints is not None
            pred = asset_prediction(r, settings) | replay(r, per_tag_settings).anomalous
            test = np.flatnonzero(r.present)[r.train_rows :]
            ts = r.timestamps[test]
            pairs.append((r.labels[test], pred[test]))
            nab_files.append((times_of(r.changepoints[test], ts), times_of(changepoints_of(pred[test]), ts)))
        scores = binary_scores(pairs).rounded()
        rows.append({"config": config, **scores, "nab_standard": skab_nab(nab_files).scores["standard"]})
        print(rows[-1], flush=True)
    eligible = sorted(
        (r for r in rows if r["far_percent"] < MAX_FAR_PERCENT), key=lambda r: (-r["f1"], r["far_percent"])
    )
    out = Path(__file__).with_name("tuning_lifecycle_valve1.json")
    head = {
        "group": GROUP,
        "rule": f"max F1 with FAR < {MAX_FAR_PERCENT} %",
        "chosen": eligible[0] if eligible else None,
    }
    lines = ["{", *(f" {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}," for k, v in head.items()), ' "grid": [']
    lines.append(",\n".join("  " + json.dumps(r, ensure_ascii=False) for r in rows))
    out.write_text("\n".join([*lines, " ]", "}"]) + "\n")


if __name__ == "__main__":
    main()
