"""Does the model forecast as well on a GPU (bfloat16) as on the CPU (float32)?

Forecasts the same synthetic windows — random walks, trends and sines of periods 7–50 with
noise, 512 steps of context — with the shipped checkpoint twice, on the CPU in float32 and on
``--device`` in its default dtype (bfloat16 on CUDA), and compares both with the true next
16 steps: MASE of the median (scaled by the context's mean absolute step), pinball loss of
the quantiles, 80 % coverage, and how far the two devices' quantiles lie apart.  Prints a
table and writes ``bench/results/gpu/model_parity.json`` with the machine and device.

    python bench/model_parity.py --device cuda
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from _machine import write_result
from sentinelle.forecast import SHIPPED_CHECKPOINT
from sentinelle.forecast.engine import ModelForecaster

ROOT = Path(__file__).resolve().parents[1]
LEVELS = (0.1, 0.5, 0.9)
CONTEXT, HORIZON = 512, 16


def windows(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n series of CONTEXT + HORIZON steps: a third random walks, a third trends, a third sines, all noisy."""
    rng = np.random.default_rng(seed)
    t = np.arange(CONTEXT + HORIZON)[None, :]
    k = n // 3
    walk = np.cumsum(rng.normal(size=(k, t.size)), axis=1)
    trend = rng.normal(0, 0.05, (k, 1)) * t + rng.normal(0, 0.5, (k, t.size))
    period = rng.integers(7, 51, (n - 2 * k, 1))
    sine = 5 * np.sin(2 * np.pi * t / period + rng.uniform(0, 6.3, (n - 2 * k, 1))) + rng.normal(
        0, 0.3, (n - 2 * k, t.size)
    )
    x = np.vstack([walk, trend, sine]) + rng.uniform(-50, 50, (n, 1))
    return x[:, :CONTEXT], x[:, CONTEXT:]


def scores(q: np.ndarray, ctx: np.ndarray, future: np.ndarray) -> dict[str, float]:
    scale = np.abs(np.diff(ctx, axis=1)).mean(axis=1)[:, None]
    median = q[:, LEVELS.index(0.5)]
    pinball = np.mean(
        [np.maximum(lv * (future - q[:, i]), (lv - 1) * (future - q[:, i])) / scale for i, lv in enumerate(LEVELS)]
    )
    inside = (future >= q[:, 0]) & (future <= q[:, -1])
    return {
        "mase": round(float(np.mean(np.abs(median - future) / scale)), 4),
        "scaled_pinball": round(float(pinball), 4),
        "coverage_80": round(float(inside.mean()), 4),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--windows", type=int, default=3000)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "gpu" / "model_parity.json")
    args = ap.parse_args()
    ctx, future = windows(args.windows)
    results: dict[str, Any] = {}
    quantiles = {}
    for name, device, dtype in (
        ("cpu float32", "cpu", "float32"),
        (f"{args.device} default dtype", args.device, "auto"),
    ):
        f = ModelForecaster(SHIPPED_CHECKPOINT, LEVELS, HORIZON, device=device, dtype=dtype)
        f.forecast(ctx[:8])
        t0 = time.perf_counter()
        q = f.forecast(ctx)
        results[name] = {
            **scores(q, ctx, future),
            "seconds": round(time.perf_counter() - t0, 2),
            "dtype": str(f.model.dtype),
        }
        quantiles[name] = q
        print(name, results[name], flush=True)
    a, b = quantiles.values()
    scale = np.abs(np.diff(ctx, axis=1)).mean(axis=1)[:, None, None]
    gap = np.abs(a - b) / scale
    results["gap_in_mean_abs_steps"] = {
        "median": round(float(np.median(gap)), 4),
        "p99": round(float(np.quantile(gap, 0.99)), 4),
        "max": round(float(gap.max()), 4),
    }
    print("gap between the devices' quantiles, in mean absolute steps:", results["gap_in_mean_abs_steps"])
    settings = {"windows": args.windows, "context": CONTEXT, "horizon": HORIZON, "levels": LEVELS}
    write_result(args.out, "model_parity", args.device, settings, results)


if __name__ == "__main__":
    main()
