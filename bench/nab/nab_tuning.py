"""What the NAB tuning scripts share: the stage's per-row numbers per candidate, kept on disk, and their scores.

``tune_escalate.py`` and ``tune_band.py`` each pre-register their own candidates and decision rule; the
replay, the cache of its rows, the corpus score of a run and the leave-one-file-out check are the same
in both, so that two rules read the same numbers the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from diag_fp_rows import FIELDS, replay

from sentinelle.evaluation.nab_corpus import HELD_OUT, TUNING, NabFile
from sentinelle.evaluation.nab_scorer import PROFILES, score_corpus
from sentinelle.settings import DetectSettings, ForecastSettings

Row = tuple[float, float, float]
"""A corpus score: standard, low FP, low FN (normalised)."""
Runs = dict[str, dict[str, np.ndarray]]
"""Per file name, the replay's per-row arrays (``diag_fp_rows.FIELDS``)."""
FORECASTERS = ("model", "holt")
DETECTOR = {"model": "Model", "holt": "Holt"}
"""NAB's detector name for each forecaster's result files."""
SHIPPED_TUNING: dict[str, Row] = {"model": (67.79, 57.61, 73.85), "holt": (70.71, 61.04, 75.80)}
"""The shipped defaults on the tuning split (every tick): each script checks its replay reproduces them."""
SHIPPED_HELD_OUT: dict[str, Row] = {"model": (64.35, 54.57, 70.63), "holt": (65.91, 54.38, 72.19)}
"""The README's held-out headline at the shipped defaults."""


def runs_of(
    out: Path, cache: Path, files: list[NabFile], fc: str, cand: str, split: str, settings: Mapping[str, object]
) -> Runs:
    """Per file, the stage's per-row numbers for one forecaster and candidate (kept as npz, reused).

    ``settings``: the candidate's ``detect.*`` settings, and under the key ``"forecast"`` a mapping of its
    ``forecast.*`` ones (``tune_band_floor.py``)."""
    path = out / f"{fc}_{cand}_{split}.npz"
    if path.is_file():
        z = np.load(path)
        return {f.name: {k: z[f"{f.name}|{k}"] for k in FIELDS} for f in files}
    rest = dict(settings)
    given = rest.pop("forecast", None)  # a candidate's ``forecast.*`` settings, as a mapping (none: the shipped)
    detect = DetectSettings(**rest)  # type: ignore[arg-type]
    forecast = None
    if given is not None:
        assert isinstance(given, Mapping)
        forecast = ForecastSettings(forecaster=fc, model_threads=1, **given)  # type: ignore[arg-type]
    runs = {f.name: replay(f, fc, cache, detect, forecast) for f in files}
    arrays: dict[str, np.ndarray] = {f"{n}|{k}": v for n, r in runs.items() for k, v in r.items()}
    np.savez(path, allow_pickle=False, **arrays)
    return runs


def scores(files: list[NabFile], runs: Runs) -> list[np.ndarray]:
    """Each file's per-row score as NAB reads it: in [0, 1], NaN (no score yet) as 0."""
    return [np.nan_to_num(np.clip(runs[f.name]["score"], 0.0, 1.0)) for f in files]


def row(files: list[NabFile], s: list[np.ndarray]) -> Row:
    pairs = [(f.labelled, x) for f, x in zip(files, s, strict=True)]
    a, b, c = (round(score_corpus(pairs, p).normalised, 2) for p in PROFILES)
    return (a, b, c)


def leave_one_out(files: list[NabFile], base: list[np.ndarray], cand: list[np.ndarray]) -> tuple[float, float]:
    """The smallest change of standard and of low FP with any one file left out (thresholds re-optimised)."""
    worst = [np.inf, np.inf]
    for k in range(len(files)):
        keep = [i for i in range(len(files)) if i != k]
        for j, p in enumerate(PROFILES[:2]):
            b = score_corpus([(files[i].labelled, base[i]) for i in keep], p).normalised
            c = score_corpus([(files[i].labelled, cand[i]) for i in keep], p).normalised
            worst[j] = min(worst[j], c - b)
    return worst[0], worst[1]


def all_files(out: Path, files: list[NabFile], split: dict[str, str], cand: str) -> None:
    """After both steps, for information: the 58 files scored together from the kept runs, one threshold each."""
    for c in ("shipped", cand):
        for fc in FORECASTERS:
            s = []
            for part in (TUNING, HELD_OUT):
                sub = [f for f in files if split[f.name] == part]
                z = np.load(out / f"{fc}_{c}_{part}.npz")
                s += [(f, np.nan_to_num(np.clip(z[f"{f.name}|score"], 0.0, 1.0))) for f in sub]
            print(f"all 58 files {c:8s} {fc:5s} {row([f for f, _ in s], [x for _, x in s])}")
