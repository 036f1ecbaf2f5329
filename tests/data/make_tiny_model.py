"""Build the tiny test checkpoint in ``tests/data/tiny-model/`` (≈ 0.1 MB, a few seconds on a CPU).

A 1-layer, d=32 model with the real architecture, briefly trained on sine +
trend + noise windows so its forecasts are sane (it beats the last value on
such windows), not good.  It exists so the unit tests exercise the real loading
and inference path in seconds; it is not a forecaster for plants.

Seeded and single-threaded, so rerunning it gives the same file::

    .venv/bin/python tests/data/make_tiny_model.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from sentinelle.forecast.model import SentinelleTSConfig, SentinelleTSModel
from sentinelle.forecast.tokenizer import TSTokenizer

OUT = Path(__file__).resolve().parent / "tiny-model"


def tiny_config() -> SentinelleTSConfig:
    return SentinelleTSConfig(
        context_length=64,
        patch_length=8,
        horizon=16,
        d_model=32,
        num_layers=1,
        num_heads=2,
        d_ff=64,
        dropout=0.0,
        vocab_size=1024,
        token_limit=15.0,
    )


STEPS = 400
BATCH = 64


def windows(rng: np.random.Generator, n: int, length: int) -> np.ndarray:
    """Sine + linear trend + noise at random offsets and magnitudes, some flat, some with gaps."""
    t = np.arange(length)[None, :]
    period = rng.uniform(8, 40, (n, 1))
    amplitude = rng.uniform(0.2, 3.0, (n, 1))
    phase = rng.uniform(0, 2 * np.pi, (n, 1))
    slope = rng.uniform(-0.05, 0.05, (n, 1))
    noise = rng.uniform(0.0, 0.3, (n, 1)) * amplitude
    y = amplitude * np.sin(2 * np.pi * t / period + phase) + slope * t + noise * rng.standard_normal((n, length))
    y[rng.random(n) < 0.05] = 0.0  # flat lines
    magnitude = 10.0 ** rng.uniform(-2, 4, (n, 1))
    y = magnitude * (y + rng.uniform(-10, 10, (n, 1)))
    gaps = rng.random((n, length)) < 0.02
    return np.where(gaps, np.nan, y)


def main() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    config = tiny_config()
    model = SentinelleTSModel(config)
    tokenizer = TSTokenizer(config.vocab_size, config.token_limit)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=3e-3, total_steps=STEPS)
    ctx, h = config.context_length, config.horizon
    model.train()
    for step in range(STEPS):
        y = windows(rng, BATCH, ctx + h)
        encoded = tokenizer.encode(y[:, :ctx])
        labels = tokenizer.scale_values(y[:, ctx:], encoded.loc, encoded.scale)
        out = model(torch.from_numpy(encoded.ids), labels=torch.from_numpy(labels).float())
        assert out.loss is not None
        optimizer.zero_grad()
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        if step % 100 == 0 or step == STEPS - 1:
            print(f"step {step:4d}  pinball loss {out.loss.item():.4f}")

    module: torch.nn.Module = model  # nn.Module's typed eval(); transformers re-wraps it untyped
    module.eval()
    y = windows(np.random.default_rng(1), 512, ctx + h)
    encoded = tokenizer.encode(y[:, :ctx])
    with torch.inference_mode():
        q = model(torch.from_numpy(encoded.ids)).quantiles
    assert q is not None
    median = tokenizer.unscale(q.numpy().astype(np.float64), encoded.loc, encoded.scale)[:, 4]
    future = y[:, ctx:]
    last = np.array([row[np.isfinite(row)][-1] for row in y[:, :ctx]])
    model_err = np.nanmean(np.abs(median - future) / encoded.scale[:, None])
    naive_err = np.nanmean(np.abs(last[:, None] - future) / encoded.scale[:, None])
    print(f"held-out mean |error| / scale: model {model_err:.3f}, last value {naive_err:.3f}")

    OUT.mkdir(exist_ok=True)
    model.save_pretrained(OUT)
    print(f"wrote {OUT} ({model.param_count()} parameters)")


if __name__ == "__main__":
    main()
