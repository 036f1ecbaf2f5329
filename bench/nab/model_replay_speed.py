"""Why the model was slow on NAB, and what the replay costs now: ms per forecast window on NAB's own windows.

Issue 13: the model every tick on NAB (as the daemon ships, ``forecast.refresh_every_steps = 1``)
was thought to cost over an hour on the 2 shared cores.  The replay already forecasts a file's
windows in large batches (``stream_eval.evaluate_stream``: all windows first, ``model_max_batch``
rows a forward pass), so batching across files changes little; what costs is torch's two
intra-op threads on a loaded machine — the smoothing branch's 512-step recursion is thousands of
small parallel regions, each waiting for both threads.  One thread per process, and one process
per core (``replay_corpus(workers=…)``, ``bench/nab/model_forecasts.py``), give the same numbers.

For each (threads, batch) the same windows are forecast and compared with the first row's answer
(``max_abs_diff``).  The load average is recorded: the machine is shared and the numbers move with it.

    PYTHONPATH=daemon python bench/nab/model_replay_speed.py [--windows 512] [--file realKnownCause/…]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _machine import write_result
from sentinelle.evaluation.nab_corpus import load_corpus
from sentinelle.evaluation.stream_eval import close_windows, median_period, stream_settings
from sentinelle.forecast import SHIPPED_CHECKPOINT
from sentinelle.forecast.batcher import ForecastPass
from sentinelle.forecast.engine import ModelForecaster

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ((2, 1024), (2, 256), (2, 1), (1, 1024), (1, 256), (1, 1))
"""(torch threads, windows per forward pass); batch 1 is a replay forecasting tick by tick."""
BATCH_ONE_WINDOWS = 64
"""Windows timed at batch 1 (slow: a share is enough for a per-window cost)."""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("/work/shared/data/nab/data"))
    ap.add_argument("--file", default="realKnownCause/cpu_utilization_asg_misconfiguration.csv")
    ap.add_argument("--windows", type=int, default=512)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "nab_model_replay_speed.json")
    a = ap.parse_args()
    f = next(f for f in load_corpus(a.data) if f.name == a.file)
    p = median_period(f.timestamps)
    settings = stream_settings(p, "model")
    contexts = ForecastPass.of(close_windows(f.stream(), settings, p).batches, 1).contexts
    start = min(len(contexts) - a.windows, 4000)  # full 512-step contexts
    x = contexts[start : start + a.windows]
    fc = ModelForecaster(
        SHIPPED_CHECKPOINT,
        settings.forecast.quantile_levels,
        settings.forecast.horizon_steps,
        device="cpu",
    )
    rows: list[dict[str, Any]] = []
    reference: np.ndarray | None = None
    print(f"{a.file}: {len(x)} windows, load average {os.getloadavg()[0]:.1f}")
    print("threads  batch  ms/window  max_abs_diff")
    for threads, batch in CONFIGS:
        torch.set_num_threads(threads)
        fc.max_batch = batch
        n = BATCH_ONE_WINDOWS if batch == 1 else len(x)
        load = os.getloadavg()[0]
        t0 = time.perf_counter()
        q = fc.forecast(x[:n])
        ms = 1000.0 * (time.perf_counter() - t0) / n
        if reference is None:
            reference = q
        diff = float(np.nanmax(np.abs(q - reference[:n])))
        rows.append(
            {
                "threads": threads,
                "batch": batch,
                "windows": n,
                "ms_per_window": round(ms, 2),
                "max_abs_diff": diff,
                "load_average_1min": round(load, 2),
            }
        )
        print(f"{threads:7d}  {batch:5d}  {ms:9.2f}  {diff:.3g}", flush=True)
    write_result(a.out, "nab_model_replay_speed", "cpu", {"file": a.file, "windows": len(x)}, rows)


if __name__ == "__main__":
    main()
