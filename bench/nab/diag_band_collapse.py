"""Issue 13: why the model's one-step band is so narrow where its residual makes the heavy tail (TUNING split only).

nab20's study (``docs/results/nab/published-tail/``) found the model's calibrated residual beyond 10 σ on 5.8e-3 of
the scored ticks outside windows against Holt's 9.3e-4.  This script asks where that comes from on the forecaster
side.  For every tuning file it rebuilds the windows the stage saw (``diag_fp_rows``' replay), pairs each scored row
with the context its forecast was made from, and reads the shipped per-row runs
(``OUT/{model,holt}_shipped_tuning.npz``, ``tune_band.py``'s kept runs).  For the rows outside windows after NAB's
probation it prints, for the model's |r| > 10 rows against all rows:

* the model's one-step half-band (q90 − q10)/2 against Holt's at the same tick, and against two spreads the context
  itself shows: the RMS of its one-step changes over the newest 256 steps (the model's smoothing branch scores its
  experts over that window and floors the band at their best one-step error) and over the whole 512-step context;
* whether the newest 256 steps hold a move as large as the one now missed (``forgot``: a move that size is in the
  context but older than the smoothing window) and how flat the newest 64 steps are;
* (``--decompose``) the model itself re-run on those contexts: its band before and after the smoothing branch's
  spread floor, in scaled units, so that "the head's band" and "the floor's σ" are told apart.

No held-out file is read.  Run:
    PYTHONPATH=daemon:bench/nab python bench/nab/diag_band_collapse.py OUT CACHE [--decompose]
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from diag_fp_rows import FIELDS

from sentinelle.evaluation.nab_corpus import TUNING, NabFile, load_corpus, split_of
from sentinelle.evaluation.nab_scorer import STANDARD, probation_rows, sweep_weights
from sentinelle.evaluation.nab_stream import cache_file
from sentinelle.evaluation.stream_eval import cached_forecasts, close_windows, median_period, stream_settings
from sentinelle.forecast.batcher import ForecastPass

SMOOTHING_WINDOW = 256
"""The model's smoothing branch scores its experts over the newest this many steps (checkpoint config)."""
Z90 = 1.2815515655446004


