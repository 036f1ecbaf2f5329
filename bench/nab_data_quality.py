"""Gap slots and missing-data alerts on NAB's 58 files: the old seconds against the period-relative defaults.

Each file is one tag at its median row spacing, fed row by row through ``Windows`` and
``DetectStage`` as the replay wires them (``allowed_lateness_s`` = 0: a recording has no
late rows).  The forecast is a fixed band far wider than the data, so only data quality
can alert: what is counted is what the windows and the missing-data rule make of NAB's
cadence (5 min to 1 h, many files off the epoch grid, a few long outages).

* **old** — ``max_hold_s`` = 30 s, ``missing_after_s`` = 60 s (the defaults before issue 13.4);
* **periods** — the defaults: 30 periods of hold, missing 60 periods after it.

Also counted from the rows alone: gaps longer than hold + missing-after (90 periods), the
outages a missing-data alert should report.  Nothing here is tuned: both settings are
fixed before the run.  Prints a table and writes ``bench/results/nab_data_quality.json``.

    python bench/nab_data_quality.py                 # data from $SENTINELLE_DATA_DIR/nab
    python bench/nab_data_quality.py --limit 3
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry

from _machine import write_result
from sentinelle.detect.stage import DetectStage
from sentinelle.evaluation.datasets import default_data_dir
from sentinelle.metrics import Metrics
from sentinelle.records import FloatArray, ForecastBatch, Sample
from sentinelle.settings import DetectSettings, TagSettings, WindowSettings
from sentinelle.windows import Windows

CONFIGS = {
    "old": (WindowSettings(allowed_lateness_s=0.0, max_hold_s=30.0), DetectSettings(missing_after_s=60.0)),
    "periods": (WindowSettings(allowed_lateness_s=0.0), DetectSettings()),
}
_Z = np.array([-1.2816, 0.0, 1.2816])


def read_nab(path: Path) -> tuple[FloatArray, FloatArray]:
    """(timestamps, values) of one NAB file (naive dates read as UTC)."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    ts = [dt.datetime.fromisoformat(r["timestamp"]).replace(tzinfo=dt.UTC).timestamp() for r in rows]
    return np.array(ts), np.array([float(r["value"]) for r in rows])


def run_file(ts: FloatArray, values: FloatArray) -> dict[str, Any]:
    period = float(np.median(np.diff(ts)))
    out: dict[str, Any] = {"period_s": period, "rows": len(ts), "outages": int((np.diff(ts) > 90 * period).sum())}
    band = np.full((1, 3, 4), float(np.median(values))) + _Z[None, :, None] * (float(np.std(values)) + 1.0) * 100
    for name, (windows, detect) in CONFIGS.items():
        tag = TagSettings(name="x", asset="a", node_id="n", period_s=period)
        m = Metrics(CollectorRegistry())
        w, stage = Windows([tag], windows, m), DetectStage([tag], detect, m)
        opened = 0
        for t, v in zip(ts.tolist(), values.tolist(), strict=True):
            for wb in w.ingest([Sample("x", t, v)]):
                fb = ForecastBatch(window=wb, levels=(0.1, 0.5, 0.9), quantiles=band, forecaster="fixed")
                opened += sum(e.event == "opened" and e.reason == "missing" for e in stage.process(fb))
        gaps = m.registry.get_sample_value("sentinelle_window_gap_slots_total") or 0.0
        out[name] = {"gap_slots": int(gaps), "missing_openings": opened}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=None, help="the nab folder (default: $SENTINELLE_DATA_DIR/nab)")
    p.add_argument("--limit", type=int, default=None, help="only the first N files (a quick check)")
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "nab_data_quality.json")
    args = p.parse_args()
    root = args.data or default_data_dir() / "nab"
    files = sorted((root / "data").glob("*/*.csv"))[: args.limit]
    per_file = {str(f.relative_to(root / "data")): run_file(*read_nab(f)) for f in files}
    totals: dict[str, Any] = {"files": len(per_file), "rows": sum(r["rows"] for r in per_file.values())}
    totals["outages"] = sum(r["outages"] for r in per_file.values())
    totals["files_with_outages"] = sum(r["outages"] > 0 for r in per_file.values())
    print(
        f"{totals['files']} files, {totals['rows']} rows; gaps over 90 periods: {totals['outages']} "
        f"in {totals['files_with_outages']} files"
    )
    print(f"{'setting':8} {'gap slots':>10} {'missing alerts':>15} {'files with one':>15}")
    for name in CONFIGS:
        gaps = sum(r[name]["gap_slots"] for r in per_file.values())
        opened = sum(r[name]["missing_openings"] for r in per_file.values())
        files_with = sum(r[name]["missing_openings"] > 0 for r in per_file.values())
        totals[name] = {"gap_slots": gaps, "missing_openings": opened, "files_with_missing": files_with}
        print(f"{name:8} {gaps:>10} {opened:>15} {files_with:>15}")
    settings = {
        name: {"windows": w.model_dump(), "detect_missing": [d.missing_after_s, d.missing_after_periods]}
        for name, (w, d) in CONFIGS.items()
    }
    write_result(args.out, "nab_data_quality", "cpu", settings, totals, per_file=per_file)


if __name__ == "__main__":
    main()
