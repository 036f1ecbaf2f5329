"""Trace the residual scorer of ``bench/deadband_experiment.py`` runs over a window of live hours (diagnosis only).

Why: a false alert or a late find on one seed is usually one tick on a threshold's edge; to say which tag,
which tick and what moved it (the forecast, the learned location or spread), the per-tick calibrated
surprise ``r``, score and learned residual scale of every tag are needed, in every configuration, on the
same ticks.  This runs the experiment unchanged (its ``main``, the same arguments after ``--``) with a hook
on its detect stages and writes those rows for live hours ``--from-h`` .. ``--to-h`` (hours after the first
live tick) to ``--trace`` as JSON (``residual``; ``relation``: each relation check's z, spread, fit), one list per
configuration run, in the order the experiment runs them.

    nice -n 10 .venv/bin/python bench/deadband_trace.py --from-h 13.5 --to-h 13.9 --trace t.json -- \
        --seed 1500 --forecaster model --refresh 8 --only a:,c: --work /tmp/w1500
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import deadband_experiment as dx
from sentinelle.detect.detectors.base import Findings, Tick
from sentinelle.detect.detectors.relations import RelationDetector
from sentinelle.records import AlertEvent, ForecastBatch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--from-h", type=float, required=True, help="first live hour traced")
    ap.add_argument("--to-h", type=float, required=True, help="last live hour traced")
    ap.add_argument("--trace", type=Path, required=True, help="JSON output")
    ap.add_argument("rest", nargs=argparse.REMAINDER, help="-- then the experiment's own arguments")
    args = ap.parse_args()
    rest = args.rest[1:] if args.rest[:1] == ["--"] else args.rest
    live0 = dx.START.timestamp() + dx.HISTORY_DAYS * dx.DAY_S
    lo, hi = live0 + args.from_h * 3600.0, live0 + args.to_h * 3600.0
    runs: dict[int, list[dict[str, Any]]] = {}
    original = dx._Tee.process

    def process(self: dx._Tee, fb: ForecastBatch) -> list[AlertEvent]:
        events = original(self, fb)
        ts = fb.window.ts
        if self.live and lo <= ts <= hi:
            st = self.stages[0]
            sc = st._groups[fb.window.tags].scorer
            row: dict[str, Any] = {"h": round((ts - live0) / 3600.0, 4), "threshold": sc.threshold}
            for i, tag in enumerate(fb.window.tags):
                row[tag.split(".", 1)[1]] = {
                    "r": _f(sc.r[i]),
                    "score": _f(sc.surprise[i]),
                    "flag": bool(np.nan_to_num(sc.surprise[i]) >= sc.threshold),
                    "spread": _f(sc.spread[i]),
                    "location": _f(sc.scale.location[i]),
                    "sigma": _f(sc.scale.sigma()[i]),
                    "learned": int(sc.scale.learned[i]),
                    "refreshed": fb.rows is None or i in set(np.asarray(fb.rows).tolist()),
                }
            row["events"] = [f"{e.event}:{e.kind}:{e.tag}" for e in events]
            runs.setdefault(id(self), []).append(row)
        return events

    relations: dict[int, list[dict[str, Any]]] = {}
    observe = RelationDetector.observe

    def observe_relations(self: RelationDetector, tick: Tick) -> Findings:
        found = observe(self, tick)
        if lo <= tick.ts <= hi:
            row: dict[str, Any] = {"h": round((tick.ts - live0) / 3600.0, 4)}
            for rel in self.relations:
                c = rel.check
                row[self.layout.tags[rel.target].split(".", 1)[1]] = {
                    "z": _f(c.z),
                    "threshold": c.z_threshold,
                    "spread": _f(c.spread),
                    "expected": _f(c.expected),
                    "target": _f(float(tick.clean[rel.target])),
                    "weights": [round(float(w), 5) for w in c.weights],
                }
            relations.setdefault(id(self), []).append(row)
        return found

    dx._Tee.process = process  # type: ignore[method-assign]
    RelationDetector.observe = observe_relations  # type: ignore[method-assign]
    sys.argv = [sys.argv[0], *rest]
    dx.main()
    args.trace.parent.mkdir(parents=True, exist_ok=True)
    out = {"residual": list(runs.values()), "relation": list(relations.values())}
    args.trace.write_text(json.dumps(out, indent=0) + "\n", encoding="utf-8")


def _f(x: float) -> float | None:
    return round(float(x), 4) if np.isfinite(x) else None


if __name__ == "__main__":
    main()