def contexts_by_row(f: NabFile, cache: Path, fc: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row of ``f``: the context (L steps) its residual was scored against, the forecast's one-step
    (q10, q50, q90) and whether the row has one (the window before it in the very next slot)."""
    p = median_period(f.timestamps)
    settings = stream_settings(p, fc)
    w = close_windows(f.stream(), settings, p)
    fpass = ForecastPass.of(w.batches, 1)
    path = cache_file(cache, fc, f)
    assert path is not None and path.is_file(), f"no cached forecasts for {f.name}"
    levels = settings.forecast.quantile_levels
    q = cached_forecasts(_Named(fc, levels), fpass, settings.forecast.max_batch, path)
    lo, mid, hi = levels.index(0.1), levels.index(0.5), levels.index(0.9)
    slot_of = {round(b.ts / p): i for i, b in enumerate(w.batches)}
    n, length = len(w.row_slot), fpass.contexts.shape[1]
    ctx = np.full((n, length), np.nan)
    band = np.full((n, 3), np.nan)
    ok = np.zeros(n, dtype=bool)
    for row, s in enumerate(w.row_slot):
        i = slot_of.get(int(s) - 1) if s >= 0 else None
        if i is None:
            continue
        ctx[row] = fpass.contexts[i]
        band[row] = q[i, [lo, mid, hi], 0]
        ok[row] = True
    return ctx, band, ok


class _Named:
    """Only the name the cache key needs: the forecasts are read back, never computed (an assert otherwise)."""

    def __init__(self, name: str, levels: tuple[float, ...]) -> None:
        self.name = name
        self.levels = levels
        self.horizon = 1

    def forecast(self, contexts: np.ndarray, assets: Sequence[str] | None = None) -> np.ndarray:
        raise AssertionError("the cache must hold these forecasts")


def rms_diff(ctx: np.ndarray, steps: int) -> np.ndarray:
    d = np.diff(ctx[:, -steps:], axis=1)
    with np.errstate(invalid="ignore"):
        return np.asarray(np.sqrt(np.nanmean(d * d, axis=1)), dtype=np.float64)


def quantiles(name: str, x: np.ndarray) -> str:
    x = x[np.isfinite(x)]
    if not x.size:
        return f"{name}: none"
    qs = np.quantile(x, [0.1, 0.25, 0.5, 0.75, 0.9])
    return f"{name}: n {x.size} p10 {qs[0]:.3g} p25 {qs[1]:.3g} median {qs[2]:.3g} p75 {qs[3]:.3g} p90 {qs[4]:.3g}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("cache", type=Path)
    ap.add_argument("--decompose", action="store_true", help="re-run the model on the tail rows' contexts")
    ap.add_argument("--limit", type=float, default=10.0, help="|r| beyond which a row is in the tail")
    ap.add_argument("--threshold", type=float, default=0.4625, help="the model's standard threshold (shipped)")
    a = ap.parse_args()
    files = load_corpus(Path("/work/shared/data/nab/data"))
    split = split_of(f.name for f in files)
    tuning = [f for f in files if split[f.name] == TUNING]
    runs = {fc: np.load(a.out / f"{fc}_shipped_tuning.npz") for fc in ("model", "holt")}
    rows: dict[str, list[np.ndarray]] = {k: [] for k in ("file", "tail", "holt_tail", "ratio_holt", "ratio256")}
    rows.update({k: [] for k in ("ratio512", "forgot", "flat64", "miss256", "miss512", "z_model", "z_holt")})
    tail_ctx: list[np.ndarray] = []
    per_file: list[tuple[int, int, str]] = []
    fp_lines: list[str] = []
    fp_ctx: list[np.ndarray] = []
    for k, f in enumerate(tuning):
        m = {x: runs["model"][f"{f.name}|{x}"] for x in FIELDS}
        h = {x: runs["holt"][f"{f.name}|{x}"] for x in FIELDS}
        ctx, mband, ok = contexts_by_row(f, a.cache, "model")
        _, hband, _ = contexts_by_row(f, a.cache, "holt")
        _, win = sweep_weights(f.labelled, STANDARD)
        scored = ok & (win < 0) & np.isfinite(m["r"]) & np.isfinite(h["r"])
        scored[: probation_rows(f.labelled.rows)] = False
        # The paired forecast is the one the stage scored: its median is the recorded one.
        same = np.isclose(mband[:, 1], m["median"], rtol=1e-6, atol=1e-9) | ~scored
        assert same.all(), f"{f.name}: the paired forecast is not the stage's ({(~same).sum()} rows)"
        half_m = (mband[:, 2] - mband[:, 0]) / 2
        half_h = (hband[:, 2] - hband[:, 0]) / 2
        value = m["value"]
        last = ctx[:, -1]
        move = np.abs(value - last)
        with np.errstate(invalid="ignore", divide="ignore"):
            big256 = np.nanmax(np.abs(np.diff(ctx[:, -SMOOTHING_WINDOW:], axis=1)), axis=1)
            big512 = np.nanmax(np.abs(np.diff(ctx, axis=1)), axis=1)
            tail = scored & (np.abs(m["r"]) > a.limit)
            rows["file"].append(np.full(scored.sum(), k))
            rows["tail"].append(tail[scored])
            rows["holt_tail"].append((np.abs(h["r"]) > a.limit)[scored])
            rows["ratio_holt"].append((half_m / half_h)[scored])
            rows["ratio256"].append((half_m / (Z90 * rms_diff(ctx, SMOOTHING_WINDOW)))[scored])
            rows["ratio512"].append((half_m / (Z90 * rms_diff(ctx, ctx.shape[1])))[scored])
            rows["forgot"].append(((big256 < 0.5 * move) & (big512 >= 0.5 * move))[scored])
            rows["flat64"].append((np.mean(np.diff(ctx[:, -64:], axis=1) == 0, axis=1))[scored])
            rows["miss256"].append((move / big256)[scored])
            rows["miss512"].append((move / big512)[scored])
            rows["z_model"].append(np.abs(m["z"])[scored])
            rows["z_holt"].append(np.abs(h["z"])[scored])
        per_file.append((int(tail.sum()), int(scored.sum()), f.name))
        # The model's false-positive rows the residual sets at its standard threshold, and what the band did there.
        fp = scored & (np.nan_to_num(m["score"]) >= a.threshold)
        fp &= np.nan_to_num(m["residual"], nan=-1) >= np.nan_to_num(m["novelty"], nan=-1)
        r256 = half_m / (Z90 * rms_diff(ctx, SMOOTHING_WINDOW))
        r512 = half_m / (Z90 * rms_diff(ctx, ctx.shape[1]))
        flat = np.mean(np.diff(ctx[:, -64:], axis=1) == 0, axis=1)
        fp_ctx.append(ctx[fp])
        for i in np.flatnonzero(fp):
            fp_lines.append(
                f"  {f.name} row {i}: score {m['score'][i]:.3f} (Holt {h['score'][i]:.3f}) z {m['z'][i]:.1f} "
                f"(Holt {h['z'][i]:.1f}) band/Holt's {half_m[i] / half_h[i]:.3f} band/RMS256 {r256[i]:.2f} "
                f"band/RMS512 {r512[i]:.2f} flat64 {flat[i]:.2f} move/max256 {move[i] / big256[i]:.2f}"
            )
        tail_ctx.append(ctx[tail])
    col = {k: np.concatenate(v) for k, v in rows.items()}
    t = col["tail"].astype(bool)
    print(
        f"tuning files {len(tuning)}; scored rows outside windows after probation {t.size}; model |r| > {a.limit}: "
        f"{t.sum()} ({t.mean():.2e}); Holt {col['holt_tail'].sum()} ({col['holt_tail'].mean():.2e})"
    )
    print("model tail rows per file (tail, scored):")
    for n_tail, n, name in sorted(per_file, reverse=True):
        if n_tail:
            print(f"  {n_tail:5d} / {n:6d} {name}")
    for key, what in (
        ("ratio_holt", "model half-band / Holt's"),
        ("ratio256", "model half-band / (1.28 x RMS one-step change, newest 256)"),
        ("ratio512", "model half-band / (1.28 x RMS one-step change, whole context)"),
        ("flat64", "share of zero changes in the newest 64 steps"),
        ("miss256", "|value - last| / largest change in the newest 256"),
        ("miss512", "|value - last| / largest change in the whole context"),
        ("z_holt", "Holt |z| at the same row"),
    ):
        print(what)
        print("   " + quantiles("model tail rows", col[key][t]))
        print("   " + quantiles("all scored rows", col[key]))
    print(
        f"model tail rows where a move that size is in the context but not in the newest 256 steps: "
        f"{col['forgot'][t].mean():.3f} (all rows {col['forgot'].mean():.3f})"
    )
    for cut in (0.25, 0.5, 1.0):
        b = col["ratio512"] < cut
        print(
            f"rows with half-band < {cut} x the whole context's 1.28 x RMS change: share {b.mean():.3e}, of them "
            f"in the model tail {t[b].mean():.3f}; share of the tail they hold {b[t].mean():.3f}"
        )
    print(
        f"the model's false-positive rows set by the residual at its standard threshold {a.threshold}: {len(fp_lines)}"
    )
    print("\n".join(fp_lines))
    for cut in (0.5, 0.75, 1.0):
        b = col["ratio_holt"] < cut
        print(
            f"rows with the model's half-band < {cut} x Holt's: share {b.mean():.3f}; "
            f"of the model tail {b[t].mean():.3f}"
        )
    if a.decompose:
        decompose("model tail rows", np.concatenate(tail_ctx))
        decompose("the model's false-positive rows set by the residual", np.concatenate(fp_ctx))


def decompose(what: str, ctx: np.ndarray) -> None:
    """The model's band on the tail rows' contexts, before and after its smoothing spread floor (scaled units)."""
    import torch

    from sentinelle.forecast import SHIPPED_CHECKPOINT
    from sentinelle.forecast.engine import SHIPPED_SMOOTHING_SHARE, load_model
    from sentinelle.forecast.tokenizer import TSTokenizer

    torch.set_num_threads(1)
    model = load_model(SHIPPED_CHECKPOINT, torch.device("cpu"), torch.float32)
    model.smoothing_share = torch.tensor(SHIPPED_SMOOTHING_SHARE, dtype=torch.float32)
    cfg = model.config
    tok = TSTokenizer(cfg.vocab_size, cfg.token_limit)
    enc = tok.encode(ctx[:, -cfg.context_length :])
    ids = torch.from_numpy(enc.ids)
    with torch.inference_mode():
        x, key_mask, values, observed = model._embed(ids)
        last = len(model.layers) - 1
        for i, layer in enumerate(model.layers):
            x = layer(x, key_mask, summary_only=i == last)
        _state, raw, sigma = model._answer(x, values, observed)
        head = model._monotone(raw)[:, 0]  # (B, Q) step 1, before the floor
        floored = model._quantiles(raw, sigma)[:, :, 0]
    lv = list(cfg.quantile_levels)
    lo, hi = lv.index(0.1), lv.index(0.9)
    head_half = ((head[:, hi] - head[:, lo]) / 2).numpy()
    final_half = ((floored[:, hi] - floored[:, lo]) / 2).numpy()
    floor_half = (Z90 * sigma[:, 0]).numpy() if sigma is not None else np.full(len(ctx), np.nan)
    bin_half = tok.bin_width / 2
    print(f"decomposition of {len(ctx)} {what} (scaled units; one token bin = {tok.bin_width:.4g}):")
    print("   " + quantiles("head's half-band", head_half))
    print("   " + quantiles("smoothing floor 1.28 sigma", floor_half))
    print("   " + quantiles("final half-band", final_half))
    print(
        f"   floor binding (final = floor, head narrower): {np.mean(head_half < floor_half):.3f}; "
        f"floor under one bin: {np.mean(floor_half < bin_half):.3f}; final under 2 bins: "
        f"{np.mean(final_half < 2 * tok.bin_width):.3f}"
    )


if __name__ == "__main__":
    main()
