"""Candidate model sizes: parameters, safetensors size and CPU forward latency.

Decides what we pretrain and ship (≤ 25 MB).  For each candidate configuration
of :class:`~sentinelle.forecast.model.SentinelleTSModel` (randomly initialised:
latency does not depend on the weights) it reports

* parameters and ``model.safetensors`` size (MB, 1e6 bytes);
* latency (ms; best of up to 15 repeats, as the machine is shared — the median is
  in the JSON too) of one forward pass at context 512 for batch
  1 / 64 / 1,024, model only (token ids in, scaled quantiles out), and of the
  whole :class:`~sentinelle.forecast.engine.ModelForecaster` call (tokenise,
  forward, interpolate, unscale) — the cost the daemon pays;
* windows/s at batch 1,024.

Prints a table and writes ``bench/results/model_sizes.json`` with the machine named.

    python bench/model_sizes.py                # torch threads 2 (our plant server)
    python bench/model_sizes.py --threads 1 --batches 1 64
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from _machine import machine_info
from sentinelle.forecast.engine import ModelForecaster
from sentinelle.forecast.model import SentinelleTSConfig, SentinelleTSModel

ROOT = Path(__file__).resolve().parents[1]
CANDIDATES: dict[str, dict[str, Any]] = {
    "d256-L4 (default)": {"d_model": 256, "num_layers": 4, "num_heads": 4, "d_ff": 1024},
    "d128-L4": {"d_model": 128, "num_layers": 4, "num_heads": 4, "d_ff": 512},
    "d128-L3": {"d_model": 128, "num_layers": 3, "num_heads": 4, "d_ff": 512},
}


def timed_ms(fn: Callable[[], object], budget_s: float = 3.0, max_repeats: int = 15) -> dict[str, float]:
    """Wall time (best and median) and CPU time (best, all threads) of ``fn``, in ms.

    On a shared machine the best wall time is the least disturbed; CPU time
    barely depends on other processes (÷ threads ≈ the undisturbed wall time).
    """
    fn()  # warm-up: allocator, kernels
    wall: list[float] = []
    cpu: list[float] = []
    start = time.perf_counter()
    while len(wall) < max_repeats and (len(wall) < 3 or time.perf_counter() - start < budget_s):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return {"best": min(wall) * 1e3, "median": statistics.median(wall) * 1e3, "cpu": min(cpu) * 1e3}


def measure(model: SentinelleTSModel, engine: ModelForecaster, batch: int) -> dict[str, float]:
    """Timings of one batch size: the bare forward pass and the whole engine call."""
    config = model.config
    ids = torch.randint(1, config.vocab_size, (batch, config.context_length))
    contexts = windows(batch, config.context_length)

    def forward() -> None:
        with torch.inference_mode():
            model(ids)

    out: dict[str, float] = {}
    for what, fn in (("forward", forward), ("engine", lambda: engine.forecast(contexts))):
        t = timed_ms(fn)
        out[f"{what}_ms_b{batch}"] = t["best"]
        out[f"{what}_median_ms_b{batch}"] = t["median"]
        out[f"{what}_cpu_ms_b{batch}"] = t["cpu"]
    return out


def windows(n: int, length: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(length)[None, :]
    return rng.uniform(-50, 50, (n, 1)) + np.sin(t / rng.uniform(3, 30, (n, 1))) + rng.normal(0, 0.1, (n, length))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 64, 1024])
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "model_sizes.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rows = []
    for name, shape in CANDIDATES.items():
        config = SentinelleTSConfig(**shape)  # context 512, patch 16, horizon 64, vocab 4096, 9 levels
        model = SentinelleTSModel(config)
        model.train(False)
        with tempfile.TemporaryDirectory() as tmp:
            model.save_pretrained(tmp)
            size_mb = (Path(tmp) / "model.safetensors").stat().st_size / 1e6
            engine = ModelForecaster(Path(tmp), (0.1, 0.5, 0.9), 64, device="cpu", threads=args.threads)
        row: dict[str, Any] = {"name": name, **shape, "params": model.param_count(), "safetensors_mb": size_mb}
        for b in args.batches:
            row.update(measure(model, engine, b))
        big = max(args.batches)
        row["engine_windows_per_s"] = big / (row[f"engine_ms_b{big}"] / 1e3)
        rows.append(row)
        print(f"done {name}", flush=True)

    head = f"{'model':<18} {'params':>10} {'MB':>6}"
    for b in args.batches:
        head += f" {'fwd b' + str(b):>10} {'engine b' + str(b):>11} {'cpu b' + str(b):>10}"
    print(
        f"\nCPU latency, context 512, horizon 64, {args.threads} torch threads: wall ms (best of repeats) of the "
        "forward pass and of the engine call; CPU ms of the engine call, all threads"
    )
    print(head + f" {'windows/s':>10}")
    for r in rows:
        line = f"{r['name']:<18} {r['params']:>10,} {r['safetensors_mb']:>6.1f}"
        for b in args.batches:
            line += f" {r[f'forward_ms_b{b}']:>10.1f} {r[f'engine_ms_b{b}']:>11.1f} {r[f'engine_cpu_ms_b{b}']:>10.1f}"
        print(line + f" {r['engine_windows_per_s']:>10.0f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    doc = {"machine": machine_info("cpu"), "threads": args.threads, "rows": rows}
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
