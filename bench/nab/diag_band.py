"""Issue 13, TUNING split only: the forecast band's coverage by width class, and what a band calibration changed.

Reads the per-row npz of ``tune_band.py`` (``OUT/{forecaster}_{candidate}_tuning.npz``; the held-out files are never
loaded here).

* ``classes OUT``: per forecaster (shipped run), every scored tick grouped by its band's width against the tag's
  typical width (a forgetting geometric mean of the spreads before it, memory 1,000): share of ticks, share outside
  the 10-90 % band (``|z| > 1.28``), 99th percentile of ``|z|`` — RULE.md's diagnosis table.
* ``widened OUT CAND``: per forecaster, how often the candidate's spread is wider than the shipped one, the tail of
  ``|z|`` before and after, and the residual term's corpus scores alone (shipped and candidate).

    PYTHONPATH=daemon python bench/nab/diag_band.py classes /tmp/nab16/out
    PYTHONPATH=daemon python bench/nab/diag_band.py widened /tmp/nab16/out W2
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from sentinelle.evaluation.nab_corpus import TUNING, load_corpus, split_of
from sentinelle.evaluation.nab_scorer import PROFILES, score_corpus

EDGES = ((0.0, 0.25), (0.25, 0.5), (0.5, 1.0), (1.0, 2.0), (2.0, np.inf))


def relative_width(spread: np.ndarray, memory: int = 1000) -> np.ndarray:
    """Each tick's spread over the forgetting geometric mean of the spreads before it (NaN: none yet)."""
    out = np.full(spread.size, np.nan)
    m, n = 0.0, 0
    for i, s in enumerate(spread):
        if not (np.isfinite(s) and s > 0):
            continue
        v = float(np.log(s))
        if n:
            out[i] = np.exp(v - m)
            m += max(1.0 / (n + 1), 1.0 / memory) * (v - m)
        else:
            m = v
        n += 1
    return out


def classes(out: Path) -> None:
    for fc in ("model", "holt"):
        z = np.load(out / f"{fc}_shipped_tuning.npz")
        keys = sorted({k.split("|")[0] for k in z.files})
        zz = np.concatenate([z[f"{k}|z"] for k in keys])
        rel = np.concatenate([relative_width(z[f"{k}|spread"]) for k in keys])
        ok = np.isfinite(zz) & np.isfinite(rel)
        for lo, hi in EDGES:
            m = ok & (rel >= lo) & (rel < hi)
            a = np.abs(zz[m])
            print(
                f"{fc} width {lo}-{hi}: {m.sum() / ok.sum():.1%} of ticks, outside {np.mean(a > 1.2816):.1%}, "
                f"p99 |z| {np.percentile(a, 99):.1f}"
            )


def widened(out: Path, cand: str) -> None:
    files = load_corpus(Path("/work/shared/data/nab/data"))
    split = split_of(f.name for f in files)
    tuning = [f for f in files if split[f.name] == TUNING]
    for fc in ("model", "holt"):
        a, b = np.load(out / f"{fc}_shipped_tuning.npz"), np.load(out / f"{fc}_{cand}_tuning.npz")
        keys = sorted({k.split("|")[0] for k in a.files})
        ratio, z0, z1 = [], [], []
        for k in keys:
            ok = np.isfinite(a[f"{k}|spread"]) & np.isfinite(b[f"{k}|spread"])
            ratio.append(b[f"{k}|spread"][ok] / a[f"{k}|spread"][ok])
            z0.append(np.abs(a[f"{k}|z"][ok]))
            z1.append(np.abs(b[f"{k}|z"][ok]))
        r, x0, x1 = np.concatenate(ratio), np.concatenate(z0), np.concatenate(z1)
        t0, t1 = (np.nanpercentile(x, [99.0, 99.9]).round(1).tolist() for x in (x0, x1))
        print(
            f"{fc} {cand}: widened (x1.05) on {np.mean(r > 1.05):.2%} of ticks, x2 on {np.mean(r > 2):.2%}; "
            f"|z| p99/p99.9 {t0} -> {t1}"
            f"; ticks |z| > 10: {int((x0 > 10).sum())} -> {int((x1 > 10).sum())}"
        )
        for name, z in (("shipped", a), (cand, b)):
            pairs = [(f.labelled, np.nan_to_num(np.clip(z[f"{f.name}|residual"], 0.0, 1.0))) for f in tuning]
            cs = [score_corpus(pairs, p) for p in PROFILES]
            scored = [round(c.normalised, 2) for c in cs]
            print(f"   residual alone, {name}: {scored}; FP rows {cs[0].false_positive_rows}")


def main() -> None:
    if sys.argv[1] == "classes":
        classes(Path(sys.argv[2]))
    else:
        widened(Path(sys.argv[2]), sys.argv[3])


if __name__ == "__main__":
    main()
