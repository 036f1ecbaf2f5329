"""Issue 13, TUNING split only: per file and per window, where the model's per-row score loses to Holt's.

Reads the shipped per-row npz of ``tune_band.py`` / ``tune_escalate.py`` (``OUT/{model,holt}_shipped_tuning.npz``;
the held-out files are never loaded here) and prints:

* ``windows``: per window, each forecaster's best published score in it (row, term) and the best score its terms
  gave before the rest (``max(residual, novelty)``): when that is higher, a rest hid it, and the onset that started
  the rest is named (its row, score and whether it lies in the window);
* ``fp``: per file, the false-positive rows (after NAB's probation, outside every window) at each forecaster's
  standard threshold and at the other's, by term, and for the residual's rows the value's miss in its own robust
  residual scale (``|value − median|`` over 1.4826 × the median ``|value − median|`` of the 500 rows before) beside
  ``z``: whether a robust residual scale would rank those rows below the windows the residual carries;
* ``hidden``: every rest (after probation) in which a later term score beat the onset that started it, with the
  margin, the ticks between and whether each lies in a window — the escalating rest's possible publications.

    PYTHONPATH=daemon python bench/nab/diag_gap.py windows|fp|hidden OUT
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from diag_ranking import Runs, load, score_of, term, tuning_files, window_of

from sentinelle.evaluation.nab_corpus import NabFile
from sentinelle.evaluation.nab_scorer import STANDARD, probation_rows, score_corpus

REST_STEPS, REST_LEVEL = 100, 0.4
"""The shipped rest (``detect.score_rest_steps``, ``score_rest_level``); rows stand for ticks (gaps ignored)."""


def raw(r: dict[str, np.ndarray]) -> np.ndarray:
    """The combined score before the rest: the larger term (NaN as 0)."""
    return np.asarray(np.fmax(np.nan_to_num(r["residual"]), np.nan_to_num(r["novelty"])), dtype=np.float64)


def onset_before(pub: np.ndarray, i: int) -> int | None:
    """The row whose published score started the rest covering row ``i`` (None: no rest covers it)."""
    for k in range(i - 1, max(-1, i - REST_STEPS - 1), -1):
        if pub[k] >= REST_LEVEL:
            return k
    return None


def windows(files: list[NabFile], runs: dict[str, Runs]) -> None:
    for f in files:
        win = window_of(f)
        for j in range(len(f.labelled.windows)):
            rows = np.flatnonzero(win == j)
            parts = []
            for fc, r in runs.items():
                pub, pre = score_of(r[f.name]), raw(r[f.name])
                i, k = int(rows[np.argmax(pub[rows])]), int(rows[np.argmax(pre[rows])])
                txt = f"{fc} {pub[i]:.3f} row {i} ({term(r[f.name], i)})"
                if pre[k] > pub[i] + 1e-9:
                    o = onset_before(pub, k)
                    where = "none" if o is None else f"row {o} {pub[o]:.3f} {'in' if win[o] == j else 'before'}"
                    txt += f", hidden {pre[k]:.3f} row {k} ({term(r[f.name], k)}; rest from {where})"
                parts.append(txt)
            print(f"{f.name} w{j}: " + "; ".join(parts))


def robust_miss(r: dict[str, np.ndarray], i: int) -> float:
    miss = np.abs(r["value"] - r["median"])
    past = miss[max(0, i - 500) : i]
    past = past[np.isfinite(past)]
    return float(miss[i] / max(1.4826 * np.median(past), 1e-12)) if past.size else float("nan")


def fp(files: list[NabFile], runs: dict[str, Runs]) -> None:
    thr = {
        fc: score_corpus([(f.labelled, score_of(r[f.name])) for f in files], STANDARD).threshold
        for fc, r in runs.items()
    }
    print("standard thresholds: " + ", ".join(f"{fc} {t:.4f}" for fc, t in thr.items()))
    for f in files:
        win, start = window_of(f), probation_rows(f.labelled.rows)
        lines = []
        for fc, r in runs.items():
            s = score_of(r[f.name])
            for at, t in thr.items():
                rows = np.flatnonzero((s >= t) & (win < 0) & (np.arange(s.size) >= start))
                by = [term(r[f.name], int(i)) for i in rows]
                lines.append(
                    f"  {fc} at {at}'s {t:.3f}: {rows.size} FP rows "
                    f"(residual {by.count('residual')}, novelty {by.count('novelty')})"
                )
            for i in np.flatnonzero((s >= min(thr.values())) & (s < 1.0) & (np.arange(s.size) >= start)):
                other = next(o for o in runs if o != fc)
                ro = runs[other][f.name]
                lines.append(
                    f"    {fc} row {i} {'w' + str(win[i]) if win[i] >= 0 else 'fp'} {s[i]:.3f} "
                    f"({term(r[f.name], int(i))}) z {r[f.name]['z'][i]:.1f} robust {robust_miss(r[f.name], int(i)):.1f}"
                    f" | {other} z {ro['z'][i]:.1f} robust {robust_miss(ro, int(i)):.1f} score {score_of(ro)[i]:.3f}"
                )
        if any(" 0 FP rows" not in x for x in lines):
            print(f.name)
            print("\n".join(lines))


def where(win: np.ndarray, k: int) -> str:
    return f"w{win[k]}" if win[k] >= 0 else "outside"


def hidden(files: list[NabFile], runs: dict[str, Runs]) -> None:
    for fc, r in runs.items():
        for f in files:
            pub, pre, win = score_of(r[f.name]), raw(r[f.name]), window_of(f)
            start = probation_rows(f.labelled.rows)
            i = start
            while i < pub.size:
                if pub[i] < REST_LEVEL:
                    i += 1
                    continue
                seg = np.arange(i + 1, min(pub.size, i + REST_STEPS + 1))
                fresh = seg[pre[seg - 1] < REST_LEVEL]  # rows that start a new excursion
                for kind, cand in (("any", seg), ("new excursion", fresh)):
                    best = int(cand[np.argmax(pre[cand])]) if cand.size else None
                    if best is None or pre[best] <= pub[i]:
                        continue
                    print(
                        f"{fc} {f.name} onset row {i} {pub[i]:.3f} ({term(r[f.name], i)}, {where(win, i)}) hides "
                        f"{pre[best]:.3f} row {best} ({term(r[f.name], best)}, {where(win, best)}; {kind}) "
                        f"{best - i} ticks later, margin {pre[best] - pub[i]:.3f}"
                    )
                i += REST_STEPS + 1


SPIKES = {
    "realAWSCloudwatch/ec2_cpu_utilization_c6585a.csv": (1023, 1305, 1596, 1886, 2173, 2461, 2743, 3044, 3322),
    "realAWSCloudwatch/ec2_cpu_utilization_24ae8d.csv": (1597, 1883, 2461, 2748, 3032, 3321, 3898),
}
"""The model's daily-spike FP rows of ``fp`` (the shipped run at Holt's standard threshold and above)."""


def bands(files: list[NabFile], runs: dict[str, Runs]) -> None:
    """Whether a band is right around the spikes: a right 10-90 % band gives a median |z| of 0.67."""
    print("per file with extra residual FP rows: share of |z| beyond the 10-90 % band (nominal 20 %), median |z|")
    print("(a right band: 0.67), median learned scale sigma")
    extra = ("c6585a", "24ae8d", "AAPL", "FB", "PFE", "IBM")
    for f in files:
        if not any(k in f.name for k in extra):
            continue
        parts = []
        for fc, r in runs.items():
            z = r[f.name]["z"]
            a = np.abs(z[np.isfinite(z)])
            parts.append(
                f"{fc} beyond {np.mean(a > 1.2816):.1%} median |z| {np.median(a):.2f} "
                f"sigma {np.nanmedian(r[f.name]['sigma']):.2f}"
            )
        print(f"{f.name}: " + " | ".join(parts))
    print("\nthe daily-spike FP rows: the spike's z; the median |z| of the 50 ticks before it; the spread there over")
    print("the median miss of those 50 ticks (a right band's spread is about 1.48 × the median miss)")
    for name, rows in SPIKES.items():
        idx = np.array(rows)
        for fc, r in runs.items():
            d = r[name]
            loc = [float(np.nanmedian(np.abs(d["z"][i - 50 : i]))) for i in rows]
            miss = np.array([np.nanmedian(np.abs(d["value"][i - 50 : i] - d["median"][i - 50 : i])) for i in rows])
            print(
                f"{name} {fc}: z {np.round(d['z'][idx], 1).tolist()}; before {np.round(loc, 2).tolist()}; "
                f"spread/miss {np.round(d['spread'][idx] / miss, 2).tolist()}"
            )


def main() -> None:
    what, out = sys.argv[1], Path(sys.argv[2])
    files = tuning_files()
    runs = {fc: load(str(out / f"{fc}_shipped_tuning.npz"), files, full=True) for fc in ("model", "holt")}
    {"windows": windows, "fp": fp, "hidden": hidden, "bands": bands}[what](files, runs)


if __name__ == "__main__":
    main()
