"""Issue 13, step 2 of the model-vs-Holt diagnosis: where do the model's extra false-positive rows come from?

TUNING SPLIT for the diagnosis; ``--held-out`` (only once a rule written beforehand passed on the tuning
split) prints the held-out split's corpus scores and nothing per file.  Replays each tuning file through the daemon's
stages with the shipped detection defaults (``DetectSettings()``, or ``--floor F``: the candidate
``detect.score_spread_floor``), every tick, reading each forecaster's forecasts from the cache
(``bench/nab/model_forecasts.py`` fills it), and keeps per row what the residual scorer saw: the value,
the forecast median and the spread ``z`` was divided by, ``z``, the calibrated ``r`` and the tag's learned
scale, the residual's surprise and recorded score, the novelty's score and the combined recorded score.

Then, per forecaster, NAB's standard-profile threshold on the tuning files and the false-positive rows at
it (rows after the probation, outside every window, at or above the threshold), each put to the term that
set it (residual or novelty), per file; and for the residual's false-positive rows, what the forecast did
there (its spread against the file's typical spread so far, the miss in tag units against the tag's typical
miss, rows since the last level shift).

``--set KEY=VALUE`` (repeatable, VALUE as JSON) replays a candidate ``detect.KEY`` instead (its runs are named by
the settings given).

Run: PYTHONPATH=daemon python bench/nab/diag_fp_rows.py OUT_DIR CACHE_DIR [--floor F] [--set K=V ...] model holt
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from prometheus_client import CollectorRegistry

from sentinelle.detect.stage import DetectStage
from sentinelle.evaluation.nab_corpus import HELD_OUT, TUNING, NabFile, load_corpus, split_of
from sentinelle.evaluation.nab_scorer import PROFILES, STANDARD, probation_rows, score_corpus, sweep_weights
from sentinelle.evaluation.nab_stream import cache_file
from sentinelle.evaluation.stream_eval import (
    cached_forecasts,
    close_windows,
    median_period,
    stream_settings,
    tag_settings,
)
from sentinelle.forecast import make_forecaster
from sentinelle.forecast.batcher import ForecastPass
from sentinelle.metrics import Metrics
from sentinelle.settings import DetectSettings, ForecastSettings

FIELDS = ("score", "residual", "novelty", "surprise", "z", "r", "sigma", "spread", "median", "value")


def replay(
    f: NabFile, forecaster: str, cache: Path, detect: DetectSettings, forecast: ForecastSettings | None = None
) -> dict[str, np.ndarray]:
    """One file's per-row numbers (NaN where the row's slot had none).

    ``forecast``: the forecaster's settings (None: the shipped ones).  The forecasts are read from the cache made
    with the shipped ones; what the model forecaster does to its band after the fact (``floor_band``,
    ``forecast.model_band_floor_holt``) it then does to the cached quantiles, as its ``forecast`` would."""
    p = median_period(f.timestamps)
    settings = stream_settings(p, forecaster, detect)
    fset = forecast or ForecastSettings(forecaster=forecaster, model_threads=1)  # type: ignore[arg-type]
    assert fset.forecaster == forecaster
    fc = make_forecaster(fset)
    w = close_windows(f.stream(), settings, p)
    stage = DetectStage([tag_settings(f.stem, p)], settings.detect, Metrics(CollectorRegistry()))
    fpass = ForecastPass.of(w.batches, 1)
    path = cache_file(cache, forecaster, f)
    assert path is not None and path.is_file(), f"no cached forecasts for {f.name}: fill the cache first"
    q = cached_forecasts(fc, fpass, settings.forecast.max_batch, path)
    floor = getattr(fc, "floor_band", None)  # the model's only; Holt has none, so its rows cannot change
    if floor is not None:
        q = floor(q, fpass.contexts)
    slots: dict[int, tuple[float, ...]] = {}
    for fb in fpass.split(fc.levels, q, fc.name):
        stage.process(fb)
        t = stage.last_tick
        if t is None:
            continue
        sc = t.group.scorer
        parts = dict(t.parts)
        nov = parts.get("contextual_novelty", np.full(1, np.nan))
        row = (
            t.score[0],
            parts["forecast_residual"][0],
            nov[0],
            sc.surprise[0],
            t.z[0],
            sc.r[0],
            sc.scale.sigma()[0],
            sc.spread[0],
            t.expected[0, t.mid],
            t.values[0],
        )
        slots[round(fb.window.ts / p)] = tuple(float(x) for x in row)
    nan = (np.nan,) * len(FIELDS)
    table = np.array([slots.get(int(k), nan) if k >= 0 else nan for k in w.row_slot])
    return {name: table[:, i] for i, name in enumerate(FIELDS)}


def corpus_only(name: str, files: list[NabFile], runs: dict[str, dict[str, np.ndarray]]) -> None:
    """Corpus scores (three profiles) of the recorded score and of the residual term alone; nothing per file."""
    for part in ("score", "residual"):
        pairs = [(f.labelled, np.nan_to_num(np.clip(runs[f.name][part], 0.0, 1.0))) for f in files]
        cs = [score_corpus(pairs, p) for p in PROFILES]
        print(
            f"{name} {part}: {[round(c.normalised, 2) for c in cs]} (standard, low FP, low FN); "
            f"windows {cs[0].detected}/{cs[0].windows}, FP rows {cs[0].false_positive_rows}"
        )


def analyse(name: str, files: list[NabFile], runs: dict[str, dict[str, np.ndarray]]) -> None:
    corpus_only(name, files, runs)
    scores = {f.name: np.nan_to_num(np.clip(runs[f.name]["score"], 0.0, 1.0)) for f in files}
    cs = score_corpus([(f.labelled, scores[f.name]) for f in files], STANDARD)
    thr = cs.threshold
    print(f"\n== {name}: standard {cs.normalised:.2f} threshold {thr:.4f} windows {cs.detected}/{cs.windows}")
    print(f"   FP rows {cs.false_positive_rows}")
    tot = {"residual": 0, "novelty": 0}
    detail: list[str] = []
    for f in files:
        d = runs[f.name]
        _, win = sweep_weights(f.labelled, STANDARD)
        start = probation_rows(f.labelled.rows)
        fp = (win < 0) & (scores[f.name] >= thr)
        fp[:start] = False
        rows = np.flatnonzero(fp)
        if not rows.size:
            continue
        by_res = np.nan_to_num(d["residual"][rows], nan=-1) >= np.nan_to_num(d["novelty"][rows], nan=-1)
        n_res, n_nov = int(by_res.sum()), int((~by_res).sum())
        tot["residual"] += n_res
        tot["novelty"] += n_nov
        print(f"   {f.name}: FP rows {rows.size} (residual {n_res}, novelty {n_nov})")
        spread = d["spread"]
        miss = np.abs(d["value"] - d["median"])
        for i in rows[by_res]:
            typ_spread = float(np.nanmedian(spread[max(0, i - 500) : i]))
            typ_miss = float(np.nanmedian(miss[max(0, i - 500) : i]))
            detail.append(
                f"   {f.name} row {i}: score {d['score'][i]:.3f} z {d['z'][i]:.1f} r {d['r'][i]:.1f} "
                f"sigma {d['sigma'][i]:.2f} spread {spread[i]:.4g} "
                f"(typ {typ_spread:.4g}, x{spread[i] / typ_spread:.2f})"
                f" miss {miss[i]:.4g} (typ {typ_miss:.4g}, x{miss[i] / max(typ_miss, 1e-12):.1f})"
            )
    print(f"   total by term: {tot}")
    print("   residual-driven FP rows:")
    print("\n".join(detail))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("cache", type=Path)
    ap.add_argument("forecasters", nargs="+")
    ap.add_argument("--floor", type=float, default=None, help="detect.score_spread_floor (candidate)")
    ap.add_argument("--held-out", action="store_true", help="the held-out split, corpus scores only")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a candidate detect.KEY (JSON)")
    a = ap.parse_args()
    candidate = {k: json.loads(v) for k, v in (kv.split("=", 1) for kv in a.set)}
    files = load_corpus(Path("/work/shared/data/nab/data"))
    split = split_of(f.name for f in files)
    tuning = [f for f in files if split[f.name] == (HELD_OUT if a.held_out else TUNING)]
    if a.floor is not None:
        candidate["score_spread_floor"] = a.floor
    detect = DetectSettings(**candidate)
    a.out.mkdir(parents=True, exist_ok=True)
    for fc in a.forecasters:
        named = "".join(f"_{k}{v}" for k, v in sorted(candidate.items()) if k != "score_spread_floor")
        tag = (fc if a.floor is None else f"{fc}_floor{a.floor:g}") + named + ("_held_out" if a.held_out else "")
        out = a.out / f"{tag}.npz"
        if out.is_file():
            z = np.load(out)
            runs = {f.name: {k: z[f"{f.name}|{k}"] for k in FIELDS} for f in tuning}
        else:
            runs = {f.name: replay(f, fc, a.cache, detect) for f in tuning}
            np.savez(out, **{f"{n}|{k}": v for n, r in runs.items() for k, v in r.items()})
        (corpus_only if a.held_out else analyse)(tag, tuning, runs)


if __name__ == "__main__":
    main()
