"""Fill the NAB forecast cache of one forecaster, a share of the files per process (issue 13: the model every tick).

``sentinelle evaluate --dataset nab --forecast-cache DIR`` then reads every file's forecasts back
(the cache is keyed by every context row, so it can only return what the model computes for those
windows) and pays only for detection.  Held-out files first, so a run cut short still covers the headline.

Run (two processes of one thread each on a 2-core machine):
    PYTHONPATH=daemon python bench/nab/model_forecasts.py DIR --shard 0/2 --threads 1 &
    PYTHONPATH=daemon python bench/nab/model_forecasts.py DIR --shard 1/2 --threads 1
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sentinelle.evaluation.nab_corpus import HELD_OUT, load_corpus, split_of
from sentinelle.evaluation.nab_stream import cadence_run_name, forecast_corpus


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cache", type=Path)
    ap.add_argument("--data", type=Path, default=Path("/work/shared/data/nab/data"))
    ap.add_argument("--forecaster", default="model")
    ap.add_argument("--refresh-steps", type=int, default=1)
    ap.add_argument("--split", choices=["all", "held_out", "tuning"], default="all")
    ap.add_argument("--shard", default="0/1", help="i/n: this process takes every n-th file from the i-th")
    ap.add_argument("--threads", type=int, default=None)
    a = ap.parse_args()
    i, n = (int(x) for x in a.shard.split("/"))
    files = load_corpus(a.data)
    split = split_of(f.name for f in files)
    chosen = [f for f in files if a.split == "all" or split[f.name] == a.split]
    # Held-out first; within each split the largest files first, dealt round-robin to the shards.
    chosen.sort(key=lambda f: (split[f.name] != HELD_OUT, -len(f.timestamps), f.name))
    mine = chosen[i::n]
    key = cadence_run_name(a.forecaster, a.refresh_steps)
    seconds = forecast_corpus(mine, a.forecaster, a.cache, a.refresh_steps, key, a.threads, print)
    print(f"shard {a.shard}: {len(mine)} files in {seconds:.1f} s")


if __name__ == "__main__":
    main()
